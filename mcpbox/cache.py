"""A small content-addressed cache for work that is slow to redo at every launch.

Entries are keyed by a hash of everything their value is derived from (the
input bytes and the source of the code that derives it), so a change to either
is never served a stale value. Entries are only trusted when owned by the
current user in a directory only that user can write; a failed read is a miss.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mcpbox import paths


def key(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def source_of(module_file: str) -> bytes:
    """The bytes of a module's source, so a cached result changes with the code that made it."""
    return Path(module_file).read_bytes()


def _entry(kind: str, entry_key: str) -> Path:
    return paths.cache_dir() / kind / entry_key


def read(kind: str, entry_key: str) -> bytes | None:
    path = _entry(kind, entry_key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o022:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def write(kind: str, entry_key: str, data: bytes) -> None:
    """Store atomically; a cache that cannot be written only costs speed."""
    directory = _entry(kind, entry_key).parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = directory / f".{entry_key}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, directory / entry_key)
    except OSError:
        pass
