"""Newline-delimited frames with a size limit: bytes in, complete lines out.

A line over the limit is never held whole: its head is kept (to read its id
for an error reply) and the rest is skipped up to the next newline, so the
relay's memory stays bounded whatever a peer sends.
"""

from typing import NamedTuple

HEAD_BYTES = 4096
LARGE_LINE = 1 << 20  # a line handed over as its buffer, not copied


class Oversize(NamedTuple):
    head: bytes
    size: int


Frame = bytes | Oversize


class LineFramer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._line = bytearray()  # the incomplete line: grown in place (a large one by mremap, never copied whole)
        self._skipped: Oversize | None = None  # the oversize line being skipped, so far

    def feed(self, data: bytes) -> list[Frame]:
        if not self._line and self._skipped is None and data.endswith(b"\n") \
                and data.find(b"\n") == len(data) - 1 and len(data) <= self.max_bytes:
            return [data[:-1]]  # the common case: exactly one whole line
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._keep(data, start, len(data))
                return frames
            self._keep(data, start, end)
            if self._skipped is not None:
                frames.append(self._skipped)
                self._skipped = None
            else:
                frames.append(self._taken())
            start = end + 1

    def pending(self) -> int:
        """Bytes of an incomplete line held (a peer that closes mid-line leaves them)."""
        return len(self._line)

    def _taken(self) -> bytes | bytearray:
        """The line ended: handed over whole. A large one goes as the buffer itself (a copy would hold it
        twice); a small one as bytes."""
        line, self._line = self._line, bytearray()
        return line if len(line) > LARGE_LINE else bytes(line)

    def _keep(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._skipped is not None:  # the head grows to HEAD_BYTES however the line was cut
            head = self._skipped.head
            if len(head) < HEAD_BYTES:
                head += data[start:min(end, start + HEAD_BYTES - len(head))]
            self._skipped = Oversize(head, self._skipped.size + size)
        elif len(self._line) + size > self.max_bytes:
            held = len(self._line)
            head = bytes(self._line[:HEAD_BYTES]) + data[start:min(end, start + max(0, HEAD_BYTES - held))]
            self._skipped = Oversize(head, held + size)
            self._line = bytearray()
        elif size:
            self._line += memoryview(data)[start:end]
