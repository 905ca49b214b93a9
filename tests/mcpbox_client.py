"""A raw client of one `mcpbox run`, for the tests that speak JSON-RPC lines to it byte for byte.

The escape tests (tests/test_escape.py) and the hostile relay tests
(tests/relay/test_hostile_relay.py) must send exactly what they mean on
mcpbox's stdin and see every line it writes back, which no SDK client would
let them do; both read with a deadline, so that a hang fails the test instead
of stalling the run.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import MCPBOX


class LineClient:
    """`mcpbox run [--profile P] -- SERVER...` with its stdin and stdout as pipes.

    Its stderr goes to a file (a full pipe would stall mcpbox). It runs in a
    session of its own, so a hung mcpbox is killed with its process group.
    """

    EXIT_SECONDS = 15.0  # against hangs only: how long mcpbox may take to exit once its stdin is closed

    def __init__(self, server: list[str], stderr_path: Path, *, profile: Path | None, cwd: Path,
                 env: dict[str, str], preexec_fn: Callable[[], None] | None = None) -> None:
        options = ["--profile", str(profile)] if profile is not None else []
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr:
            self.process = subprocess.Popen([*MCPBOX, "run", *options, "--", *server], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env,
                                            start_new_session=True, preexec_fn=preexec_fn)
        self._buffer = b""

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def read_line(self, timeout: float) -> bytes | None:
        """The next line from mcpbox's stdout, or None at its end; fails the test after `timeout` s."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"nothing from mcpbox within {timeout} s; its stderr:\n{self.stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> int:
        """Close mcpbox's stdin (the client leaves) and wait for its status; kill it only if it hangs.

        Safe to call again: a second call returns the same status.
        """
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            status = self.process.wait(self.EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"mcpbox did not exit within {self.EXIT_SECONDS} s after its stdin closed")
        self.process.stdout.close()
        return status
