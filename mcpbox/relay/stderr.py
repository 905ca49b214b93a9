"""The server's stderr, as the user sees it: one prefixed line per line, within a budget.

A server may write anything to stderr, so a line is cut at a maximum length
(the rest of it dropped) and the whole stream is capped; the user is told
when either happens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

LINE_MAX = 8192
TOTAL_MAX = 16 * 1024 * 1024


class StderrLines:
    def __init__(self, prefix: bytes, shown: Callable[[bytes], bytes] = bytes, line_max: int = LINE_MAX,
                 total_max: int = TOTAL_MAX) -> None:
        self._prefix = prefix
        self._shown = shown  # what of a line may reach the user (the relay's redaction and cleaning)
        self._line_max = line_max
        self._budget = total_max
        self._partial = b""
        self._skipping = False  # inside the unseen rest of a line that was cut
        self.tail: deque[bytes] | None = None  # when set, the last lines as shown, for a diagnosis

    def feed(self, data: bytes) -> bytes:
        out = []
        buffer = self._partial + data
        start = 0  # lines are sliced off in place: cutting the rest each time would copy a chunk once per line
        while (newline := buffer.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                out.append(self._emit(buffer[start:newline]))
            start = newline + 1
        self._partial = buffer[start:]
        if len(self._partial) > self._line_max:
            if not self._skipping:
                out.append(self._emit(self._partial[: self._line_max] + b" [line cut by mcpbox]"))
            self._skipping = True
            self._partial = b""
        return b"".join(out)

    def close(self) -> bytes:
        rest, self._partial = self._partial, b""
        return self._emit(rest) if rest and not self._skipping else b""

    def _emit(self, line: bytes) -> bytes:
        if self._budget <= 0:
            return b""
        shown = self._shown(line.rstrip(b"\r"))
        if self.tail is not None:
            self.tail.append(shown)
        text = self._prefix + shown + b"\n"
        self._budget -= len(text)
        if self._budget <= 0:
            text += self._prefix + b"[mcpbox: the server's stderr exceeded its budget; the rest is dropped]\n"
        return text
