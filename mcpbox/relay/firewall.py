"""The JSON-RPC firewall: the profile applied to every message, both ways. Sans-I/O.

Bytes from a side go in, bytes for each side come out (`Output`); the pump
does the I/O. Allowed messages leave as the exact bytes that arrived; only a
message a filter changed is written anew. Both protocol eras share one
session: the `initialize` handshake (server-to-client requests for sampling,
elicitation and roots) and 2026-07-28 (`server/discover`, per-request `_meta`
capabilities, `InputRequiredResult` instead of server-to-client requests).
Each direction has its own id space, so each has its own pending table, keyed
by the exact JSON of the id.
"""

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from mcpbox.paths import within
from mcpbox.profile import Profile
from mcpbox.relay import filters, jsonrpc
from mcpbox.relay.framing import LineFramer, Oversize
from mcpbox.relay.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Invalid, Message
from mcpbox.relay.interface import Decision, Output
from mcpbox.relay.pins import NEW, SAME, PinStore
from mcpbox.relay.policy import NameRule, RateLimiter, argument_problem, normalize_path

CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
MAX_PENDING = 4096  # unanswered requests per direction: a peer that never answers cannot grow mcpbox
CLIENT_ASKS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
TOOL_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
PROMPT_FIELDS = ("name", "title", "description", "arguments")
TEMPLATE_FIELDS = ("uriTemplate", "name", "title", "description", "mimeType")
LISTS = {  # method -> (result key, item kind, field naming the item, pinned fields)
    "tools/list": ("tools", "tool", "name", TOOL_FIELDS),
    "prompts/list": ("prompts", "prompt", "name", PROMPT_FIELDS),
    "resources/list": ("resources", "resource", "uri", None),
    "resources/templates/list": ("resourceTemplates", "template", "uriTemplate", TEMPLATE_FIELDS),
}
URI_KINDS = ("resource", "template")  # judged by the resource globs, named by a URI that stays exact


ENVELOPE_RULE = "a secret or an invisible character in its id or method"
# call arguments as the audit line hashes them; built once, as json.dumps with options builds one per call
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode


class Pending(NamedTuple):
    method: str
    name: str | None
    started: float
    size: int
    arguments: Any  # as the client sent them, for the audit line


class Firewall:
    def __init__(self, profile: Profile, *, pins: PinStore, secrets: dict[str, str],
                 home: str, granted_paths: list[str], clock: Callable[[], float] = time.monotonic,
                 server_name: str = "SERVER") -> None:
        self.profile = profile
        self.server_name = server_name  # as `mcpbox pins diff|accept` name the server
        self.pins = pins  # read and updated in memory here; the pump saves it (Output.pins_changed)
        self.home = home
        self.granted = [path.rstrip("/") or "/" for path in granted_paths]
        self.clock = clock
        limit = profile.limits.message_mb * 1024 * 1024
        self.client_frames = LineFramer(limit)
        self.server_frames = LineFramer(limit)
        self.resources = NameRule(profile.resources.allow, profile.resources.deny, paths=True)
        self.rules = {"tool": NameRule(profile.tools.allow, profile.tools.deny),
                      "prompt": NameRule(profile.prompts.allow, profile.prompts.deny),
                      "resource": self.resources, "template": self.resources}
        self.rates = RateLimiter(profile.tools.rate)
        self.redact = filters.Redactor(secrets, profile.redact.builtin, profile.redact.patterns)
        self.clean_result = filters.result_cleaner(profile.redact.keep_ansi)
        # server-to-client request method -> the client capability it needs, for those the profile refuses
        self.refused_asks = {method: asks for method, asks in CLIENT_ASKS.items() if not getattr(profile.client, asks)}
        self.changed: set[tuple[str, str]] = set()  # (kind, name) hidden because its definition changed
        self.listed: dict[str, set[str]] = {}  # kind -> the names the client was shown (what `learn` reports)
        self.from_client_pending: dict[str, Pending] = {}  # client requests the server has not answered
        self.from_server_pending: dict[str, Pending] = {}  # server requests the client has not answered
        self.answered = False  # the server has answered a request of the client's: it is past its start
        self.gone: str | None = None  # once the server is gone (or given up on): what later requests are told
        self._notes: list[bytes] = []  # lines for the user's stderr, collected while handling a frame
        self._decisions: list[Decision] = []  # what was decided meanwhile, for the audit
        self._told: list[bytes] = []  # log messages for the client, about items hidden for a change

    # -- the Relay interface ---------------------------------------------------

    def from_client(self, data: bytes) -> Output:
        output = Output()
        for frame in self.client_frames.feed(data):
            self._client_frame(frame, output)
        return self._with_notes(output)

    def from_server(self, data: bytes) -> Output:
        output = Output()
        for frame in self.server_frames.feed(data):
            self._server_frame(frame, output)
        return self._with_notes(output)

    def awaiting(self) -> bool:
        return bool(self.from_client_pending)

    def server_gone(self, message: str | None = None) -> Output:
        """Every request the server will now never answer gets an error at once (`message`: why, one line;
        redacted here like all the client gets), and so does every later one; each request of the server's that
        the client has yet to answer ends too (its answer would have nowhere to go)."""
        output = Output()
        if message is not None:
            self.gone = self.redact(message)
        elif self.gone is None:
            self.gone = "mcpbox: the server exited before answering"
        for key, pending in self.from_client_pending.items():
            request_id = json.loads(key)
            output.to_client.append(jsonrpc.error(request_id, INTERNAL_ERROR, self.gone) + b"\n")
            self._audit("server", pending.method, request_id, pending.name, "error", "server exited")
        for key, pending in self.from_server_pending.items():
            self._audit("server", pending.method, json.loads(key), None, "error", "server exited",
                        pending.size, duration=self.clock() - pending.started)
        self.from_client_pending.clear()
        self.from_server_pending.clear()
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
            record["arguments"] = self._audited_arguments(decision.arguments)
        return record

    # -- client -> server ----------------------------------------------------------

    def _client_frame(self, frame: bytes | Oversize, output: Output) -> None:
        if isinstance(frame, Oversize):
            self._refuse_client_frame(Invalid(INVALID_REQUEST, f"message over {self.profile.limits.message_mb} MB",
                                              jsonrpc.id_from_head(frame.head)), frame.size, output)
            return
        if not frame.strip():
            return
        try:
            body = jsonrpc.loads(frame)
            if isinstance(body, list):
                self._client_batch(body, frame, output)
                return
            message = jsonrpc.classify(body, frame)
        except Invalid as invalid:
            self._refuse_client_frame(invalid, len(frame), output)
            return
        forward = self._client_message(message, output)
        if forward is not None:
            output.to_server.append(forward + b"\n")

    def _client_batch(self, items: list[Any], frame: bytes, output: Output) -> None:
        """A 2025-03-26 batch: each element judged alone, so nothing denied rides along."""
        if not items:
            self._refuse_client_frame(Invalid(INVALID_REQUEST, "empty batch"), len(frame), output)
            return
        forwarded: list[bytes] = []
        answers = Output()
        unchanged = True
        for item in items:
            raw = jsonrpc.dumps(item)
            try:
                message = jsonrpc.classify(item, raw)
            except Invalid as invalid:
                self._refuse_client_frame(invalid, len(raw), answers)
                unchanged = False
                continue
            forward = self._client_message(message, answers)
            if forward is None:
                unchanged = False
            else:
                unchanged = unchanged and forward is raw
                forwarded.append(forward)
        if forwarded:
            output.to_server.append((frame if unchanged else b"[" + b",".join(forwarded) + b"]") + b"\n")
        if answers.to_client:
            output.to_client.append(b"[" + b",".join(a.rstrip(b"\n") for a in answers.to_client) + b"]\n")
        output.to_server.extend(answers.to_server)

    def _refuse_client_frame(self, invalid: Invalid, size: int, output: Output) -> None:
        self._audit("client", None, invalid.id, None, "drop", invalid.reason, size)
        if invalid.id is not None:
            output.to_client.append(jsonrpc.error(invalid.id, invalid.code, f"mcpbox: {invalid.reason}") + b"\n")

    def _client_message(self, message: Message, output: Output) -> bytes | None:
        """The bytes to send the server, or None when mcpbox answered (or dropped) it."""
        if message.kind == jsonrpc.RESPONSE:
            return self._client_response(message)
        if message.kind == jsonrpc.NOTIFICATION:
            return self._client_notification(message)
        if self.gone is not None:  # no server to answer it
            output.to_client.append(jsonrpc.error(message.id, INTERNAL_ERROR, self.gone) + b"\n")
            self._audit("client", message.method, message.id, None, "error", "server exited", len(message.raw))
            return None
        key = message.id_key
        refusal = self._pending_refusal(key, self.from_client_pending)
        if refusal:
            output.to_client.append(jsonrpc.error(message.id, INVALID_REQUEST, f"mcpbox: {refusal}") + b"\n")
            self._audit("client", message.method, message.id, None, "deny", refusal, len(message.raw))
            return None
        params = message.params
        name, denial = self._judge_request(message.id, message.method or "", params)
        if denial is not None:
            output.to_client.append(denial + b"\n")
            return None
        audited = message.method == "tools/call" and self.profile.audit.arguments != "none"
        arguments = params.get("arguments") if audited else None
        self.from_client_pending[key] = Pending(message.method or "", name, self.clock(), len(message.raw), arguments)
        return self._narrowed(message)

    def _client_notification(self, message: Message) -> bytes | None:
        if message.method == "notifications/roots/list_changed" and not self.profile.client.roots:
            self._audit("client", message.method, None, None, "drop", "client.roots", len(message.raw))
            return None
        if message.method == "notifications/cancelled":
            # The server may never answer now: the entry must not wait forever, and its line says how it ended.
            self._end_pending(self.from_client_pending, message.params.get("requestId"), "client")
        return self._narrowed(message)

    def _end_pending(self, table: dict[str, Pending], request_id: Any, by: str) -> None:
        """A request the other side will not answer now (cancelled by `by`): forgotten, with its audit line."""
        pending = table.pop(jsonrpc.id_key(request_id), None)
        if pending is not None:
            self._audit(by, pending.method, request_id, pending.name, "cancel", f"cancelled by the {by}",
                        pending.size, duration=self.clock() - pending.started, arguments=pending.arguments)

    def _judge_request(self, request_id: Any, method: str, params: dict[str, Any]) -> tuple[Any, bytes | None]:
        """(the item a request names, and mcpbox's answer when it must not reach the server)."""
        if method == "tools/call":
            name = params.get("name")
            if not isinstance(name, str) or not self._visible("tool", name):
                return name, self._deny(request_id, name, method, f"Unknown tool: {name}",
                                        self._hiding_rule("tool", name))
            problem = argument_problem(name, params.get("arguments", {}),
                                       self.profile.tools.arguments.get(name, {}), self.home)
            if problem:
                return name, self._deny(request_id, name, method, problem, f"tools.arguments.{name}", as_result=True)
            wait = self.rates.retry_after(name, self.clock())
            if wait is not None:
                return name, self._deny(request_id, name, method, f"mcpbox: rate limit for {name} reached; "
                                        f"retry in {wait:.1f} s", "tools.rate", as_result=True)
            return name, None
        if method == "prompts/get":
            name = params.get("name")
            if not isinstance(name, str) or not self._visible("prompt", name):
                return name, self._deny(request_id, name, method, f"Unknown prompt: {name}",
                                        self._hiding_rule("prompt", name))
            return name, None
        if method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            uri = params.get("uri")
            return uri, self._refused_resource(request_id, method, uri)
        if method == "subscriptions/listen":
            # 2026-07-28's resources/subscribe: one refused URI refuses the stream, as it would the subscribe.
            wanted = params.get("notifications")
            uris = wanted.get("resourceSubscriptions") if isinstance(wanted, dict) else None
            for uri in uris if isinstance(uris, list) else [] if uris is None else [uris]:
                denial = self._refused_resource(request_id, method, uri)
                if denial is not None:
                    return uri, denial
            return None, None
        if method == "completion/complete":
            ref = params.get("ref") if isinstance(params.get("ref"), dict) else {}
            name, uri = ref.get("name"), ref.get("uri")
            if ref.get("type") == "ref/prompt" and not self._visible("prompt", str(name)):
                return name, self._deny(request_id, name, method, f"Unknown prompt: {name}",
                                        self._hiding_rule("prompt", name))
            if ref.get("type") == "ref/resource":
                return uri, self._refused_resource(request_id, method, uri)
        return None, None

    def _refused_resource(self, request_id: Any, method: str, uri: Any) -> bytes | None:
        """mcpbox's answer to a request naming a resource (or template) the profile hides, else None."""
        if not self._hidden_resource(uri):
            return None
        return self._deny(request_id, uri, method, f"Unknown resource: {uri}", self._hiding_rule("resource", str(uri)))

    def _hidden_resource(self, uri: Any) -> bool:
        return not (isinstance(uri, str) and self.resources.allows(uri))

    def _narrowed(self, message: Message) -> bytes:
        """The bytes of a client message, rewritten only when narrowing changed its params."""
        return jsonrpc.dumps(message.body) if self._narrow_client_capabilities(message) else message.raw

    def _narrow_client_capabilities(self, message: Message) -> bool:
        """The server is never told the client can do what the profile refuses it, whatever the shape
        of the message telling it (request or notification, alone or in a batch, params an object or
        an array of them): its params are narrowed in place; True when that changed them."""
        params = message.body.get("params")
        each = params if isinstance(params, list) else [params]
        return any([self._narrow_params(message.method, item) for item in each if isinstance(item, dict)])

    def _narrow_params(self, method: str | None, params: dict[str, Any]) -> bool:
        changed = False
        if method == "initialize" and isinstance(params.get("capabilities"), dict):
            narrowed = self._without_refused(params["capabilities"])
            if narrowed is not None:
                params["capabilities"] = narrowed
                changed = True
        meta = params.get("_meta")
        if isinstance(meta, dict) and isinstance(meta.get(CAPABILITIES_META), dict):
            narrowed = self._without_refused(meta[CAPABILITIES_META])
            if narrowed is not None:
                meta[CAPABILITIES_META] = narrowed
                changed = True
        responses = params.get("inputResponses")
        if isinstance(responses, dict):
            for key, value in responses.items():
                if isinstance(value, dict) and isinstance(value.get("roots"), list):
                    kept = self._granted_roots(value["roots"])
                    if kept != value["roots"]:
                        responses[key] = {**value, "roots": kept}
                        changed = True
        return changed

    def _without_refused(self, capabilities: dict[str, Any]) -> dict[str, Any] | None:
        refused = [name for name in self.refused_asks.values() if name in capabilities]
        return {k: v for k, v in capabilities.items() if k not in refused} if refused else None

    def _client_response(self, message: Message) -> bytes | None:
        """The client's answer to a server request: one audit line for the whole exchange, as for a
        client request."""
        pending = self.from_server_pending.pop(message.id_key, None)
        if pending is None:
            self._audit("client", None, message.id, None, "drop", "response to an id the server never sent",
                        len(message.raw))
            return None
        forward, decision, rule = message.raw, "allow" if "result" in message.body else "error", None
        result = message.body.get("result")
        if pending.method == "roots/list" and isinstance(result, dict) and isinstance(result.get("roots"), list):
            kept = self._granted_roots(result["roots"])
            if kept != result["roots"]:
                decision, rule = "filter", "roots outside the sandbox's binds"
                forward = jsonrpc.dumps({**message.body, "result": {**result, "roots": kept}})
        self._audit("client", pending.method, message.id, None, decision, rule, pending.size,
                    duration=self.clock() - pending.started, response_bytes=len(message.raw))
        return forward

    def _granted_roots(self, roots: list[Any]) -> list[Any]:
        """Only roots the sandbox can see: a bound path or a folder inside one."""
        kept = []
        for root in roots:
            uri = root.get("uri") if isinstance(root, dict) else None
            if isinstance(uri, str) and uri.startswith("file://"):
                path = normalize_path(uri, self.home)
                if any(within(path, granted) for granted in self.granted):
                    kept.append(root)
        return kept

    # -- server -> client ----------------------------------------------------------

    def _server_frame(self, frame: bytes | Oversize, output: Output) -> None:
        if isinstance(frame, Oversize):
            self._refuse_server_frame(frame.head, f"message over {self.profile.limits.message_mb} MB", frame.size,
                                      output)
            return
        stripped = frame.strip()
        if not stripped:
            return
        if stripped[:1] not in (b"{", b"["):
            line = filters.printable(frame[:4096].decode(errors="replace"))
            output.notes.append(f"[server stdout, not JSON-RPC] {line}\n".encode())
            return
        try:
            body = jsonrpc.loads(frame)
            if isinstance(body, list):
                self._server_batch(body, frame, output)
                return
            message = jsonrpc.classify(body, frame)
        except Invalid as invalid:
            self._refuse_server_frame(frame, invalid.reason, len(frame), output)
            return
        forward = self._server_message(message, output)
        if forward is not None:
            output.to_client.append(forward + b"\n")

    def _server_batch(self, items: list[Any], frame: bytes, output: Output) -> None:
        """Unlike the client's, a server batch is refused whole when an element is invalid: every element is
        classified (raising Invalid) before any is judged. A batch stays a batch, even of one."""
        messages = [jsonrpc.classify(item, jsonrpc.dumps(item)) for item in items]
        forwarded = [self._server_message(message, output) for message in messages]
        kept = [raw for raw in forwarded if raw is not None]
        if kept:
            unchanged = all(raw is message.raw for raw, message in zip(forwarded, messages, strict=True))
            output.to_client.append((frame if unchanged else b"[" + b",".join(kept) + b"]") + b"\n")

    def _refuse_server_frame(self, raw: bytes, reason: str, size: int, output: Output) -> None:
        """A broken server message never reaches the client; the request it answers gets an error."""
        request_id = jsonrpc.id_from_head(raw)
        pending = self.from_client_pending.pop(jsonrpc.id_key(request_id), None) if request_id is not None else None
        self._audit("server", pending.method if pending else None, request_id, pending.name if pending else None,
                    "drop", reason, size)
        if pending is not None:
            output.to_client.append(jsonrpc.error(request_id, INTERNAL_ERROR,
                                                  f"mcpbox: the server's answer was dropped: {reason}") + b"\n")
        output.notes.append(f"mcpbox: dropped a message from the server: {reason}\n".encode())

    def _server_message(self, message: Message, output: Output) -> bytes | None:
        if message.kind == jsonrpc.RESPONSE:
            return self._server_response(message)
        if message.method == "notifications/resources/updated":
            uri = message.params.get("uri")
            if self._hidden_resource(uri):  # the client would learn of a resource the profile hides
                self._audit("server", message.method, message.id, uri, "drop",
                            self._hiding_rule("resource", str(uri)), len(message.raw))
                if message.kind == jsonrpc.REQUEST:  # dressed as a request: its sender must not wait forever
                    output.to_server.append(jsonrpc.error(message.id, INVALID_PARAMS, f"Unknown resource: {uri}")
                                            + b"\n")
                return None
        if message.kind == jsonrpc.REQUEST:
            return self._server_request(message, output)
        asks = self.refused_asks.get(self.clean_result(message.method or ""))
        if asks is not None:
            self._audit("server", message.method, None, None, "drop", f"client.{asks}", len(message.raw))
            return None  # a refused request dressed as a notification
        if message.method == "notifications/cancelled":
            self._end_pending(self.from_server_pending, message.params.get("requestId"), "server")
        cleaned = self._cleaned(message, message.body)
        if cleaned is None:
            self._refuse_envelope(message)
        return cleaned

    def _server_request(self, message: Message, output: Output) -> bytes | None:
        method = message.method or ""
        asks = self.refused_asks.get(method)
        if asks is not None:
            output.to_server.append(jsonrpc.error(message.id, METHOD_NOT_FOUND,
                                                  f"mcpbox: the profile does not allow {asks}") + b"\n")
            self._audit("server", method, message.id, None, "deny", f"client.{asks}", len(message.raw))
            return None
        key = message.id_key
        refusal = self._pending_refusal(key, self.from_server_pending)
        if refusal:
            output.to_server.append(jsonrpc.error(message.id, INVALID_REQUEST, f"mcpbox: {refusal}") + b"\n")
            self._audit("server", method, message.id, None, "deny", refusal, len(message.raw))
            return None
        cleaned = self._cleaned(message, message.body)
        if cleaned is None:
            output.to_server.append(jsonrpc.error(message.id, INVALID_REQUEST, f"mcpbox: refused, {ENVELOPE_RULE}") + b"\n")
            self._refuse_envelope(message)
            return None
        self.from_server_pending[key] = Pending(method, None, self.clock(), len(message.raw), None)
        return cleaned

    def _server_response(self, message: Message) -> bytes | None:
        pending = self.from_client_pending.pop(message.id_key, None)
        if pending is None:
            self._audit("server", None, message.id, None, "drop", "response to an id the client never sent",
                        len(message.raw))
            return None
        self.answered = True
        body = message.body
        result = body.get("result")
        decision = "allow" if "result" in body else "error"
        if isinstance(result, dict):
            if result.get("resultType") == "input_required":
                denial = self._refused_input(pending, message.id, result)
                if denial is not None:
                    return denial
            if pending.method in LISTS:
                body = {**body, "result": self._filtered_list(pending.method, result)}
            elif pending.method in ("initialize", "server/discover"):
                body = {**body, "result": self._checked_server_info(result)}
        self._audit("server", pending.method, message.id, pending.name, decision, None, pending.size,
                    duration=self.clock() - pending.started, arguments=pending.arguments,
                    response_bytes=len(message.raw))
        return self._cleaned(message, body)

    def _refused_input(self, pending: Pending, request_id: Any, result: dict[str, Any]) -> bytes | None:
        """2026-07-28: an input request the profile refuses fails the client's original request."""
        requests = result.get("inputRequests")
        if not isinstance(requests, dict):
            return None
        for request in requests.values():
            method = request.get("method") if isinstance(request, dict) else None
            # judged as the client will read it: the result is cleaned after this
            asks = self.refused_asks.get(self.clean_result(method)) if isinstance(method, str) else None
            if asks is not None:
                reason = f"mcpbox: {pending.name or pending.method} asked the client for {asks}, which the profile refuses"
                self._audit("server", pending.method, request_id, pending.name, "deny", f"client.{asks}")
                if pending.method == "tools/call":
                    return jsonrpc.tool_error(request_id, reason)
                return jsonrpc.error(request_id, INVALID_REQUEST, reason)
        return None

    def _filtered_list(self, method: str, result: dict[str, Any]) -> dict[str, Any]:
        key, kind, naming, fields = LISTS[method]
        items = result.get(key)
        if not isinstance(items, list):
            return result
        kept = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get(naming), str):
                continue
            name = item[naming]
            if not self._listed(kind, name):
                continue
            if fields is not None and self._pin_changed(kind, name, item, fields):
                continue
            # Its name or URI stays exact: the client calls the item by it.
            kept.append({**filters.walk(item, filters.clean_definition_text, keys=True), naming: name})
        kept = [item for item in kept if (kind, item[naming]) not in self.changed]  # a later duplicate changed it
        self.listed.setdefault(kind, set()).update(item[naming] for item in kept)
        return {**result, key: kept}

    def _listed(self, kind: str, name: str) -> bool:
        """Allowed by its list, and a tool's or prompt's name free of invisible characters (a URI or URI
        template is matched by the resource globs only)."""
        return self.rules[kind].allows(name) and (kind in URI_KINDS or filters.clean_definition_text(name) == name)

    def _pin_changed(self, kind: str, name: str, item: dict[str, Any], fields: tuple[str, ...]) -> bool:
        verdict = self.pins.check(kind, name, filters.fingerprints(item, fields),
                                  {field: item[field] for field in fields if field in item})
        if verdict in (NEW, SAME):
            return False  # hidden anyway at the end of the list if an earlier one changed it
        if (kind, name) not in self.changed:
            self.changed.add((kind, name))
            what = ", ".join(verdict)
            self._decisions.append(Decision(direction="server", decision="hide", name=self._for_log(name),
                                            rule="changed since first seen", event="pin", kind=kind,
                                            fields=tuple(verdict)))
            self._tell(f"mcpbox: the server's {kind} {name!r} changed since it was first seen ({what}); "
                       f"it is hidden and its calls refused. See the change: {self.pins_hint('diff')}; "
                       f"if you trust it: {self.pins_hint('accept')}")
        return True

    def _checked_server_info(self, result: dict[str, Any]) -> dict[str, Any]:
        instructions = result.get("instructions")
        if not isinstance(instructions, str):
            return result
        verdict = self.pins.check("instructions", "server", filters.fingerprints(result, ("instructions",)),
                                  {"instructions": instructions})
        if verdict not in (NEW, SAME):
            if ("instructions", "server") not in self.changed:
                self.changed.add(("instructions", "server"))
                self._decisions.append(Decision(direction="server", decision="hide", rule="changed since first seen",
                                                event="pin", kind="instructions"))
                self._tell("mcpbox: the server's instructions changed since they were first seen; they are "
                           f"withheld. See the change: {self.pins_hint('diff')}; if you trust it: "
                           f"{self.pins_hint('accept')}")
            return {k: v for k, v in result.items() if k != "instructions"}
        return {**result, "instructions": filters.clean_definition_text(instructions)}

    def _cleaned(self, message: Message, body: dict[str, Any]) -> bytes | None:
        """The message as the client may see it: original bytes unless something had to go; None when
        that something is in its id or method, which must stay exact."""
        raw = message.raw
        suspect = filters.suspect(raw)
        if body is message.body and not suspect and not self.redact.may_apply(raw):
            return raw
        clean = self.clean_result
        if not suspect:
            change = self.redact  # nothing to clean: only redaction (its own prefilter runs per string)
        else:
            def change(text: str) -> str:
                return self.redact(clean(text))

        # The envelope stays exact: a cleaned method could turn into a denied one, a cleaned id match nothing.
        number = self.redact.number
        envelope = [body.get("method"), None if message.kind == jsonrpc.RESPONSE else body.get("id")]
        if any(filters.walk(value, change, number=number) != value for value in envelope if value is not None):
            return None
        cleaned = {key: value if key in ("jsonrpc", "id", "method") else filters.walk(value, change, True, number)
                   for key, value in body.items()}
        return raw if cleaned == message.body else jsonrpc.dumps(cleaned)

    # -- shared -----------------------------------------------------------------

    def _hiding_rule(self, kind: str, name: Any) -> str:
        """The rule an audit line names for a hidden item."""
        if not isinstance(name, str):
            return f"{kind} name missing"
        if (kind, name) in self.changed:
            return "pinned definition changed"
        if kind not in URI_KINDS and filters.clean_definition_text(name) != name:
            return "invisible characters in the name"
        return f"{kind}s.{self.rules[kind].refusing_list(name)}"

    @staticmethod
    def _pending_refusal(key: str, pending: dict[str, Any]) -> str | None:
        if key in pending:
            return "this id is already in use by a pending request"
        if len(pending) >= MAX_PENDING:
            return f"over {MAX_PENDING} requests are waiting for an answer"
        return None

    def _visible(self, kind: str, name: str) -> bool:
        """Whether the client may use a tool or prompt: it is listed, and no pin change hides it."""
        return self._listed(kind, name) and (kind, name) not in self.changed

    def _deny(self, request_id: Any, name: Any, method: str, text: str, rule: str, as_result: bool = False) -> bytes:
        """The denial table: an unknown item is -32602; a refused call of a known tool an isError result."""
        self._audit("client", method, request_id, name, "deny", rule)
        if as_result:
            return jsonrpc.tool_error(request_id, text)
        return jsonrpc.error(request_id, INVALID_PARAMS, text)

    def _audited_arguments(self, arguments: Any) -> str:
        """What the audit line keeps of a call's arguments: a hash, or (`full`) their redacted text."""
        canonical = _CANONICAL(arguments)
        if self.profile.audit.arguments == "full":
            return self.redact(canonical)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def _audit(self, direction: str, method: str | None, request_id: Any, name: Any, decision: str,
               rule: str | None, size: int | None = None, duration: float | None = None,
               arguments: Any = None, response_bytes: int | None = None) -> None:
        """One decision for the audit. Every text in it may come from a peer (an id, a method, a name, a rule
        quoting them), so each is redacted: the audit log never holds a secret value."""
        safe = self._for_log
        self._decisions.append(Decision(
            direction=direction, decision=decision, method=safe(method), id=safe(request_id),
            name=None if name is None else safe(name), rule=None if rule is None else safe(rule), size=size,
            response_size=response_bytes, duration=duration, arguments=arguments))

    def _for_log(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        return value if self.redact.number is None else self.redact.number(value)

    def shown(self, line: bytes) -> bytes:
        """A line for the user's stderr (the server's own, or mcpbox's notes quoting it): clients keep stderr in
        log files, so it is made printable and redacted like what the client receives."""
        text = line.decode(errors="replace")
        shown = self.redact(filters.printable(text))
        return line if shown == text else shown.encode()

    def _refuse_envelope(self, message: Message) -> None:
        """Audited without its id and with its method redacted: the audit log never holds a secret."""
        method = self.redact(self.clean_result(message.method or ""))
        self._audit("server", method, None, None, "drop", ENVELOPE_RULE, len(message.raw))
        self._note(f"mcpbox: dropped a {message.kind} from the server: {ENVELOPE_RULE}")

    def _note(self, text: str) -> None:
        self._notes.append(text.encode() + b"\n")

    def _tell(self, text: str) -> None:
        """Said on stderr and to the client too, as a log message it shows (notifications/message)."""
        self._note(text)
        self._told.append(json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {
            "level": "warning", "logger": "mcpbox", "data": self.redact(text)}}, ensure_ascii=False).encode() + b"\n")

    def pins_hint(self, action: str) -> str:
        return f"mcpbox pins {action} {self.server_name}"

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
