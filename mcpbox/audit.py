"""The audit log: one JSON line per decision, written with os.write (no stdio buffer).

The relay's decisions come back from the firewall as values; the pump writes
their lines (argument hashes worked out then) only after the messages they
decide on were sent, in one write per read, so a message never waits for its
own audit line.

Lines go to `[audit] path` or `~/.local/state/mcpbox/audit.jsonl`. The file is
rotated by size (`audit.jsonl.1`, `.2`, ...), created private to the user, and
never holds a secret value: callers pass hashes or names, not arguments.
"""

from __future__ import annotations

import json
import os
import time
from functools import lru_cache
from typing import Any

from mcpbox import paths
from mcpbox.errors import say

MAX_BYTES = 16 * 1024 * 1024
KEEP = 3


def default_path() -> str:
    return os.path.join(paths.state_dir(), "audit.jsonl")


class AuditLog:
    """The log; `deferred` holds lines until `flush`, which the relay calls right after it has sent
    the messages they decide on, so a message never waits for its own audit line."""

    def __init__(self, path: str | None = None, max_bytes: int = MAX_BYTES, keep: int = KEEP,
                 deferred: bool = False, server: str | None = None) -> None:
        self.path = os.path.expanduser(path) if path else default_path()
        self.deferred = deferred
        self._server = {"server": server} if server else {}  # which server every line is about
        self._max_bytes = max_bytes
        self._keep = keep
        self._fd: int | None = None
        self._size = 0
        self._held: list[tuple[float, dict[str, Any]]] = []

    def write(self, **record: Any) -> None:
        """One decision, timed now; written at once unless `deferred`."""
        self._held.append((time.time(), {**self._server, **record}))
        if not self.deferred:
            self.flush()

    def flush(self) -> None:
        """Write the held lines in one write; an unwritable log is reported once and never stops the relay."""
        if not self._held:
            return
        held, self._held = self._held, []
        self._append(b"".join(line(moment, record) for moment, record in held))

    def _append(self, line: bytes) -> None:
        try:
            if self._fd is None:
                self._open()
            elif self._size + len(line) > self._max_bytes:
                self._rotate()
            assert self._fd is not None
            os.write(self._fd, line)
            self._size += len(line)
        except OSError as error:
            if self._fd != -1:
                say(f"cannot write the audit log {self.path}: {error.strerror}")
            self._fd = -1

    def close(self) -> None:
        self.flush()
        self._close_file()

    def _close_file(self) -> None:
        if self._fd not in (None, -1):
            os.close(self._fd)
        self._fd = None

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        self._close_file()
        for index in range(self._keep - 1, 0, -1):
            older = f"{self.path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._open()


def write_one(path: str | None, **record: Any) -> None:
    """One line outside a relay (a verification, a provenance check): fields that are None are left out."""
    log = AuditLog(path)
    try:
        log.write(**{key: value for key, value in record.items() if value is not None})
    finally:
        log.close()


_ENCODE = json.JSONEncoder(separators=(",", ":"), default=str).encode


def line(moment: float, record: dict[str, Any]) -> bytes:
    """One audit line as the log holds it: the time first, then the record, one JSON object per line."""
    return _ENCODE({"time": _format(moment), **record}).encode() + b"\n"


@lru_cache(maxsize=1)
def _whole_second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _format(seconds: float) -> str:
    return f"{_whole_second(int(seconds))}.{int(seconds % 1 * 1000):03d}Z"
