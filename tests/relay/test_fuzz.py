"""Property-based fuzzing of the relay's sans-I/O core with hypothesis.

Sessions of valid MCP traffic in both directions (requests, notifications,
responses and batches of both protocol eras, with random params), often
mutated (bytes flipped, lines cut, keys duplicated, odd ids, huge numbers,
deep nesting, invalid UTF-8, lone surrogates, oversize lines) and fed in
random chunks, go through a Firewall whose profile hides tools, prompts and
resources, limits one tool's rate, passes a secret and denies sampling and
elicitation. After every chunk the output is checked against oracles written
independently of the firewall's own rules:

- nothing raises;
- every line for either side is one newline-terminated line of strict JSON-RPC;
- no hidden tool (or prompt, or resource) is listed in a result of the list the client asked for;
- no refused tools/call (hidden, invisible-named, changed pin, argument outside its glob, over the rate)
  reaches the server;
- no sampling or elicitation request, nor an input_required result asking for one, reaches the client;
- the client never gets a response to an id it did not send, nor the server one it did not ask;
- the server is never told of a refused client capability (initialize, 2026 `_meta`), nor of roots
  outside the binds;
- the secret's value never reaches the client;
- the framers hold at most the line limit (or a bounded head) and the pending tables stay bounded.

Run with `-s` to see how many cases ran (also `--hypothesis-show-statistics`).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import sys
import unicodedata
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import held_bytes
from mcpbox import profile as profiles
from mcpbox import audit
from mcpbox.relay import filters, jsonrpc, session
from mcpbox.relay.firewall import Firewall
from mcpbox.relay.framing import HEAD_BYTES, LineFramer, Oversize
from mcpbox.relay.pins import Pins

EXAMPLES = int(os.environ.get("MCPBOX_FUZZ_EXAMPLES", "2000"))  # per property
FUZZ = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])  # `run` is shared by all examples on purpose
COUNTS: collections.Counter[str] = collections.Counter()  # cases run, per property
OBSERVED: collections.Counter[str] = collections.Counter()  # what those cases exercised

HOME = "/home/u"
LIMIT = 2048  # framer limit for the fuzz: small, so oversize lines are cheap to make
SECRET = 'tok/en-Se"cret\\42'  # "/", '"' and "\" all have JSON escapes a server may use
PLAIN_SECRET = "plainsecret-7f3a9"
SECRETS = {"SERVICE_TOKEN": SECRET, "API_KEY": PLAIN_SECRET}
PROFILE = b"""
[tools]
allow = ["*"]
deny = ["hidden_*", "rm"]

[tools.arguments.read_file]
path = "/srv/allowed/**"

[tools.rate]
limited = "3/min"

[resources]
allow = ["file:///pub/**"]

[prompts]
allow = ["*"]
deny = ["secret_*"]

[client]
sampling = false
elicitation = false
roots = true
"""
DENIED_ASKS = {"sampling/createMessage", "elicitation/create"}
# Unicode's own derivation of Default_Ignorable_Code_Point from Python's database (format characters and variation
# selectors, less the prepended concatenation marks), plus Other_Default_Ignorable_Code_Point's list
PREPENDED = {*range(0x600, 0x606), 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0x110BD, 0x110CD}
INVISIBLE = {chr(c) for c in range(sys.maxunicode + 1) if c not in PREPENDED and (
    unicodedata.category(chr(c)) == "Cf" or "VARIATION SELECTOR" in unicodedata.name(chr(c), ""))} | {
    chr(c) for c in (0x34F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2065, 0x3164, 0xFFA0, *range(0xFFF0, 0xFFF9),
                     0xE0000, *range(0xE0002, 0xE0020), *range(0xE0080, 0xE1000))}
EMOJI_PARTS = {"\u200d", "\ufe0e", "\ufe0f", *map(chr, range(0xE0020, 0xE0080))}  # what real emoji are built with
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # ESC and C1 start every escape sequence


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    """Print how many cases each property ran (visible with -s): the number of cases is reported."""
    yield
    total = sum(COUNTS.values())
    print(f"\n[fuzz] {total} cases: " + ", ".join(f"{name}={count}" for name, count in sorted(COUNTS.items())))
    print("[fuzz] observed: " + ", ".join(f"{name}={count}" for name, count in sorted(OBSERVED.items())))


# -- oracles, written without the firewall's own rules -----------------------------------------------------


def invisible(name: str) -> bool:
    """Whether a name holds an invisible character or a control. Loose where emoji may be built: with
    any non-ASCII symbol, punctuation or mark (or an unassigned code point) in the name, the joiner, the
    presentation selectors and tags are let pass, since a real emoji needs them."""
    emoji = any(ord(c) > 0x7F and unicodedata.category(c)[0] in "SPM" or unicodedata.category(c) == "Cn" for c in name)
    return any(c in INVISIBLE and not (emoji and c in EMOJI_PARTS) for c in name) or CONTROL.search(name) is not None


def hidden_tool(name: str) -> bool:
    return name.startswith("hidden_") or name == "rm" or invisible(name)


def hidden_prompt(name: str) -> bool:
    return name.startswith("secret_") or invisible(name)


def resolve_segments(path: str) -> list[str]:
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
        else:
            parts.append(segment)
    return parts


def inside_allowed(value: Any) -> bool:
    """read_file's path rule, /srv/allowed/**, decided by resolving segments by hand."""
    if not isinstance(value, str):
        return False
    if value.startswith("file://"):
        value = value[len("file://"):]
    if value == "~" or value.startswith("~/"):
        value = HOME + value[1:]
    return value.startswith("/") and resolve_segments(value)[:2] == ["srv", "allowed"]


def public_uri(uri: Any) -> bool:
    """The resources rule, file:///pub/**: what the URI points at once decoded must be under /pub."""
    if not isinstance(uri, str) or not uri.startswith("file:///"):
        return False
    return resolve_segments(unquote(uri)[len("file://"):])[:1] == ["pub"]


def strict_json(line: bytes) -> Any:
    def no_duplicates(pairs):
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in {line!r}"
        return dict(pairs)

    def no_constant(name):
        raise AssertionError(f"{name} in {line!r}")

    return json.loads(line.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constant)


def strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)


# -- the harness ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@functools.cache
def fuzz_profile() -> profiles.Profile:
    """Parsed once: every example's firewall gets the same profile."""
    return profiles.parse(PROFILE, "fuzz.toml")


class Harness:
    """One firewall session and the oracles' view of it; `feed` checks every property after every chunk."""

    def __init__(self, audit: list[bytes]) -> None:
        self.clock = Clock()
        self.audit = audit
        self.firewall = Firewall(fuzz_profile(), pins=Pins(),
                                 secrets=SECRETS, home=HOME, granted_paths=["/srv/allowed"],
                                 clock=self.clock)
        for framer in self.firewall.framers.values():
            framer.max_bytes = LIMIT
        self.sent: dict[str, str] = {}  # id -> method of client requests that reached the server
        self.asked: dict[str, str] = {}  # id -> method of server requests that reached the client
        self.limited_calls: list[float] = []

    def feed(self, direction: str, data: bytes) -> None:
        # A tool may be listed, then its pin change, within one call: judge lists by what was known before it.
        self.changed_before = set(self.firewall.session.changed)
        out = self.firewall.from_client(data) if direction == "client" else self.firewall.from_server(data)
        self.check(out, direction)

    def gone(self) -> None:
        self.changed_before = set(self.firewall.session.changed)
        self.check(self.firewall.server_gone(), "server")

    def check(self, out, direction: str) -> None:
        for decision in out.decisions:  # as the pump logs them after sending
            self.audit.append(audit.line(self.clock(), self.firewall.audit_fields(decision)))
        for chunk in out.to_server:
            for message in self.messages(chunk):
                self.check_to_server(message, direction)
        for chunk in out.to_client:
            for message in self.messages(chunk):
                self.check_to_client(message, direction)
        for framer in self.firewall.framers.values():
            assert held_bytes(framer) <= max(LIMIT, HEAD_BYTES), held_bytes(framer)
        limit = session.MAX_PENDING
        assert len(self.firewall.session.pending["client"]) <= limit and len(self.firewall.session.pending["server"]) <= limit

    @staticmethod
    def messages(chunk: bytes) -> list[dict[str, Any]]:
        assert chunk.endswith(b"\n") and chunk.count(b"\n") == 1, chunk[:200]
        body = strict_json(chunk)
        items = body if isinstance(body, list) else [body]
        assert items, "an empty batch is never sent"
        for item in items:
            assert isinstance(item, dict) and item.get("jsonrpc") == "2.0", item
        return items

    def check_to_server(self, message: dict[str, Any], direction: str) -> None:
        key = jsonrpc.id_key(message.get("id"))
        if "method" not in message:
            if direction == "client":  # the client's answer to a server request
                assert key in self.asked, f"a response to {key}, which the server never asked"
                result = message.get("result")
                if self.asked.pop(key) == "roots/list" and isinstance(result, dict) and isinstance(
                        result.get("roots"), list):
                    for root in result["roots"]:
                        assert inside_allowed(root.get("uri")), f"root {root!r} outside the binds told to the server"
            else:
                OBSERVED["server requests refused by mcpbox"] += 1
            return
        if "id" in message:
            self.sent[key] = message["method"]
        params = message.get("params")
        for each in params if isinstance(params, list) else [params]:
            if not isinstance(each, dict):
                continue
            # the server is never told the client can do what the profile refuses, whatever the message's shape
            told = [each.get("capabilities") if message["method"] == "initialize" else None]
            if isinstance(each.get("_meta"), dict):
                told.append(each["_meta"].get(META))
            for capabilities in told:
                assert not (isinstance(capabilities, dict) and {"sampling", "elicitation"} & capabilities.keys()), (
                    f"refused capabilities told to the server: {message}")
        if "id" in message and isinstance(params, dict):  # no hidden resource is read or subscribed to
            if message["method"] in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
                assert public_uri(params.get("uri")), f"hidden resource reached the server: {message}"
                OBSERVED["resource requests forwarded"] += 1
            wanted = params.get("notifications")
            if message["method"] == "subscriptions/listen" and isinstance(wanted, dict):
                subscriptions = wanted.get("resourceSubscriptions")
                subscriptions = subscriptions if isinstance(subscriptions, list) else [] if subscriptions is None else [
                    subscriptions]
                assert all(public_uri(uri) for uri in subscriptions), f"hidden subscription reached the server: {message}"
                OBSERVED["subscriptions/listen forwarded"] += 1
        if message["method"] != "tools/call" or "id" not in message:
            return
        OBSERVED["tools/call forwarded"] += 1
        params = message.get("params")
        assert isinstance(params, dict)
        name = params.get("name")
        assert isinstance(name, str) and not hidden_tool(name), f"hidden tool {name!r} reached the server"
        assert ("tool", name) not in self.firewall.session.changed, f"tool {name!r} with a changed pin reached the server"
        arguments = params.get("arguments", {})
        if name == "read_file":
            assert isinstance(arguments, dict), arguments
            if "path" in arguments:
                paths = arguments["path"] if isinstance(arguments["path"], list) else [arguments["path"]]
                assert all(inside_allowed(p) for p in paths), f"read_file {arguments['path']!r} reached the server"
        if name == "limited":
            self.limited_calls.append(self.clock.now)
            recent = [t for t in self.limited_calls if t > self.clock.now - 60]
            assert len(recent) <= 3, f"rate limit broken: {self.limited_calls}"

    def check_to_client(self, message: dict[str, Any], direction: str) -> None:
        if direction == "client":  # mcpbox answering the client itself (a denial or a malformed request)
            assert "method" not in message and "id" in message, message
            OBSERVED["client requests answered by mcpbox"] += 1
            return
        # The envelope (id, method) is passed exactly or the message dropped (a server message holding a secret
        # or an invisible character there): rewriting an id would break the exchange; everything else the
        # client gets must be redacted.
        content = {key: value for key, value in message.items() if key not in ("jsonrpc", "id", "method")}
        leaked = [text for text in strings(content) if SECRET in text or PLAIN_SECRET in text]
        assert not leaked, f"a secret reached the client: {message}"
        method = message.get("method")
        if method == "notifications/resources/updated":  # as a notification or dressed as a request
            params = message.get("params")
            assert isinstance(params, dict) and public_uri(params.get("uri")), f"an update named a hidden resource: {message}"
        if method is not None:
            if "id" in message:
                assert method not in DENIED_ASKS, f"a {method} request reached the client"
                self.asked[jsonrpc.id_key(message["id"])] = method
            return
        key = jsonrpc.id_key(message.get("id"))
        assert key in self.sent, f"the client got a response to {key}, which it never sent"
        asked_for = self.sent.pop(key)
        result = message.get("result")
        if not isinstance(result, dict):
            return
        if result.get("resultType") == "input_required" and isinstance(result.get("inputRequests"), dict):
            for request in result["inputRequests"].values():
                assert not (isinstance(request, dict) and request.get("method") in list(DENIED_ASKS)), result
        items = {"tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources",
                 "resources/templates/list": "resourceTemplates"}.get(asked_for)
        if items is None or not isinstance(result.get(items), list):
            return
        OBSERVED[f"{asked_for} results checked"] += 1
        for item in result[items]:
            assert isinstance(item, dict)
            if items == "tools":
                assert not hidden_tool(item["name"]), f"hidden tool {item['name']!r} listed"
                assert ("tool", item["name"]) not in self.changed_before, f"changed tool {item['name']!r} listed"
            elif items == "prompts":
                assert not hidden_prompt(item["name"]), f"hidden prompt {item['name']!r} listed"
            elif items == "resources":
                assert public_uri(item["uri"]), f"hidden resource {item['uri']!r} listed"
            else:
                assert public_uri(item["uriTemplate"]), f"hidden template {item['uriTemplate']!r} listed"


# -- strategies -------------------------------------------------------------------------------------------

# What the server says may hold the secrets (which must never reach the client); what the client says never
# does, so a secret seen by the client can only have come from the server.
CLIENT_ATOMS = ["", "a", "hello", " ", "\x1b[31m", "\x1b]8;;http://x\x07", "\x9b1m", "\U000E0041", "\u202e",
                "\u200b", "tok/en", "ghp_" + "a1B2" * 9, "AKIAIOSFODNN7EXAMPLE", "é", "😀", "\n", '"', "\\", "/", "..",
                "%2e"]
# Every invisible class, escape form and control, and the real emoji built with some of them.
SMUGGLED = "".join(chr(0xFE00 + b) if b < 16 else chr(0xE0100 + b - 16) for b in b"rm -rf ~")  # bytes as selectors
INVISIBLE_ATOMS = ["\U0001F600" + SMUGGLED, "a\ufe0f", "\ufe0f", "\u200d", "\U000E0100", "\u034f", "\u115f",
                   "\u3164", "\uffa0", "\u2065", "\ufff0", "\U0001D173", "\U0001BCA0", "\U00013430", "\u180b",
                   "\u00ad", "\U000E0001", "\U000E0fff"]
ESCAPE_ATOMS = ["\x1bP1$r0m\x1b\\", "\x90q\x9c", "\x1b_apc\x07", "\x9fapc", "\x1bXsos\x1b\\", "\x1b^pm", "\x1b(B",
                "\x1b $B", "\x1b7", "\x1bc", "\x1b]unterminated", "\x9d0;t\x07", "\x1b[", "\x1b", "\x85", "\x9c", "\x7f",
                "\x00"]
EMOJI_ATOMS = ["\U0001F468\u200d\U0001F469\u200d\U0001F467", "\u2764\ufe0f", "\u2764\ufe0f\u200d\U0001F525",
               "1\ufe0f\u20e3", "\U0001F3F4" + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000E007F",
               "\U0001F3F4" + "".join(chr(0xE0000 + ord(c)) for c in "evil") + "\U000E007F", "\U0001F3F4"]
CLIENT_ATOMS += INVISIBLE_ATOMS + ESCAPE_ATOMS + EMOJI_ATOMS
SERVER_ATOMS = CLIENT_ATOMS + [SECRET, PLAIN_SECRET, SECRET + PLAIN_SECRET]


def json_strategies(atoms: list[str]):
    """(texts, values, objects); few draws per string, since generation, not the firewall, bounds the run time."""
    texts = st.one_of(st.sampled_from(atoms), st.text(max_size=6),
                      st.tuples(st.sampled_from(atoms), st.text(max_size=3), st.sampled_from(atoms)).map("".join))
    leaves = (st.none() | st.booleans() | st.integers(-2**64, 2**64)
              | st.floats(allow_nan=False, allow_infinity=False) | texts)
    values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(texts, inner, max_size=3), max_leaves=5)
    return texts, values, st.dictionaries(texts, values, max_size=3)


texts, values, objects = json_strategies(SERVER_ATOMS)
client_texts, client_values, client_objects = json_strategies(CLIENT_ATOMS)
ids = st.sampled_from([0, 1, 2, "0", "1", "2", "x", -1, 1.5, 2**53 + 1]) | st.integers() | st.text(max_size=3)
TOOLS = ["echo", "read_file", "limited", "hidden_a", "hidden_", "rm", "echo\u200b", "hidden_\U000E0041", "Rm",
         "rm\u202e"]
tool_names = st.sampled_from(TOOLS) | st.text(max_size=5)
server_tool_names = tool_names | st.sampled_from(["list_" + PLAIN_SECRET, SECRET])
PROMPTS = ["greet", "secret_plan", "secret_", "greet\u2066", "Secret_plan"]
prompt_names = st.sampled_from(PROMPTS) | st.text(max_size=5)
URIS = ["file:///pub", "file:///pub/a.md", "file:///pub/../etc/passwd", "file:///pub/%2e%2e/etc/passwd",
        "file:///pubx/a", "file:///etc/passwd", "file:///pub/x/../../etc", "https://pub/a", "file:///pub/{x}",
        "file:///etc/{x}", "file:////pub/a"]
uris = st.sampled_from(URIS) | client_texts
PATHS = ["/srv/allowed/a", "/srv/allowed", "/srv/allowed/../../etc/passwd", "//srv//allowed/x", "/srv/allowedX/a",
         "file:///srv/allowed/a", "file:///etc/passwd", "~/x", "relative", "/etc/passwd", "/srv/allowed/./b/../../x",
         "/srv/./allowed/b", "/../srv/allowed/c"]
paths = st.sampled_from(PATHS) | client_texts
path_arguments = paths | st.lists(paths, max_size=3) | client_values
ASKS = ["sampling/createMessage", "elicitation/create", "roots/list", "ping",
        # spelled so that a cleaner would turn them into denied methods
        "sampling/createMessage\U000E0041", "sampling/\x1b[0mcreateMessage", "elicitation/create\u202e"]
meta_capabilities = st.fixed_dictionaries({}, optional={"sampling": client_objects, "elicitation": client_objects,
                                                        "roots": client_objects, "experimental": client_objects})
META = "io.modelcontextprotocol/clientCapabilities"


def maybe_meta(params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just(params), meta_capabilities.map(lambda caps: {**params, "_meta": {META: caps}}))


@st.composite
def client_requests(draw) -> tuple[str, dict[str, Any] | None]:
    kind = draw(st.sampled_from(["call", "call", "read_file", "limited", "list", "prompt", "resource", "complete",
                                 "initialize", "discover", "ping", "other"]))
    if kind == "call":
        params = {"name": draw(tool_names), "arguments": draw(client_objects)}
        return "tools/call", draw(maybe_meta(params))
    if kind == "read_file":
        arguments = draw(st.fixed_dictionaries({}, optional={"path": path_arguments, "other": client_values}))
        params = {"name": "read_file", "arguments": arguments} if draw(st.booleans()) else {
            "name": "read_file", "arguments": draw(client_values)}
        return "tools/call", params
    if kind == "limited":
        return "tools/call", {"name": "limited", "arguments": {}}
    if kind == "list":
        method = draw(st.sampled_from(["tools/list", "prompts/list", "resources/list", "resources/templates/list"]))
        return method, draw(st.sampled_from([None, {}, {"cursor": "c2"}]))
    if kind == "prompt":
        return "prompts/get", {"name": draw(prompt_names), "arguments": draw(client_objects)}
    if kind == "resource":
        method = draw(st.sampled_from(["resources/read", "resources/subscribe", "resources/unsubscribe",
                                       "subscriptions/listen"]))
        if method == "subscriptions/listen":  # 2026-07-28
            subscriptions = st.lists(uris, max_size=3) | uris | client_values
            return method, draw(maybe_meta({"notifications": draw(st.fixed_dictionaries(
                {}, optional={"resourceSubscriptions": subscriptions, "toolsListChanged": st.booleans()}))}))
        return method, {"uri": draw(uris)}
    if kind == "complete":
        ref = draw(st.one_of(st.builds(lambda n: {"type": "ref/prompt", "name": n}, prompt_names),
                             st.builds(lambda u: {"type": "ref/resource", "uri": u}, uris), client_values))
        return "completion/complete", {"ref": ref, "argument": {"name": "a", "value": ""}}
    if kind == "initialize":
        params = {"protocolVersion": "2025-06-18", "capabilities": draw(meta_capabilities),
                  "clientInfo": {"name": draw(client_texts), "version": "1"}}
        return "initialize", [params] if draw(st.integers(0, 5)) == 0 else params  # positional params too
    if kind == "discover":
        return "server/discover", draw(maybe_meta({}))
    if kind == "ping":
        return "ping", None
    return draw(client_texts), draw(st.none() | client_objects)


tool_definitions = st.fixed_dictionaries(
    {"name": server_tool_names}, optional={"description": texts, "title": texts, "inputSchema": values,
                                    "annotations": objects})
list_results = {
    "tools/list": st.fixed_dictionaries({"tools": st.lists(tool_definitions | values, max_size=4)},
                                        optional={"nextCursor": texts}),
    "prompts/list": st.fixed_dictionaries({"prompts": st.lists(
        st.fixed_dictionaries({"name": prompt_names}, optional={"description": texts, "arguments": values}) | values,
        max_size=4)}),
    "resources/list": st.fixed_dictionaries({"resources": st.lists(
        st.fixed_dictionaries({"uri": uris, "name": texts}) | values, max_size=4)}),
    "resources/templates/list": st.fixed_dictionaries({"resourceTemplates": st.lists(
        st.fixed_dictionaries({"uriTemplate": uris, "name": texts}) | values, max_size=4)}),
}
input_required = st.fixed_dictionaries({
    "resultType": st.just("input_required"),
    "inputRequests": st.dictionaries(texts, st.fixed_dictionaries({"method": st.sampled_from(ASKS) | values},
                                                                  optional={"params": objects}) | values, max_size=3),
    "requestState": texts})
call_results = st.fixed_dictionaries({"content": st.lists(st.fixed_dictionaries(
    {"type": st.just("text"), "text": texts}), max_size=2)}, optional={"isError": st.booleans(),
                                                                       "structuredContent": objects})
server_info = st.fixed_dictionaries({"protocolVersion": st.just("2025-06-18"), "capabilities": objects,
                                     "serverInfo": st.just({"name": "s", "version": "1"})},
                                    optional={"instructions": texts})


def result_for(method: str) -> st.SearchStrategy[Any]:
    if method in list_results:
        shaped = list_results[method]
    elif method == "tools/call":
        shaped = call_results | input_required
    elif method in ("initialize", "server/discover"):
        shaped = server_info
    else:
        shaped = objects | input_required
    return st.one_of(shaped, shaped, objects)


def envelope(id: Any, **members: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, **members}


def request_body(id: Any, method: str, params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    return body


errors = st.fixed_dictionaries({"code": st.integers(-32768, 32767), "message": texts}, optional={"data": values})


@st.composite
def exchanges(draw) -> list[tuple[str, Any]]:
    """One unit of a session: usually a request and its answer, in either direction, or a notification."""
    kind = draw(st.sampled_from(["client", "client", "client", "server", "notify-client", "notify-server", "batch"]))
    if kind == "client":
        id = draw(ids)
        method, params = draw(client_requests())
        steps = [("client", request_body(id, method, params))]
        if draw(st.integers(0, 4)):
            answer_id = id if draw(st.integers(0, 5)) else draw(ids)
            reply = envelope(answer_id, error=draw(errors)) if not draw(st.integers(0, 6)) else envelope(
                answer_id, result=draw(result_for(method)))
            steps.append(("server", reply))
        return steps
    if kind == "server":
        id = draw(ids)
        method = draw(st.sampled_from(ASKS + ["roots/list"] * 4) if draw(st.integers(0, 3)) else texts)
        steps = [("server", request_body(id, method, draw(st.none() | objects)))]
        if method == "roots/list" or draw(st.booleans()):
            roots = st.lists(st.fixed_dictionaries({"uri": st.sampled_from(PATHS).map(lambda p: "file://" + p)
                                                    | uris}), max_size=3)
            result = draw(st.fixed_dictionaries({"roots": roots}) if method == "roots/list" else client_objects)
            steps.append(("client", envelope(id if draw(st.integers(0, 5)) else draw(ids), result=result)))
        return steps
    if kind == "notify-client":
        method = draw(st.sampled_from(["notifications/initialized", "notifications/cancelled",
                                       "notifications/roots/list_changed", "notifications/progress"]) | client_texts)
        params = {"requestId": draw(ids)} if method == "notifications/cancelled" else draw(st.none() | client_objects)
        if draw(st.integers(0, 3)) == 0:  # a request's shape without its id: narrowed all the same
            method, params = draw(client_requests())
        body = {"jsonrpc": "2.0", "method": method, **({"params": params} if params is not None else {})}
        return [("client", body)]
    if kind == "notify-server":
        method = draw(st.sampled_from(["notifications/message", "notifications/tools/list_changed",
                                       "notifications/progress", "sampling/createMessage",
                                       "notifications/resources/updated", "notifications/cancelled"]) | texts)
        params = draw(objects)
        if method == "notifications/resources/updated":
            params = {**params, "uri": draw(uris)}
        elif method == "notifications/cancelled":
            params = {"requestId": draw(ids)}
        return [("server", {"jsonrpc": "2.0", "method": method, "params": params})]
    direction = draw(st.sampled_from(["client", "server"]))
    members = draw(st.lists(exchanges(), min_size=1, max_size=3))
    same_side = [body for steps in members for side, body in steps if side == direction]
    return [(direction, same_side)] if same_side else []


MUTATIONS = ["flip", "truncate", "dup-key", "dup-secret-key", "bad-utf8", "huge-number", "deep", "surrogate",
             "oversize", "newline", "crlf", "version", "no-newline", "whitespace"]


@st.composite
def frames(draw, body: Any) -> bytes:
    """The body serialized as some SDK would, then often mutated."""
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()),
                     separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))).encode()
    if draw(st.booleans()):
        raw = raw.replace(b"/", b"\\/")  # PHP-style escaping: the same JSON
    if draw(st.integers(0, 2)) == 0:
        mutation = draw(st.sampled_from(MUTATIONS))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        first = raw.find(b"{") + 1 or 1
        if mutation == "flip":
            raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
        elif mutation == "truncate":
            raw = raw[:at]
        elif mutation == "dup-key":
            raw = raw[:first] + draw(st.sampled_from([b'"id":1,', b'"id":"1",', b'"method":"ping",', b'"jsonrpc":"2.0",',
                                                      b'"result":{},'])) + raw[first:]
        elif mutation == "dup-secret-key":
            key = json.dumps(draw(st.sampled_from([SECRET, PLAIN_SECRET]))).encode()
            raw = raw[:first] + key + b":1," + key + b":2," + raw[first:]
        elif mutation == "bad-utf8":
            raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + raw[at:]
        elif mutation == "huge-number":
            number = draw(st.sampled_from([b"1e999", b"-1e400", b"9" * 5000, b"1" * 40, b"1e308", b"-0.0", b"0.1e-999"]))
            raw = raw[:first] + b'"n":' + number + b"," + raw[first:]
        elif mutation == "deep":
            depth = draw(st.integers(60, 300))
            raw = raw[:first] + b'"d":' + b"[" * depth + b"]" * depth + b"," + raw[first:]
        elif mutation == "surrogate":
            raw = raw[:first] + b'"s":"\\ud800\\udfff\\udc00",' + raw[first:]
        elif mutation == "oversize":
            raw = raw[:first] + b'"pad":"' + b"x" * draw(st.integers(LIMIT - 64, 3 * LIMIT)) + b'",' + raw[first:]
        elif mutation == "newline":
            raw = raw[:at] + b"\n" + raw[at:]
        elif mutation == "crlf":
            raw = raw + b"\r"
        elif mutation == "version":
            raw = raw.replace(b'"2.0"', draw(st.sampled_from([b'"1.0"', b"2.0", b"null"])), 1)
        elif mutation == "no-newline":
            return raw  # runs into the next frame
        elif mutation == "whitespace":
            raw = b" \t" + raw
    return raw + b"\n"


@st.composite
def sessions(draw) -> list[tuple[str, bytes, list[int], float]]:
    """Steps of (direction, bytes, chunk sizes, seconds to wait before)."""
    steps = []
    for exchange in draw(st.lists(exchanges(), min_size=1, max_size=6)):
        for direction, body in exchange:
            data = draw(frames(body))
            cuts = draw(st.lists(st.integers(1, 64), max_size=3))
            steps.append((direction, data, cuts, draw(st.sampled_from([0.0, 0.0, 1.0, 25.0, 61.0]))))
    if draw(st.integers(0, 9)) == 0:
        steps.append((draw(st.sampled_from(["client", "server"])), draw(st.binary(max_size=64)), [], 0.0))
    return steps


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    pieces, start = [], 0
    for cut in cuts:
        if start >= len(data):
            break
        pieces.append(data[start:start + cut])
        start += cut
    if start < len(data):
        pieces.append(data[start:])
    return pieces


class Run:
    """The audit lines and counter shared by every example of one test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.audit: list[bytes] = []

    def harness(self) -> Harness:
        COUNTS[self.name] += 1
        return Harness(self.audit)

    def close(self) -> None:
        for written in self.audit:  # the audit log stays JSONL whatever came in
            assert written.count(b"\n") == 1 and written.endswith(b"\n")
            json.loads(written)


@pytest.fixture
def run(request):
    state = Run(request.node.name)
    yield state
    state.close()


# -- properties -------------------------------------------------------------------------------------------


@FUZZ
@given(steps=sessions())
def test_fuzzed_sessions_keep_every_property(run, steps):
    """Both directions interleaved, mutated and chunked; every property checked after every chunk."""
    harness = run.harness()
    for direction, data, cuts, wait in steps:
        harness.clock.now += wait
        for piece in chunks(data, cuts):
            harness.feed(direction, piece)
    harness.gone()
    assert harness.firewall.session.pending["client"] == {}


@FUZZ
@given(requests=st.lists(st.tuples(ids, client_requests()), min_size=1, max_size=4),
       mutate=st.lists(st.booleans(), min_size=4, max_size=4), burst=st.lists(st.integers(0, 4), max_size=5),
       data=st.data())
def test_denied_client_requests_never_reach_the_server(run, requests, mutate, burst, data):
    """Client traffic alone, as one stream cut anywhere: every forwarded tools/call passes the profile.

    A burst of calls to the rate-limited tool is mixed in, so more than its 3/min arrive within a minute.
    """
    harness = run.harness()
    plan = [(request, flip) for request, flip in zip(requests, mutate, strict=False)]
    for index, position in enumerate(burst):
        plan.insert(position, ((f"L{index}", ("tools/call", {"name": "limited", "arguments": {}})), False))
    stream = b"".join(data.draw(frames(request_body(id, method, params))) if flip
                      else json.dumps(request_body(id, method, params)).encode() + b"\n"
                      for (id, (method, params)), flip in plan)
    cuts = data.draw(st.lists(st.integers(1, 200), max_size=6))
    for piece in chunks(stream, cuts):
        harness.feed("client", piece)
    harness.gone()
    assert len(harness.firewall.session.pending["client"]) == 0


@FUZZ
@given(pending=st.lists(st.tuples(ids, st.sampled_from(sorted(list_results) + ["tools/call", "initialize"])),
                        min_size=1, max_size=4), data=st.data())
def test_server_answers_never_list_hidden_items_or_ask_denied_inputs(run, pending, data):
    """Server traffic answering real pending requests (lists, calls, input_required), mutated and chunked."""
    harness = run.harness()
    for id, method in pending:
        harness.feed("client", json.dumps(request_body(id, method, {"name": "echo"} if method == "tools/call" else None))
                     .encode() + b"\n")
    stream = b""
    for id, method in pending:
        reply = envelope(id, result=data.draw(result_for(method)))
        stream += data.draw(frames(reply)) if data.draw(st.booleans()) else json.dumps(reply).encode() + b"\n"
        if data.draw(st.integers(0, 3)) == 0:
            stream += data.draw(frames(request_body(data.draw(ids), data.draw(st.sampled_from(ASKS)),
                                                    data.draw(objects))))
    for piece in chunks(stream, data.draw(st.lists(st.integers(1, 300), max_size=6))):
        harness.feed("server", piece)
    harness.gone()


@FUZZ
@given(lines=st.lists(st.binary(max_size=80) | st.sampled_from([b"x" * 300, b'{"id":7,' + b"y" * 400,
                                                                b'{"id":8,' + b"z" * (HEAD_BYTES + 500)]), max_size=8),
       cuts=st.lists(st.integers(1, 997), max_size=12),
       limit=st.integers(1, 256) | st.integers(HEAD_BYTES, HEAD_BYTES + 300))
def test_framing_is_independent_of_chunking_and_bounded(lines, cuts, limit):
    """The frames of a stream do not depend on how it was cut, and the framer never holds more than its limit.

    An oversize line keeps at least min(HEAD_BYTES, limit + 1) of its first bytes (all HEAD_BYTES of them
    with any real limit, which is at least 1 MiB): enough to read its id whatever the chunking.
    """
    COUNTS["framing"] += 1
    originals = [line.replace(b"\n", b"") for line in lines] or [b""]
    stream = b"\n".join(originals) + b"\n"
    framer = LineFramer(limit)
    frames = []
    for piece in chunks(stream, cuts):
        frames += framer.feed(piece)
        assert held_bytes(framer) <= max(limit, HEAD_BYTES)
    assert framer.pending() == 0 and len(frames) == len(originals)
    for frame, original in zip(frames, originals, strict=True):
        if len(original) > limit:
            assert isinstance(frame, Oversize) and frame.size == len(original)
            assert original.startswith(frame.head) and min(HEAD_BYTES, limit + 1) <= len(frame.head) <= HEAD_BYTES
            if limit >= HEAD_BYTES:
                assert frame.head == original[:HEAD_BYTES]
        else:
            assert frame == original


secret_values = st.text(st.sampled_from('ab/"\\\n\t\x01é😀-_'), min_size=6, max_size=12)


@FUZZ
@given(secret=secret_values, before=texts, after=texts, builtin=st.booleans(), ascii_only=st.booleans(),
       slash=st.booleans())
def test_redaction_prefilter_never_misses(secret, before, after, builtin, ascii_only, slash):
    """Whatever a JSON writer does to a string, the raw-bytes prefilter (may_apply, with the firewall's
    `suspect` for \\u escapes) never skips a message whose strings redaction would change."""
    COUNTS["redaction prefilter"] += 1
    redact = filters.Redactor({"THE_SECRET": secret}, builtin=builtin)
    text = before + secret + after
    for candidate in (text, before + after):
        raw = json.dumps({"t": candidate}, ensure_ascii=ascii_only).encode()
        if slash:
            raw = raw.replace(b"/", b"\\/")
        if redact(candidate) != candidate:
            assert filters.suspect(raw) or redact.may_apply(raw), raw
            assert redact.may_apply(candidate.encode()), "on plain text the prefilter alone suffices"


@FUZZ
@given(text=texts, keep_ansi=st.booleans(), ascii_only=st.booleans())
def test_cleaning_prefilter_never_misses(text, keep_ansi, ascii_only):
    """A message the byte prefilter passes untouched has nothing the result cleaner would remove
    (definitions are cleaned whatever the prefilter says)."""
    COUNTS["cleaning prefilter"] += 1
    raw = json.dumps({"t": text}, ensure_ascii=ascii_only).encode()
    if filters.result_cleaner(keep_ansi)(text) != text:
        assert filters.suspect(raw), raw


# Characters of every class the cleaners treat: invisible ones (all of them reachable), controls, escape introducers
# and terminators, what real emoji are built from, and what clean text is made of (which must not be flagged).
CLASS_CHARACTERS = st.one_of(
    st.sampled_from(sorted({chr(point) for first, last in filters.DEFAULT_IGNORABLE + filters.ALSO_INVISIBLE
                            for point in (first, last)})),
    st.integers(0xE0000, 0xE0FFF).map(chr), st.integers(0xFE00, 0xFE0F).map(chr),
    st.integers(0xE0100, 0xE01EF).map(chr), st.integers(0, 0x1F).map(chr), st.integers(0x7F, 0x9F).map(chr),
    st.sampled_from(list("[]P X^_\\(#%7=c\u20e3\u2764\U0001F600\U0001F468\U0001F3F4\U0001F3FDabg1;\u2014\u201c\u65e5\u00e9")),
    st.characters())


@FUZZ
@given(text=st.text(CLASS_CHARACTERS, max_size=12), key=st.text(CLASS_CHARACTERS, max_size=4),
       ascii_only=st.booleans(), slash=st.booleans())
def test_suspect_never_misses_what_a_cleaner_removes(text, key, ascii_only, slash):
    """The raw-bytes prefilter decides whether a message is walked at all: it is never False for a message
    whose string or key some cleaner would change, however the JSON writer spelled it."""
    COUNTS["suspect over the character classes"] += 1
    raw = json.dumps({key: [text]}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if slash:
        raw = raw.replace(b"/", b"\\/")
    changed = [clean for clean in (filters.result_cleaner(False), filters.result_cleaner(True))
               if clean(text) != text or clean(key) != key]
    if changed:
        OBSERVED["suspect: messages a cleaner changes"] += 1
        assert filters.suspect(raw), raw
    for clean in (filters.result_cleaner(False), filters.result_cleaner(True), filters.clean_definition_text):
        assert clean(clean(text)) == clean(text), "cleaning twice changes nothing more"


def _spelled(digits: str) -> st.SearchStrategy[Any]:
    """The ways a server may put a secret of digits into a message: as numbers of every form, in a key, in a
    string with or without escapes around it."""
    value = int(digits)
    return st.sampled_from([value, -value, value + 0.25, float(value), value * 10 + 7, int("9" + digits),
                            digits, f"pin {digits}!", {digits: 1}, {"k": [value]}])


@FUZZ
@given(data=st.data(), digits=st.integers(10**5, 10**15).map(str), ascii_only=st.booleans(),
       spellings=st.integers(1, 4))
def test_no_secret_of_digits_reaches_client_or_audit(data, digits, ascii_only, spellings):
    """Whatever form a secret of digits takes in a server's answer (number, key, string), the bytes the client
    receives and the audit log never hold it; the answer itself still arrives."""
    COUNTS["digit secrets"] += 1
    parts = [data.draw(_spelled(digits)) for _ in range(spellings)]
    wall = Firewall(fuzz_profile(), pins=Pins(), secrets={"BANK_PIN": digits}, home=HOME, granted_paths=[])
    outputs = [wall.from_client(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                            "params": {"name": "echo", "arguments": {}}}).encode() + b"\n")]
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"content": [], "structuredContent": {"parts": parts}}}
    out = wall.from_server(json.dumps(answer, ensure_ascii=ascii_only).encode() + b"\n")
    outputs += [out, wall.from_server(json.dumps({"jsonrpc": "2.0", "id": int(digits), "result": {}}).encode()
                                      + b"\n")]
    logged = b"".join(audit.line(0.0, wall.audit_fields(decision))
                      for decision in (decision for output in outputs for decision in output.decisions))
    received = b"".join(out.to_client)
    assert json.loads(received)["id"] == 1, "control: the answer reached the client"
    assert digits.encode() not in received
    assert digits.encode() not in logged
