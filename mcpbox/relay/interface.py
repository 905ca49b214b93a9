"""The relay's interface, between the pump and the firewall.

A relay is sans-I/O: the pump hands it bytes from one side and gets back what to send, what to tell the
user, the decisions to audit and whether its pins changed; the pump does all the I/O (and writes the audit
lines and saves the pins only after sending, so a message never waits for its own audit line). The relay
never touches a file descriptor.
"""

from typing import Any, NamedTuple, Protocol


class Decision(NamedTuple):
    """One audited decision, as the relay took it; `Relay.audit_fields` makes its audit line. Every text in
    it is redacted already, but `arguments`, kept as they came, which the line hashes (or redacts) later."""

    direction: str  # "client" or "server": whose message was decided on
    decision: str  # allow, deny, drop, error, cancel, hide
    method: Any = None
    id: Any = None
    name: Any = None
    rule: str | None = None
    size: int | None = None  # bytes of the message
    response_size: int | None = None
    duration: float | None = None  # seconds, request to answer
    arguments: Any = None  # a call's arguments (None: not audited)
    event: str | None = None  # "pin": a definition changed since first seen
    kind: str | None = None  # the pinned item's kind
    fields: tuple[str, ...] | None = None  # the pinned fields that changed


class Output:
    """What the relay wants sent, in order, to each side (each list's chunks written back to back make whole
    lines: a large message and its newline come as two), lines for the user's stderr, the decisions to audit,
    and whether the pin store has changes to save."""

    __slots__ = ("to_server", "to_client", "notes", "decisions", "pins_changed")

    def __init__(self) -> None:
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.notes: list[bytes] = []
        self.decisions: list[Decision] = []
        self.pins_changed = False


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

    def audit_fields(self, decision: Decision) -> dict[str, Any]:
        """The audit line of a decision (its call arguments hashed or redacted now, after the message went)."""
        ...
