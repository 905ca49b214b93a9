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
    answered: bool  # the server has answered a request of the client's: its start-up is over

    def from_client(self, data: bytes) -> Output: ...

    def from_server(self, data: bytes) -> Output: ...

    def awaiting(self) -> bool:
        """Whether a request of the client's waits for the server's answer."""
        ...

    def server_gone(self, message: str | None = None) -> Output:
        """The server's stdout closed (or mcpbox gave up on it): whatever the client still waits for, and
        whatever it asks from now on, is answered now, with `message` (one line) when given."""
        ...

    def shown(self, line: bytes) -> bytes:
        """A line as it may reach the user's stderr (secrets redacted, terminal controls made harmless)."""
        ...

    def sent(self) -> None:
        """The pump has sent the last Output: bookkeeping that need not delay it (audit lines) goes now."""
        ...
