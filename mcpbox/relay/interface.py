"""The relay's interface, between the pump and the firewall.

A relay is sans-I/O: the pump hands it bytes from one side and sends what it
returns; it never touches a file descriptor.
"""

from __future__ import annotations

from typing import Protocol


class Output:
    """What the relay wants sent, in order, to each side, and lines for the user's stderr."""

    __slots__ = ("to_server", "to_client", "notes")

    def __init__(self) -> None:
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.notes: list[bytes] = []


class Relay(Protocol):
    def from_client(self, data: bytes) -> Output: ...

    def from_server(self, data: bytes) -> Output: ...

    def server_gone(self) -> Output:
        """The server's stdout closed: whatever the client still waits for must be answered now."""
        ...

    def shown(self, line: bytes) -> bytes:
        """A line as it may reach the user's stderr (secrets redacted, terminal controls made harmless)."""
        ...

    def sent(self) -> None:
        """The pump has sent the last Output: bookkeeping that need not delay it (audit lines) goes now."""
        ...
