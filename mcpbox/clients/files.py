"""Writing a client's config, its backup, mcpbox's profiles and its record of what it replaced.

A client config belongs to its owner and may be read by the client at any moment (Claude Code rewrites
`~/.claude.json` itself): it is replaced atomically, with its owner and mode, only if it still holds what
the plan was made from, and a backup of that is kept beside it first. What mcpbox creates for itself is
private: files 0600 in directories 0700.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from typing import Any

from mcpbox import paths
from mcpbox.errors import ConfigFileError

Record = dict[str, str]  # name, scope, profile, original, wrapped: what unwrap needs to put an entry back


def read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file (give the client's config with --config PATH)") from None
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not UTF-8 text; nothing was changed") from None


def replace(path: str, new: str, old: str) -> str:
    """Put `new` in place of `old` at `path`, atomically, owner and mode kept; return the backup's path."""
    status = os.stat(path)
    directory, name = os.path.split(path)
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.mcpbox-")
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot write beside it: {error.strerror}; nothing was changed") from None
    backup = ""
    try:
        with os.fdopen(fd, "wb") as handle:
            _own_like(handle.fileno(), status)
            handle.write(new.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        backup = _backup(path, old.encode("utf-8"), status)
        if read(path) != old:
            raise ConfigFileError(f"{path}: changed while mcpbox was editing it (is the client writing it?); "
                                  "nothing was changed, run the command again")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if backup:
            os.unlink(backup)
        raise
    return backup


def _backup(path: str, data: bytes, status: os.stat_result) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for attempt in range(100):
        backup = f"{path}.mcpbox-backup-{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            _own_like(handle.fileno(), status)
            handle.write(data)
        return backup
    raise ConfigFileError(f"{path}: cannot pick a backup name beside it; nothing was changed")


def _own_like(fd: int, status: os.stat_result) -> None:
    """The config's owner (root editing a user's file must not take it over) and mode."""
    with contextlib.suppress(PermissionError):
        os.fchown(fd, status.st_uid, status.st_gid)
    os.fchmod(fd, status.st_mode & 0o7777)


def write_private(path: str, text: str) -> None:
    """A new file of mcpbox's own (a profile, a record), 0600, its folders 0700, written atomically."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".mcpbox-")
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot write it: {error.strerror}; the client's config was not changed") \
            from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _records_path(config: str) -> str:
    digest = hashlib.sha256(os.path.realpath(config).encode()).hexdigest()[:24]
    return os.path.join(paths.state_dir(), "wraps", f"{digest}.json")


def load_records(config: str) -> dict[str, Record]:
    """What mcpbox replaced in `config`, by entry (its key path as JSON)."""
    try:
        with open(_records_path(config), encoding="utf-8") as handle:
            data: Any = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ConfigFileError(f"{_records_path(config)}: mcpbox's record of {config} is unreadable ({error}); "
                              "nothing was changed") from None
    return dict(data.get("entries", {}))


def save_records(config: str, records: dict[str, Record]) -> None:
    path = _records_path(config)
    if records:
        write_private(path, json.dumps({"config": os.path.realpath(config), "entries": records}, indent=1))
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
