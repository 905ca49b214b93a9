"""What a relayed session remembers between messages. No policy decides here.

Each side has its own id space, so each has its own table of the requests it
sent and the other has yet to answer, keyed by the exact JSON of the id (1 and
"1" are different ids). A direction is named by the side that sent the
message: "client" or "server", as the audit lines name it.
"""

from typing import Any, NamedTuple

CLIENT, SERVER = "client", "server"
PEER = {CLIENT: SERVER, SERVER: CLIENT}
MAX_PENDING = 4096  # unanswered requests per side: a peer that never answers cannot grow mcpbox


class Pending(NamedTuple):
    """A request on its way: what its answer's audit line will say."""

    method: str
    name: Any  # the item it names (a tool, a prompt, a URI), as sent
    started: float
    size: int
    arguments: Any  # a call's arguments as the client sent them, or None when the audit keeps none


class Session:
    def __init__(self) -> None:
        self.pending: dict[str, dict[str, Pending]] = {CLIENT: {}, SERVER: {}}  # sender -> id key -> request
        self.changed: set[tuple[str, str]] = set()  # (kind, name) hidden because its definition changed
        self.listed: dict[str, set[str]] = {}  # kind -> the names the client was shown (what `learn` reports)
        self.answered = False  # the server has answered a request of the client's: it is past its start
        self.gone: str | None = None  # once the server is gone (or given up on): what later requests are told

    def refusal(self, sender: str, key: str) -> str | None:
        """Why a request of `sender`'s with this id cannot be tracked, or None."""
        table = self.pending[sender]
        if key in table:
            return "this id is already in use by a pending request"
        if len(table) >= MAX_PENDING:
            return f"over {MAX_PENDING} requests are waiting for an answer"
        return None

    def answered_by(self, responder: str, key: str) -> Pending | None:
        """The request of the other side's that an answer from `responder` closes, or None when there is none."""
        pending = self.pending[PEER[responder]].pop(key, None)
        if pending is not None and responder == SERVER:
            self.answered = True
        return pending
