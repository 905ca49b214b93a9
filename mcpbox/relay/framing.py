"""Newline-delimited frames with a size limit: bytes in, complete lines out.

A line over the limit is never held whole: its head is kept (to read its id
for an error reply) and the rest is skipped up to the next newline, so the
relay's memory stays bounded whatever a peer sends.
"""

from __future__ import annotations

from typing import NamedTuple

HEAD_BYTES = 4096


class Oversize(NamedTuple):
    head: bytes
    size: int


Frame = bytes | Oversize


class LineFramer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skipped: Oversize | None = None  # the oversize line being skipped, so far

    def feed(self, data: bytes) -> list[Frame]:
        if not self._buffer and self._skipped is None and data.endswith(b"\n") \
                and data.find(b"\n") == len(data) - 1 and len(data) <= self.max_bytes:
            return [data[:-1]]  # the common case: exactly one whole line
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._keep(data[start:])
                return frames
            self._keep(data[start:end])
            if self._skipped is not None:
                frames.append(self._skipped)
                self._skipped = None
            else:
                frames.append(bytes(self._buffer))
            self._buffer.clear()
            start = end + 1

    def pending(self) -> int:
        """Bytes of an incomplete line held (a peer that closes mid-line leaves them)."""
        return len(self._buffer)

    def _keep(self, piece: bytes) -> None:
        if self._skipped is not None:  # the head grows to HEAD_BYTES however the line was cut
            head = self._skipped.head
            if len(head) < HEAD_BYTES:
                head += piece[:HEAD_BYTES - len(head)]
            self._skipped = Oversize(head, self._skipped.size + len(piece))
        elif len(self._buffer) + len(piece) > self.max_bytes:
            size = len(self._buffer) + len(piece)
            head = bytes(self._buffer[:HEAD_BYTES])  # never a copy of the whole buffer: memory stays bounded
            self._skipped = Oversize(head + piece[:HEAD_BYTES - len(head)], size)
            self._buffer.clear()
        else:
            self._buffer += piece
