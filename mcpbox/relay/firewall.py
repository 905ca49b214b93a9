"""The JSON-RPC firewall: the profile applied to every message, both ways. Sans-I/O.

Bytes from a side go in, bytes for each side come out (`Output`), with the
decisions to audit; the pump does the I/O. Allowed messages leave as the exact
bytes that arrived; only a message a filter changed is written anew. Both
protocol eras share one session: the `initialize` handshake (server-to-client
requests for sampling, elicitation and roots) and 2026-07-28
(`server/discover`, per-request `_meta` capabilities, `InputRequiredResult`
instead of server-to-client requests).

One frame path serves both directions; the sender (a direction value) picks
what differs. The parts live apart: session state (session.py), whether a
message may pass (judge.py), what is withheld from one that passes
(rewrite.py), and what is cleaned from what the server says (clean.py).
"""

import json
import re
import time
from collections.abc import Callable
from typing import Any

from mcpbox.errors import one_line, said
from mcpbox.profile import Profile
from mcpbox.relay import filters, jsonrpc
from mcpbox.relay.clean import Cleaner
from mcpbox.relay.framing import HEAD_BYTES, LineFramer, Oversize
from mcpbox.relay.interface import Decision, Output
from mcpbox.relay.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Invalid, Message
from mcpbox.relay.judge import Judge, Refusal
from mcpbox.relay.pins import Pins
from mcpbox.relay.rewrite import Hidden, Rewriter
from mcpbox.relay.session import CLIENT, PEER, SERVER, Pending, Session

ENVELOPE_RULE = "a secret or an invisible character in its id or method"
LARGE = 1 << 20  # bytes from which a server message is let go of while it is parsed (`_large`)
_CONTENT = re.compile(rb"\S")  # a frame's first byte that is not blank, found without copying the frame


class Firewall:
    def __init__(self, profile: Profile, *, pins: Pins, secrets: dict[str, str],
                 home: str, granted_paths: list[str], clock: Callable[[], float] = time.monotonic,
                 server_name: str = "SERVER") -> None:
        self.profile = profile
        self.server_name = server_name  # as `mcpbox pins diff|accept` name the server
        self.pins = pins  # read and updated in memory here; the pump saves it (Output.pins_changed)
        self.clock = clock
        self.session = Session()
        self.clean = Cleaner(profile, secrets)
        self.judge = Judge(profile, self.session, home, clock, self.clean.readable)
        self.rewrite = Rewriter(self.session, self.judge, pins, granted_paths, home)
        limit = profile.limits.message_mb * 1024 * 1024
        self.framers = {CLIENT: LineFramer(limit), SERVER: LineFramer(limit)}
        self._notes: list[bytes] = []  # lines for the user's stderr, collected while handling a frame
        self._decisions: list[Decision] = []  # what was decided meanwhile, for the audit
        self._told: list[bytes] = []  # log messages for the client, about items hidden for a change

    # -- the Relay interface ---------------------------------------------------

    @property
    def answered(self) -> bool:
        return self.session.answered

    @property
    def listed(self) -> dict[str, set[str]]:
        return self.session.listed

    def from_client(self, data: bytes) -> Output:
        return self._receive(CLIENT, data)

    def from_server(self, data: bytes) -> Output:
        return self._receive(SERVER, data)

    def awaiting(self) -> bool:
        return bool(self.session.pending[CLIENT])

    def server_gone(self, message: str | None = None) -> Output:
        """Every request the server will now never answer gets an error at once (`message`: why, one line;
        redacted here like all the client gets), and so does every later one; each request of the server's that
        the client has yet to answer ends too (its answer would have nowhere to go)."""
        output = Output()
        session = self.session
        if message is not None:
            session.gone = self.clean.redact(message)
        elif session.gone is None:
            session.gone = "mcpbox: the server exited before answering"
        for key, pending in session.pending[CLIENT].items():
            request_id = json.loads(key)
            output.to_client.append(jsonrpc.error(request_id, INTERNAL_ERROR, session.gone) + b"\n")
            self._audit(SERVER, pending.method, request_id, pending.name, "error", "server exited")
        for key, pending in session.pending[SERVER].items():
            self._audit(SERVER, pending.method, json.loads(key), None, "error", "server exited",
                        pending.size, duration=self.clock() - pending.started)
        session.pending[CLIENT].clear()
        session.pending[SERVER].clear()
        return self._with_notes(output)

    def audit_fields(self, decision: Decision) -> dict[str, Any]:
        """The audit line's fields (the log adds the time): what was decided, its texts already redacted, a
        call's arguments as a hash or (`full`) their redacted text."""
        if decision.event is not None:
            record: dict[str, Any] = {"direction": decision.direction, "event": decision.event,
                                      "kind": decision.kind}
            if decision.name is not None:
                record["name"] = decision.name
            record.update(decision=decision.decision, rule=decision.rule)
            if decision.fields is not None:
                record["fields"] = list(decision.fields)
            return record
        record = {"direction": decision.direction, "method": decision.method, "id": decision.id,
                  "decision": decision.decision}
        if decision.name is not None:
            record["name"] = decision.name
        if decision.rule is not None:
            record["rule"] = decision.rule
        if decision.size is not None:
            record["bytes"] = decision.size
        if decision.response_size is not None:
            record["response_bytes"] = decision.response_size
        if decision.duration is not None:
            record["duration_ms"] = round(decision.duration * 1000, 3)
        if decision.arguments is not None:
            record["arguments"] = self.clean.arguments(decision.arguments)
        return record

    def shown(self, line: bytes) -> bytes:
        return self.clean.shown(line)

    # -- frames ------------------------------------------------------------------

    def _receive(self, sender: str, data: bytes) -> Output:
        output = Output()
        frames = self.framers[sender].feed(data)
        frames.reverse()
        while frames:  # each frame handed over alone: `_large` lets go of its bytes
            self._frame(sender, frames.pop(), output)
        return self._with_notes(output)

    def _frame(self, sender: str, frame: bytes | Oversize, output: Output) -> None:
        if isinstance(frame, Oversize):
            too_long = Invalid(INVALID_REQUEST, f"message over {self.profile.limits.message_mb} MB",
                               jsonrpc.id_from_head(frame.head))
            self._refuse_frame(sender, frame.head, too_long, frame.size, output)
            return
        first = frame[:1]
        if first.isspace():  # blanks before the message (rare): found without copying the frame
            content = _CONTENT.search(frame)
            if content is None:
                return
            first = frame[content.start():content.start() + 1]
            del content  # a match holds its subject: `frame` must have no other holder when it goes
        elif not first:
            return
        if sender == SERVER and first not in (b"{", b"["):
            line = filters.printable(frame[:4096].decode(errors="replace"))
            output.notes.append(f"[server stdout, not JSON-RPC] {line}\n".encode())
            return
        if sender == SERVER and first == b"{" and len(frame) > LARGE:
            head, size, scan = frame[:HEAD_BYTES], len(frame), self.clean.scan(frame)
            try:
                text = jsonrpc.decode(frame)
            except Invalid as invalid:
                self._refuse_frame(SERVER, head, invalid, size, output)
                return
            del frame
            self._large(jsonrpc.Later(text, size, scan), head, output)
            return
        try:
            body = jsonrpc.loads(frame)
            if isinstance(body, list):
                self._batch(sender, body, frame, output)
                return
            message = jsonrpc.classify(body, frame)
        except Invalid as invalid:
            self._refuse_frame(sender, frame, invalid, len(frame), output)
            return
        forward = self._message(sender, message, output)
        if forward is not None:
            _outbox(output, PEER[sender]).append(forward + b"\n")

    def _large(self, later: jsonrpc.Later, head: bytes, output: Output) -> None:
        """A large message from the server (a result of megabytes), judged like any other while it is held at
        most twice at a time: its bytes went once their text was decoded (after the prefilters read them), and
        come back from the text, when it passes unchanged, once its parsed form is gone. Its newline is
        written apart (the pump writes both in one call), so that the bytes are never copied."""
        try:
            message = jsonrpc.classify(jsonrpc.parse(later.text, head), later)
        except Invalid as invalid:
            self._refuse_frame(SERVER, head, invalid, later.size, output)
            return
        forward = self._message(SERVER, message, output)
        if forward is None:
            return
        if forward is later:
            del message
            forward = later.text.encode()
        output.to_client += (forward, b"\n")

    def _batch(self, sender: str, items: list[Any], frame: bytes, output: Output) -> None:
        """A 2025-03-26 batch. Each element is judged alone, so nothing denied rides along, and mcpbox's
        answers to its elements go back to the sender as one batch. A client's invalid element is answered on
        its own; a server batch with one is refused whole: every element is classified before any is judged.
        A batch stays a batch, even of one."""
        if not items:
            raise Invalid(INVALID_REQUEST, "empty batch")
        classified: list[Message | tuple[Invalid, bytes]] = []
        for item in items:
            raw = jsonrpc.dumps(item)
            try:
                classified.append(jsonrpc.classify(item, raw))
            except Invalid as invalid:
                if sender == SERVER:
                    raise
                classified.append((invalid, raw))
        replies = Output()
        forwarded: list[bytes] = []
        unchanged = True
        for entry in classified:
            if isinstance(entry, tuple):
                invalid, raw = entry
                self._refuse_frame(sender, raw, invalid, len(raw), replies)
                unchanged = False
                continue
            forward = self._message(sender, entry, replies)
            if forward is None:
                unchanged = False
            else:
                unchanged = unchanged and forward is entry.raw
                forwarded.append(forward)
        if forwarded:
            _outbox(output, PEER[sender]).append((frame if unchanged else b"[" + b",".join(forwarded) + b"]") + b"\n")
        answers = _outbox(replies, sender)
        if answers:
            _outbox(output, sender).append(b"[" + b",".join(answer.rstrip(b"\n") for answer in answers) + b"]\n")
        _outbox(output, PEER[sender]).extend(_outbox(replies, PEER[sender]))
        output.notes.extend(replies.notes)

    def _refuse_frame(self, sender: str, raw: bytes, invalid: Invalid, size: int, output: Output) -> None:
        """A broken message never reaches the other side. A client's request gets the error itself (when its
        id can be read); a broken server message is taken as the answer to the request whose id it starts
        with, and that request gets an error."""
        if sender == CLIENT:
            self._audit(CLIENT, None, invalid.id, None, "drop", invalid.reason, size)
            if invalid.id is not None:
                output.to_client.append(jsonrpc.error(invalid.id, invalid.code, f"mcpbox: {invalid.reason}") + b"\n")
            return
        request_id = jsonrpc.id_from_head(raw)
        pending = self.session.pending[CLIENT].pop(jsonrpc.id_key(request_id), None) \
            if request_id is not None else None
        self._audit(SERVER, pending.method if pending else None, request_id, pending.name if pending else None,
                    "drop", invalid.reason, size)
        if pending is not None:
            output.to_client.append(jsonrpc.error(request_id, INTERNAL_ERROR,
                                                  f"mcpbox: the server's answer was dropped: {invalid.reason}") + b"\n")
        output.notes.append(said(f"dropped a message from the server: {invalid.reason}"))

    # -- messages ----------------------------------------------------------------

    def _message(self, sender: str, message: Message, output: Output) -> bytes | None:
        """The bytes to send the other side, or None when mcpbox answered (or dropped) the message."""
        if message.kind == jsonrpc.RESPONSE:
            return self._answer(sender, message)
        if message.kind == jsonrpc.NOTIFICATION:
            return self._notification(sender, message, output)
        return self._request(sender, message, output)

    def _request(self, sender: str, message: Message, output: Output) -> bytes | None:
        method = message.method or ""
        session = self.session
        if sender == CLIENT and session.gone is not None:  # no server to answer it
            self._refuse(sender, message, None, Refusal("server exited", session.gone, INTERNAL_ERROR, "error"), output)
            return None
        key = message.id_key
        busy = session.refusal(sender, key)
        if busy:
            self._refuse(sender, message, None, Refusal(busy, f"mcpbox: {busy}", INVALID_REQUEST), output)
            return None
        params = message.params
        name, refusal = self.judge.request(sender, method, params)
        if refusal is not None:
            self._refuse(sender, message, name, refusal, output)
            return None
        forward = self._onward(sender, message)
        if forward is None:
            self._refuse_envelope(message, output)
            return None
        audited = method == "tools/call" and self.profile.audit.arguments != "none"
        arguments = params.get("arguments") if audited else None
        session.pending[sender][key] = Pending(method, name, self.clock(), message.size, arguments)
        return forward

    def _notification(self, sender: str, message: Message, output: Output) -> bytes | None:
        name, refusal = self.judge.notification(sender, message.method or "", message.params)
        if refusal is not None:
            self._refuse(sender, message, name, refusal, output)
            return None
        if message.method == "notifications/cancelled":
            # The other side may never answer now: the entry must not wait forever, and its line says how it ended.
            self._end_pending(sender, message.params.get("requestId"))
        forward = self._onward(sender, message)
        if forward is None:
            self._refuse_envelope(message, output)
        return forward

    def _answer(self, responder: str, message: Message) -> bytes | None:
        """One audit line for the whole exchange, whichever side asked."""
        pending = self.session.answered_by(responder, message.id_key)
        if pending is None:
            self._audit(responder, None, message.id, None, "drop",
                        f"response to an id the {PEER[responder]} never sent", message.size)
            return None
        answer = self.rewrite.answer(responder, pending, message)
        for hidden in answer.hidden:
            self._hidden(hidden)
        self._audit(responder, pending.method, message.id, pending.name, answer.decision, answer.rule, pending.size,
                    duration=self.clock() - pending.started, arguments=pending.arguments,
                    response_bytes=message.size)
        if answer.replaced is not None:
            return answer.replaced
        if responder == CLIENT:
            return message.raw if answer.body is message.body else jsonrpc.dumps(answer.body)
        return self.clean.cleaned(message, answer.body)

    def _onward(self, sender: str, message: Message) -> bytes | None:
        """A request or notification as the other side may get it: the client's with the capabilities the
        profile refuses taken out, the server's cleaned (None: its envelope would have to change)."""
        if sender == CLIENT:
            return self.rewrite.narrowed(message)
        return self.clean.cleaned(message, message.body)

    def _refuse(self, sender: str, message: Message, name: Any, refusal: Refusal, output: Output) -> None:
        """The audit line, and the sender's answer when it waits for one."""
        self._audit(sender, message.method, message.id, name, refusal.decision, refusal.rule, message.size)
        if message.kind == jsonrpc.REQUEST:
            reply = jsonrpc.tool_error(message.id, refusal.text) if refusal.code is None else \
                jsonrpc.error(message.id, refusal.code, refusal.text)
            _outbox(output, sender).append(reply + b"\n")

    def _refuse_envelope(self, message: Message, output: Output) -> None:
        """Audited without its id and with its method redacted: the audit log never holds a secret."""
        if message.kind == jsonrpc.REQUEST:
            output.to_server.append(jsonrpc.error(message.id, INVALID_REQUEST, f"mcpbox: refused, {ENVELOPE_RULE}")
                                    + b"\n")
        self._audit(SERVER, self.clean.method_for_log(message.method), None, None, "drop", ENVELOPE_RULE,
                    message.size)
        self._notes.append(said(f"dropped a {message.kind} from the server: {ENVELOPE_RULE}"))

    def _end_pending(self, sender: str, request_id: Any) -> None:
        """A request of `sender`'s the other side will not answer now: forgotten, with its audit line."""
        pending = self.session.pending[sender].pop(jsonrpc.id_key(request_id), None)
        if pending is not None:
            self._audit(sender, pending.method, request_id, pending.name, "cancel", f"cancelled by the {sender}",
                        pending.size, duration=self.clock() - pending.started, arguments=pending.arguments)

    # -- what is said about it ---------------------------------------------------

    def _hidden(self, hidden: Hidden) -> None:
        """An item withheld for a change since it was pinned: audited, and said to the user and the client."""
        see = (f"See the change: mcpbox pins diff {self.server_name}; if you trust it: mcpbox pins accept "
               f"{self.server_name}")
        if hidden.name is None:
            self._decisions.append(Decision(direction=SERVER, decision="hide", rule="changed since first seen",
                                            event="pin", kind=hidden.kind))
            self._tell(f"the server's instructions changed since they were first seen; they are withheld. {see}")
            return
        self._decisions.append(Decision(direction=SERVER, decision="hide", name=self.clean.for_log(hidden.name),
                                        rule="changed since first seen", event="pin", kind=hidden.kind,
                                        fields=hidden.fields))
        self._tell(f"the server's {hidden.kind} {hidden.name!r} changed since it was first seen "
                   f"({', '.join(hidden.fields)}); it is hidden and its calls refused. {see}")

    def _audit(self, direction: str, method: str | None, request_id: Any, name: Any, decision: str,
               rule: str | None, size: int | None = None, duration: float | None = None,
               arguments: Any = None, response_bytes: int | None = None) -> None:
        """One decision for the audit. Every text in it may come from a peer (an id, a method, a name, a rule
        quoting them), so each is redacted: the audit log never holds a secret value."""
        safe = self.clean.for_log
        self._decisions.append(Decision(
            direction=direction, decision=decision, method=safe(method), id=safe(request_id),
            name=None if name is None else safe(name), rule=None if rule is None else safe(rule), size=size,
            response_size=response_bytes, duration=duration, arguments=arguments))

    def _tell(self, text: str) -> None:
        """Said on stderr and to the client too, as a log message it shows (notifications/message)."""
        self._notes.append(said(text))
        self._told.append(json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {
            "level": "warning", "logger": "mcpbox", "data": self.clean.redact(one_line(text))}},
            ensure_ascii=False).encode() + b"\n")

    def _with_notes(self, output: Output) -> Output:
        """The output with what was said, decided and pinned while it was made."""
        if self._notes:
            output.notes.extend(self._notes)
            self._notes.clear()
        if self._decisions:
            output.decisions.extend(self._decisions)
            self._decisions.clear()
        if self._told:  # before the answer that leaves the item out: the client learns why first
            output.to_client[:0] = self._told
            self._told.clear()
        output.pins_changed = self.pins.dirty
        return output


def _outbox(output: Output, side: str) -> list[bytes]:
    """What goes to `side`."""
    return output.to_client if side == CLIENT else output.to_server
