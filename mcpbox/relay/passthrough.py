"""The relay's interface, and the byte-exact relay that implements it without filtering.

A relay is sans-I/O: the pump hands it bytes from one side and sends what it
returns; it never touches a file descriptor. The filtering JSON-RPC relay
implements the same four methods.
"""

from __future__ import annotations

from typing import Protocol


class Output:
    """What the relay wants sent, in order, to each side, and lines for the user's stderr."""

    __slots__ = ("to_server", "to_client", "notes")

    def __init__(self, to_server: list[bytes] | None = None, to_client: list[bytes] | None = None) -> None:
        self.to_server = to_server or []
        self.to_client = to_client or []
        self.notes: list[bytes] = []


class Relay(Protocol):
    def from_client(self, data: bytes) -> Output: ...

    def from_server(self, data: bytes) -> Output: ...

    def server_gone(self) -> Output:
        """The server's stdout closed: whatever the client still waits for must be answered now."""
        ...

    def sent(self) -> None:
        """The pump has sent the last Output: bookkeeping that need not delay it (audit lines) goes now."""
        ...


class PassThrough:
    def from_client(self, data: bytes) -> Output:
        return Output(to_server=[data])

    def from_server(self, data: bytes) -> Output:
        return Output(to_client=[data])

    def server_gone(self) -> Output:
        return Output()

    def sent(self) -> None:
        pass
