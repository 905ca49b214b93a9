"""The relay's interface, and the byte-exact relay that implements it without filtering.

A relay is sans-I/O: the pump hands it bytes from one side and sends what it
returns; it never touches a file descriptor. The filtering JSON-RPC relay
implements the same three methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Output:
    to_server: list[bytes] = field(default_factory=list)
    to_client: list[bytes] = field(default_factory=list)


class Relay(Protocol):
    def from_client(self, data: bytes) -> Output: ...

    def from_server(self, data: bytes) -> Output: ...

    def server_gone(self) -> Output:
        """The server's stdout closed: whatever the client still waits for must be answered now."""
        ...


class PassThrough:
    def from_client(self, data: bytes) -> Output:
        return Output(to_server=[data])

    def from_server(self, data: bytes) -> Output:
        return Output(to_client=[data])

    def server_gone(self) -> Output:
        return Output()
