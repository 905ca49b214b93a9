"""A small cache for work that is slow to redo at every launch.

An entry stores the exact input it was derived from next to the result, and a
lookup only hits when the input matches byte for byte, so a change is never
served a stale value. The file name is a cheap checksum of the input (no
hashlib: loading OpenSSL costs 5 ms of start-up). Entries are only trusted
when owned by the current user and not writable by others; any failure to
read or parse an entry is a miss.
"""

from __future__ import annotations

import os
import zlib

from mcpbox import paths

SEPARATOR = b"\0mcpbox-cache\0"


def source_of(module_file: str) -> bytes:
    """The bytes of a module's source, so a cached result changes with the code that made it."""
    with open(module_file, "rb") as handle:
        return handle.read()


def _entry(kind: str, key: bytes) -> str:
    return os.path.join(paths.cache_dir(), kind, f"{zlib.crc32(key):08x}-{zlib.adler32(key):08x}-{len(key)}")


def read(kind: str, key: bytes) -> bytes | None:
    try:
        fd = os.open(_entry(kind, key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o022:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            stored = handle.read()
    finally:
        os.close(fd)
    stored_key, separator, value = stored.partition(SEPARATOR)
    return value if separator and stored_key == key else None


def write(kind: str, key: bytes, value: bytes) -> None:
    """Store atomically; a cache that cannot be written only costs speed."""
    try:
        paths.write_private(_entry(kind, key), key + SEPARATOR + value)
    except OSError:
        pass
