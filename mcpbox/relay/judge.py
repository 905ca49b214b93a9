"""Whether a request or notification may reach the other side: the profile's rules applied to one message.

A verdict is a value (`Refusal`); the firewall turns it into the reply its sender
gets and the audit line. What each refusal looks like is the denial table of the
architecture: an unknown item is -32602, a refused call of a known tool an
isError result the model can read, a client capability the profile refuses
-32601 to the server.
"""

from collections.abc import Callable
from typing import Any

from mcpbox.profile import Profile
from mcpbox.relay import filters
from mcpbox.relay.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND
from mcpbox.relay.policy import NameRule, RateLimiter, argument_problem
from mcpbox.relay.session import CLIENT, Session

# server-to-client requests -> the client capability they need
CLIENT_ASKS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
URI_KINDS = ("resource", "template")  # judged by the resource globs, named by a URI that stays exact
clean_name = filters.clean_definition_text  # a name as the client is shown it
AS_RESULT = None  # a Refusal's code for a tool result with isError, where a protocol error would be wrong


class Refusal:
    """Why a message must not reach its peer, and what its sender is told if it waits for an answer. (A plain
    class: a NamedTuple costs ~0.1 ms to make at import, on every launch.)"""

    __slots__ = ("rule", "text", "code", "decision")

    def __init__(self, rule: str, text: str = "", code: int | None = INVALID_PARAMS, decision: str = "deny") -> None:
        self.rule = rule  # as the audit line names it
        self.text = text
        self.code = code  # AS_RESULT: a tool result the model reads
        self.decision = decision  # "drop": nothing is owed to a notification


class Judge:
    def __init__(self, profile: Profile, session: Session, home: str, clock: Callable[[], float],
                 readable: Callable[[str], str]) -> None:
        self.profile = profile
        self.readable = readable  # a text as the client will read it
        self.session = session
        self.home = home
        self.clock = clock
        self.resources = NameRule(profile.resources.allow, profile.resources.deny, paths=True)
        self.rules = {"tool": NameRule(profile.tools.allow, profile.tools.deny),
                      "prompt": NameRule(profile.prompts.allow, profile.prompts.deny),
                      "resource": self.resources, "template": self.resources}
        self.rates = RateLimiter(profile.tools.rate)
        # server-to-client request method -> the client capability it needs, for those the profile refuses
        self.refused_asks = {method: asks for method, asks in CLIENT_ASKS.items() if not getattr(profile.client, asks)}

    def request(self, sender: str, method: str, params: dict[str, Any]) -> tuple[Any, Refusal | None]:
        """(the item a request names, and why it must not reach the other side, or None)."""
        if sender == CLIENT:
            return self._client_request(method, params)
        hidden = self._hidden_update(method, params)
        if hidden is not None:
            return params.get("uri"), hidden
        asks = self.refused_asks.get(method)
        if asks is not None:
            return None, Refusal(f"client.{asks}", f"mcpbox: the profile does not allow {asks}", METHOD_NOT_FOUND)
        return None, None

    def notification(self, sender: str, method: str, params: dict[str, Any]) -> tuple[Any, Refusal | None]:
        """(the item a notification names, and why it is dropped, or None)."""
        if sender == CLIENT:
            if method == "notifications/roots/list_changed" and not self.profile.client.roots:
                return None, Refusal("client.roots", decision="drop")
            return None, None
        hidden = self._hidden_update(method, params)
        if hidden is not None:
            return params.get("uri"), hidden
        asks = self.asked_of_client(method)
        if asks is not None:  # a refused request dressed as a notification
            return None, Refusal(f"client.{asks}", decision="drop")
        return None, None

    def asked_of_client(self, method: Any) -> str | None:
        """The capability a server's request to the client needs, when the profile refuses it; judged as the
        client will read the method (cleaned as results are)."""
        return self.refused_asks.get(self.readable(method)) if isinstance(method, str) else None

    def _hidden_update(self, method: str, params: dict[str, Any]) -> Refusal | None:
        """An update about a resource the profile hides would tell the client it exists; dressed as a request,
        its sender must not wait forever, so it is answered as a read of that resource would be."""
        if method != "notifications/resources/updated":
            return None
        return self._refused_resource(params.get("uri"), decision="drop")

    def _client_request(self, method: str, params: dict[str, Any]) -> tuple[Any, Refusal | None]:
        if method == "tools/call":
            name = params.get("name")
            if not isinstance(name, str) or not self.visible("tool", name):
                return name, Refusal(self.hiding_rule("tool", name), f"Unknown tool: {name}")
            problem = argument_problem(name, params.get("arguments", {}),
                                       self.profile.tools.arguments.get(name, {}), self.home)
            if problem:
                return name, Refusal(f"tools.arguments.{name}", problem, AS_RESULT)
            wait = self.rates.retry_after(name, self.clock())
            if wait is not None:
                return name, Refusal("tools.rate", f"mcpbox: rate limit for {name} reached; retry in {wait:.1f} s",
                                     AS_RESULT)
            return name, None
        if method == "prompts/get":
            name = params.get("name")
            return name, self._refused_prompt(name, name)
        if method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            uri = params.get("uri")
            return uri, self._refused_resource(uri)
        if method == "subscriptions/listen":
            # 2026-07-28's resources/subscribe: one refused URI refuses the stream, as it would the subscribe.
            wanted = params.get("notifications")
            uris = wanted.get("resourceSubscriptions") if isinstance(wanted, dict) else None
            for uri in uris if isinstance(uris, list) else [] if uris is None else [uris]:
                refusal = self._refused_resource(uri)
                if refusal is not None:
                    return uri, refusal
            return None, None
        if method == "completion/complete":
            ref = params.get("ref") if isinstance(params.get("ref"), dict) else {}
            name = ref.get("name")
            refusal = self._refused_prompt(name, str(name)) if ref.get("type") == "ref/prompt" else None
            if refusal is not None:
                return name, refusal
            if ref.get("type") == "ref/resource":
                return ref.get("uri"), self._refused_resource(ref.get("uri"))
        return None, None

    def _refused_prompt(self, name: Any, judged: Any) -> Refusal | None:
        """`judged`: the name as judged (completion/complete judges any value by its text)."""
        if isinstance(judged, str) and self.visible("prompt", judged):
            return None
        return Refusal(self.hiding_rule("prompt", name), f"Unknown prompt: {name}")

    def _refused_resource(self, uri: Any, decision: str = "deny") -> Refusal | None:
        if not self.hidden_resource(uri):
            return None
        return Refusal(self.hiding_rule("resource", str(uri)), f"Unknown resource: {uri}", decision=decision)

    def hidden_resource(self, uri: Any) -> bool:
        return not (isinstance(uri, str) and self.resources.allows(uri))

    def listed(self, kind: str, name: str) -> bool:
        """Allowed by its list, and a tool's or prompt's name free of invisible characters (a URI or URI
        template is matched by the resource globs only)."""
        return self.rules[kind].allows(name) and (kind in URI_KINDS or clean_name(name) == name)

    def visible(self, kind: str, name: str) -> bool:
        """Whether the client may use a tool or prompt: it is listed, and no pin change hides it."""
        return self.listed(kind, name) and (kind, name) not in self.session.changed

    def hiding_rule(self, kind: str, name: Any) -> str:
        """The rule an audit line names for a hidden item."""
        if not isinstance(name, str):
            return f"{kind} name missing"
        if (kind, name) in self.session.changed:
            return "pinned definition changed"
        if kind not in URI_KINDS and clean_name(name) != name:
            return "invisible characters in the name"
        return f"{kind}s.{self.rules[kind].refusing_list(name)}"
