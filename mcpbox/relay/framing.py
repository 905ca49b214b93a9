"""Newline-delimited frames with a size limit: bytes in, complete lines out.

A line over the limit is never held whole: its head is kept (to read its id
for an error reply) and the rest is skipped up to the next newline, so the
relay's memory stays bounded whatever a peer sends.
"""

from typing import NamedTuple

HEAD_BYTES = 4096


class Oversize(NamedTuple):
    head: bytes
    size: int


Frame = bytes | Oversize


class LineFramer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[bytes | bytearray] = []  # the incomplete line, as it arrived: joined once, when it ends
        self._held = 0
        self._skipped: Oversize | None = None  # the oversize line being skipped, so far

    def feed(self, data: bytes) -> list[Frame]:
        if not self._held and self._skipped is None and data.endswith(b"\n") \
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
                frames.append(b"".join(self._chunks))
            self._chunks.clear()
            self._held = 0
            start = end + 1

    def pending(self) -> int:
        """Bytes of an incomplete line held (a peer that closes mid-line leaves them)."""
        return self._held

    def _keep(self, piece: bytes) -> None:
        if self._skipped is not None:  # the head grows to HEAD_BYTES however the line was cut
            head = self._skipped.head
            if len(head) < HEAD_BYTES:
                head += piece[:HEAD_BYTES - len(head)]
            self._skipped = Oversize(head, self._skipped.size + len(piece))
        elif self._held + len(piece) > self.max_bytes:
            head = b""
            for chunk in self._chunks:  # never a copy of the whole line: memory stays bounded
                head += chunk[:HEAD_BYTES - len(head)]
                if len(head) >= HEAD_BYTES:
                    break
            self._skipped = Oversize(head + piece[:HEAD_BYTES - len(head)], self._held + len(piece))
            self._chunks.clear()
            self._held = 0
        elif piece:
            if len(piece) >= HEAD_BYTES:
                self._chunks.append(piece)
            elif self._chunks and isinstance(self._chunks[-1], bytearray):
                self._chunks[-1] += piece  # a drip of small reads costs no per-object overhead
            else:
                self._chunks.append(bytearray(piece))
            self._held += len(piece)
