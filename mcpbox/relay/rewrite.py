"""What mcpbox changes in a message it lets through: the parts the profile withholds, never the rest.

Client to server: the client capabilities the profile refuses are taken out of
what the server is told, and roots outside the sandbox's binds out of the
client's answers. Server to client: lists keep only the items the profile
allows (and whose definition still matches its pin), instructions that changed
since first seen are withheld, and an answer that asks the client for a
capability the profile refuses fails the request it answers. Results are
values; the firewall audits them.
"""

from typing import Any

from mcpbox.paths import within
from mcpbox.relay import filters, jsonrpc
from mcpbox.relay.jsonrpc import INVALID_REQUEST, Message
from mcpbox.relay.judge import Judge
from mcpbox.relay.pins import NEW, SAME, Pins
from mcpbox.relay.policy import normalize_path
from mcpbox.relay.session import CLIENT, Pending, Session

CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
TOOL_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
PROMPT_FIELDS = ("name", "title", "description", "arguments")
TEMPLATE_FIELDS = ("uriTemplate", "name", "title", "description", "mimeType")
LISTS = {  # method -> (result key, item kind, field naming the item, pinned fields)
    "tools/list": ("tools", "tool", "name", TOOL_FIELDS),
    "prompts/list": ("prompts", "prompt", "name", PROMPT_FIELDS),
    "resources/list": ("resources", "resource", "uri", None),
    "resources/templates/list": ("resourceTemplates", "template", "uriTemplate", TEMPLATE_FIELDS),
}


class Hidden:
    """An item withheld because its definition changed since it was pinned. (Plain classes here: a NamedTuple
    costs ~0.1 ms to make at import, on every launch.)"""

    __slots__ = ("kind", "name", "fields")

    def __init__(self, kind: str, name: str | None, fields: tuple[str, ...]) -> None:
        self.kind = kind  # tool, prompt, template, or instructions
        self.name = name  # None for the server's instructions
        self.fields = fields  # the pinned fields that changed


class Answer:
    """An answer to a request, as it may go on."""

    __slots__ = ("body", "decision", "rule", "replaced", "hidden")

    def __init__(self, body: dict[str, Any], decision: str, rule: str | None = None, replaced: bytes | None = None,
                 hidden: tuple[Hidden, ...] = ()) -> None:
        self.body = body  # the message's own body when nothing changed
        self.decision = decision  # allow, error, filter or deny, for the audit line
        self.rule = rule
        self.replaced = replaced  # mcpbox's own answer in its place
        self.hidden = hidden


class Rewriter:
    def __init__(self, session: Session, judge: Judge, pins: Pins, granted_paths: list[str], home: str) -> None:
        self.session = session
        self.judge = judge
        self.pins = pins  # checked and updated in memory; the pump saves it
        self.granted = [path.rstrip("/") or "/" for path in granted_paths]
        self.home = home

    def answer(self, responder: str, pending: Pending, message: Message) -> Answer:
        body = message.body
        decision = "allow" if "result" in body else "error"
        result = body.get("result")
        if not isinstance(result, dict):
            return Answer(body, decision)
        if responder == CLIENT:
            return self._client_answer(pending, body, result, decision)
        if result.get("resultType") == "input_required":
            refused = self._refused_input(pending, message.id, result)
            if refused is not None:
                return Answer(body, "deny", *refused)
        if pending.method in LISTS:
            kept, hidden = self._filtered_list(pending.method, result)
            return Answer({**body, "result": kept}, decision, hidden=hidden)
        if pending.method in ("initialize", "server/discover"):
            checked, hidden = self._checked_server_info(result)
            return Answer({**body, "result": checked}, decision, hidden=hidden)
        return Answer(body, decision)

    def narrowed(self, message: Message) -> bytes:
        """The bytes of a client message, rewritten only when narrowing changed its params.

        The server is never told the client can do what the profile refuses it, whatever the shape of the
        message telling it (request or notification, alone or in a batch, params an object or an array of
        them): its params are narrowed in place."""
        params = message.body.get("params")
        each = params if isinstance(params, list) else [params]
        changed = any([self._narrow_params(message.method, item) for item in each if isinstance(item, dict)])
        return jsonrpc.dumps(message.body) if changed else message.raw

    def _client_answer(self, pending: Pending, body: dict[str, Any], result: dict[str, Any],
                       decision: str) -> Answer:
        if pending.method == "roots/list" and isinstance(result.get("roots"), list):
            kept = self._granted_roots(result["roots"])
            if kept != result["roots"]:
                return Answer({**body, "result": {**result, "roots": kept}}, "filter",
                              "roots outside the sandbox's binds")
        return Answer(body, decision)

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
        refused = [name for name in self.judge.refused_asks.values() if name in capabilities]
        return {k: v for k, v in capabilities.items() if k not in refused} if refused else None

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

    def _refused_input(self, pending: Pending, request_id: Any, result: dict[str, Any]) -> tuple[str, bytes] | None:
        """2026-07-28: an input request the profile refuses fails the client's original request: (the rule,
        mcpbox's answer in its place)."""
        requests = result.get("inputRequests")
        if not isinstance(requests, dict):
            return None
        for request in requests.values():
            asks = self.judge.asked_of_client(request.get("method") if isinstance(request, dict) else None)
            if asks is not None:
                reason = (f"mcpbox: {pending.name or pending.method} asked the client for {asks}, which the profile "
                          "refuses")
                replaced = jsonrpc.tool_error(request_id, reason) if pending.method == "tools/call" else \
                    jsonrpc.error(request_id, INVALID_REQUEST, reason)
                return f"client.{asks}", replaced
        return None

    def _filtered_list(self, method: str, result: dict[str, Any]) -> tuple[dict[str, Any], tuple[Hidden, ...]]:
        key, kind, naming, fields = LISTS[method]
        items = result.get(key)
        if not isinstance(items, list):
            return result, ()
        kept = []
        hidden: list[Hidden] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get(naming), str):
                continue
            name = item[naming]
            if not self.judge.listed(kind, name):
                continue
            if fields is not None and self._pin_changed(kind, name, item, fields, hidden):
                continue
            # Its name or URI stays exact: the client calls the item by it.
            kept.append({**filters.walk(item, filters.clean_definition_text, keys=True), naming: name})
        # a later duplicate may have changed an item kept earlier
        kept = [item for item in kept if (kind, item[naming]) not in self.session.changed]
        self.session.listed.setdefault(kind, set()).update(item[naming] for item in kept)
        return {**result, key: kept}, tuple(hidden)

    def _pin_changed(self, kind: str, name: str, item: dict[str, Any], fields: tuple[str, ...],
                     hidden: list[Hidden]) -> bool:
        verdict = self.pins.check(kind, name, filters.fingerprints(item, fields),
                                  {field: item[field] for field in fields if field in item})
        if verdict in (NEW, SAME):
            return False  # hidden anyway at the end of the list if an earlier one changed it
        if (kind, name) not in self.session.changed:
            self.session.changed.add((kind, name))
            hidden.append(Hidden(kind, name, tuple(verdict)))
        return True

    def _checked_server_info(self, result: dict[str, Any]) -> tuple[dict[str, Any], tuple[Hidden, ...]]:
        instructions = result.get("instructions")
        if not isinstance(instructions, str):
            return result, ()
        verdict = self.pins.check("instructions", "server", filters.fingerprints(result, ("instructions",)),
                                  {"instructions": instructions})
        if verdict in (NEW, SAME):
            return {**result, "instructions": filters.clean_definition_text(instructions)}, ()
        hidden = ()
        if ("instructions", "server") not in self.session.changed:
            self.session.changed.add(("instructions", "server"))
            hidden = (Hidden("instructions", None, tuple(verdict)),)
        return {k: v for k, v in result.items() if k != "instructions"}, hidden
