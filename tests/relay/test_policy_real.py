"""The profile's policy, enforced on real servers driven by a real client, through `mcpbox run`.

Real parts end to end: the npm reference servers server-everything and
server-filesystem and PyPI mcp-server-time run in the real bwrap sandbox under
`python -m mcpbox run --profile P -- SERVER`, and the `mcp` Python SDK's
ClientSession (handshake era) or mcp.Client(mode="auto") (2026-07-28 for
mcp-server-time) talks to them over stdio, as a desktop client would.

Each session is recorded once per module (a server-everything session costs
about a second) and the tests below check parts of it, so a failure names the
rule that broke:

- `strict`: server-everything under a profile that hides tools (an allow list
  with globs, and deny globs that win), resources and prompts, limits `echo` to
  2 calls a minute, refuses sampling and elicitation, grants one folder and so
  filters the client's roots, passes a secret through `[sandbox] env` and
  writes the audit log to a file.
- `open_`: the same server, sampling and elicitation allowed and roots refused:
  the control for `strict` (what is hidden there is really there), and the
  roots=false case.
- `files`: server-filesystem with `[tools.arguments]` path globs narrower than
  what the server itself would serve, so only mcpbox can be the one refusing.
- mcp-server-time through mcp.Client(mode="auto"): the same denials in the
  2026-07-28 era (no handshake, `_meta` on every request).

Every denial is checked against ARCHITECTURE.md's "Denials (contract)" table.
A server that is not installed skips its tests (scripts/setup --servers).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import EVERYTHING, FILESYSTEM, MCPBOX, TIME, audit_lines, dump, require, write_profile

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client  # noqa: E402
from mcp import types  # noqa: E402

SESSION_TIMEOUT = 60.0  # against hangs only
ROOTS_WAIT = 15.0  # server-everything asks for roots ~0.4 s after initialize; generous, against hangs only
SECRET_NAME = "MY_API_TOKEN"
SECRET_VALUE = "mcpbox-test-secret-4f1c9e7a2b"  # long enough to be redacted, unlike anything real
ECHO_MARKER = "audit-marker-7d3e1b"  # sent as an argument: must never appear in a hashed audit log


# -- recording a session ---------------------------------------------------------


async def outcome(call: Awaitable[Any]) -> dict[str, Any]:
    """A request's result as JSON data, or {"error": {code, message}} when it got a JSON-RPC error."""
    try:
        return dump(await call)
    except MCPError as error:
        return {"error": {"code": error.code, "message": error.message}}


@dataclass
class Seen:
    """What one client session saw."""

    steps: dict[str, Any] = field(default_factory=dict)
    sampling_calls: list[Any] = field(default_factory=list)
    elicitation_calls: list[Any] = field(default_factory=list)
    roots_calls: int = 0
    roots_asked: asyncio.Event = field(default_factory=asyncio.Event)
    transport_errors: list[str] = field(default_factory=list)
    stderr: str = ""
    audit: list[dict[str, Any]] = field(default_factory=list)
    audit_text: str = ""


Script = Callable[[ClientSession, Seen], Awaitable[None]]


def boxed(profile: Path, server: list[str], env: dict[str, str]) -> StdioServerParameters:
    """`mcpbox run --profile PROFILE -- SERVER`, started in the profile's folder (never mounted)."""
    return StdioServerParameters(command=MCPBOX[0], args=[*MCPBOX[1:], "run", "--profile", str(profile), "--",
                                                          *server], env=env, cwd=str(profile.parent))


def record(params: StdioServerParameters, script: Script, workdir: Path, *, roots: list[str] | None,
           audit: Path) -> Seen:
    """Run one session of `script` through mcpbox; `roots` (file URIs) is what the client offers, if anything."""
    seen = Seen()

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            seen.transport_errors.append(repr(message))

    async def sampling(context: Any, params: Any) -> types.CreateMessageResult:
        seen.sampling_calls.append(params)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="sampled"),
                                         model="test-model")

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        seen.elicitation_calls.append(params)
        return types.ElicitResult(action="decline")

    async def list_roots(context: Any) -> types.ListRootsResult:
        seen.roots_calls += 1
        seen.roots_asked.set()
        return types.ListRootsResult(roots=[types.Root(uri=uri, name=f"root {index}")
                                            for index, uri in enumerate(roots or [])])

    stderr_path = workdir / "mcpbox.stderr"

    async def session() -> None:
        with stderr_path.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, message_handler=on_message, sampling_callback=sampling,
                                         elicitation_callback=elicitation,
                                         list_roots_callback=list_roots if roots is not None else None) as client:
                    seen.steps["initialize"] = dump(await client.initialize())
                    await script(client, seen)

    asyncio.run(asyncio.wait_for(session(), SESSION_TIMEOUT))
    seen.stderr = stderr_path.read_text()
    if audit.exists():
        seen.audit_text = audit.read_text()
        seen.audit = audit_lines(audit)
    return seen


def names(listing: dict[str, Any], key: str, naming: str = "name") -> list[str]:
    return [item[naming] for item in listing[key]]


def text_of(result: dict[str, Any]) -> str:
    return "\n".join(block.get("text", "") for block in result.get("content", []))


def client_env(xdg: dict[str, str], **extra: str) -> dict[str, str]:
    """What the client starts mcpbox with: PATH, HOME, the module's XDG dirs and the secret.

    PYTHONPATH too when set, so that these tests can be pointed at another copy of mcpbox.
    """
    inherited = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}
    return {"PATH": "/usr/bin:/bin", **inherited, "HOME": os.path.expanduser("~"), **xdg,
            SECRET_NAME: SECRET_VALUE, **extra}


# -- server-everything, strict ---------------------------------------------------------

HIDDEN_TOOLS = {
    "get-tiny-image": "allowed by the glob get-*, denied by name: deny wins",
    "get-resource-links": "allowed by get-*, denied by the glob get-resource-*",
    "get-resource-reference": "allowed by get-*, denied by the glob get-resource-*",
    "gzip-file-as-resource": "not in the allow list",
    "toggle-simulated-logging": "not in the allow list",
}
SHOWN_TOOLS = {"echo", "get-sum", "get-env", "get-roots-list", "get-annotated-message"}
SHOWN_RESOURCE = "demo://resource/static/document/features.md"
DENIED_RESOURCE = "demo://resource/static/document/instructions.md"  # allowed by the glob, denied by name
HIDDEN_TEMPLATE_URI = "demo://resource/dynamic/text/1"  # its template is outside the allow glob
HIDDEN_PROMPTS = ("completable-prompt", "resource-prompt")


def strict_profile(granted: Path, audit: Path) -> str:
    return f"""description = "policy test: hide, limit, refuse, redact, audit"
[sandbox]
read_only = ["{granted}"]
env = ["{SECRET_NAME}"]

[tools]
allow = ["echo", "get-*", "trigger-*"]
deny = ["get-tiny-image", "get-resource-*"]

[tools.rate]
echo = "2/min"

[resources]
allow = ["demo://resource/static/document/*"]
deny = ["{DENIED_RESOURCE}"]

[prompts]
allow = ["simple-prompt", "args-prompt"]

[client]
sampling = false
elicitation = false
roots = true

[audit]
path = "{audit}"
"""


async def strict_script(client: ClientSession, seen: Seen) -> None:
    steps = seen.steps
    # server-everything asks for the client's roots ~0.4 s after `initialized` (roots = true here).
    await asyncio.wait_for(seen.roots_asked.wait(), ROOTS_WAIT)
    steps["tools/list"] = dump(await client.list_tools())
    for tool in HIDDEN_TOOLS:
        steps[f"call {tool}"] = await outcome(client.call_tool(tool, {}))
    steps["get-sum"] = await outcome(client.call_tool("get-sum", {"a": 20, "b": 22}))
    steps["get-env"] = await outcome(client.call_tool("get-env", {}))
    steps["get-roots-list"] = await outcome(client.call_tool("get-roots-list", {}))
    for index in range(3):  # "2/min": the third is refused
        steps[f"echo {index}"] = await outcome(client.call_tool("echo", {"message": f"{ECHO_MARKER} {index}"}))
    # Refused capabilities: the server was told the client has neither, so it never offers these tools.
    steps["trigger-sampling-request"] = await outcome(
        client.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 5}))
    steps["trigger-elicitation-request"] = await outcome(client.call_tool("trigger-elicitation-request", {}))
    steps["resources/list"] = dump(await client.list_resources())
    steps["resources/templates/list"] = dump(await client.list_resource_templates())
    steps["read shown"] = await outcome(client.read_resource(SHOWN_RESOURCE))
    steps["read denied"] = await outcome(client.read_resource(DENIED_RESOURCE))
    steps["read hidden template"] = await outcome(client.read_resource(HIDDEN_TEMPLATE_URI))
    steps["prompts/list"] = dump(await client.list_prompts())
    steps["get args-prompt"] = await outcome(client.get_prompt("args-prompt", {"city": "Lyon"}))
    for prompt in HIDDEN_PROMPTS:
        steps[f"get {prompt}"] = await outcome(client.get_prompt(prompt, {}))
    steps["complete hidden prompt"] = await outcome(client.complete(
        types.PromptReference(type="ref/prompt", name="completable-prompt"),
        {"name": "department", "value": "E"}))


@dataclass
class Recorded:
    seen: Seen
    granted: Path
    outside: Path
    audit: Path


@pytest.fixture(scope="module")
def strict(xdg: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    server = require(EVERYTHING)
    base = tmp_path_factory.mktemp("strict")
    granted, outside = base / "granted", base / "outside"
    granted.mkdir()
    outside.mkdir()
    audit = base / "audit.jsonl"
    profile = write_profile(base / "strict.toml", strict_profile(granted, audit))
    # The client offers three roots: the granted folder, a folder inside it, and one the sandbox never sees.
    (granted / "sub").mkdir()
    roots = [granted.as_uri(), (granted / "sub").as_uri(), outside.as_uri()]
    seen = record(boxed(profile, [str(server)], client_env(xdg)), strict_script, base, roots=roots, audit=audit)
    return Recorded(seen, granted, outside, audit)


def test_hidden_tools_are_absent_from_tools_list(strict: Recorded) -> None:
    """Allow globs let tools in, deny globs take them out again (deny wins); the rest are listed as they are."""
    listed = set(names(strict.seen.steps["tools/list"], "tools"))
    assert SHOWN_TOOLS <= listed, listed
    for tool, why in HIDDEN_TOOLS.items():
        assert tool not in listed, f"{tool} is listed ({why})"
    assert not {tool for tool in listed if not (tool == "echo" or tool.startswith(("get-", "trigger-")))}


@pytest.mark.parametrize("tool", sorted(HIDDEN_TOOLS))
def test_calling_a_hidden_tool_is_an_unknown_tool(strict: Recorded, tool: str) -> None:
    """The denial table: a tool the profile hides is, to the client, a tool that does not exist (-32602)."""
    assert strict.seen.steps[f"call {tool}"] == {"error": {"code": -32602, "message": f"Unknown tool: {tool}"}}


def test_shown_tools_still_work(strict: Recorded) -> None:
    """The control: the same session's allowed calls reach the server and come back."""
    assert "42" in text_of(strict.seen.steps["get-sum"])
    assert strict.seen.steps["get-sum"].get("isError") is not True


def test_rate_limit_refuses_the_third_call_saying_when_to_retry(strict: Recorded) -> None:
    """[tools.rate] echo = "2/min": two echoes pass, the third is an isError result with a retry time."""
    steps = strict.seen.steps
    for index in (0, 1):
        assert f"{ECHO_MARKER} {index}" in text_of(steps[f"echo {index}"])
        assert steps[f"echo {index}"].get("isError") is not True
    refused = steps["echo 2"]
    assert refused.get("isError") is True, refused
    text = text_of(refused)
    assert "rate limit" in text and "echo" in text and "retry in" in text
    assert ECHO_MARKER not in text  # mcpbox answered; the server never saw the third call
    seconds = float(text.split("retry in", 1)[1].split()[0])
    assert 0 < seconds <= 60


def test_resources_are_hidden_from_the_lists_and_refused(strict: Recorded) -> None:
    """URI globs: outside the allow glob or denied by name, a resource is absent and its read is -32602."""
    steps = strict.seen.steps
    listed = names(steps["resources/list"], "resources", "uri")
    assert SHOWN_RESOURCE in listed
    assert DENIED_RESOURCE not in listed
    assert all(uri.startswith("demo://resource/static/document/") for uri in listed)
    assert names(steps["resources/templates/list"], "resourceTemplates", "uriTemplate") == []
    assert steps["read shown"]["contents"][0]["uri"] == SHOWN_RESOURCE
    for step, uri in (("read denied", DENIED_RESOURCE), ("read hidden template", HIDDEN_TEMPLATE_URI)):
        error = steps[step].get("error")
        assert error is not None and error["code"] == -32602, steps[step]
        assert uri in error["message"]


def test_prompts_are_hidden_from_the_list_and_refused(strict: Recorded) -> None:
    """Hidden prompts are absent; prompts/get and completion/complete on one are -32602."""
    steps = strict.seen.steps
    assert sorted(names(steps["prompts/list"], "prompts")) == ["args-prompt", "simple-prompt"]
    assert "Lyon" in json.dumps(steps["get args-prompt"])
    for prompt in HIDDEN_PROMPTS:
        assert steps[f"get {prompt}"] == {"error": {"code": -32602, "message": f"Unknown prompt: {prompt}"}}
    assert steps["complete hidden prompt"] == {
        "error": {"code": -32602, "message": "Unknown prompt: completable-prompt"}}


def test_sampling_and_elicitation_never_reach_the_client(strict: Recorded, open_: Recorded) -> None:
    """sampling = false, elicitation = false: the server is not told the client can do either.

    server-everything registers trigger-sampling-request and
    trigger-elicitation-request only for a client that declared the
    capability. The SDK client declares both (it has both callbacks), yet under
    the strict profile the tools are absent and calling them fails, and neither
    callback ever runs; under the open profile (the control) the same client
    gets the tools and the server's requests reach its callbacks.
    """
    listed = set(names(strict.seen.steps["tools/list"], "tools"))
    assert "trigger-sampling-request" not in listed
    assert "trigger-elicitation-request" not in listed
    for step in ("trigger-sampling-request", "trigger-elicitation-request"):
        refused = strict.seen.steps[step]
        assert "error" in refused or refused.get("isError") is True, refused
    assert strict.seen.sampling_calls == []
    assert strict.seen.elicitation_calls == []
    assert strict.seen.steps["initialize"]["serverInfo"]["name"] == "mcp-servers/everything"

    opened = set(names(open_.seen.steps["tools/list"], "tools"))
    assert {"trigger-sampling-request", "trigger-elicitation-request"} <= opened
    assert len(open_.seen.sampling_calls) == 1
    assert "sampled" in text_of(open_.seen.steps["trigger-sampling-request"])
    assert len(open_.seen.elicitation_calls) == 1


def test_roots_outside_the_binds_are_removed_from_the_clients_answer(strict: Recorded) -> None:
    """roots = true: the server gets only the roots the sandbox can see (the granted folder and below).

    The client offers three roots; server-everything's get-roots-list tool
    shows what reached the server.
    """
    assert strict.seen.roots_calls >= 1
    text = text_of(strict.seen.steps["get-roots-list"])
    assert f"URI: {strict.granted.as_uri()}\n" in text + "\n"
    assert f"URI: {(strict.granted / 'sub').as_uri()}" in text
    assert strict.outside.as_uri() not in text
    assert "(2 total)" in text


def test_secret_env_value_is_redacted_in_what_reaches_the_client(strict: Recorded) -> None:
    """[sandbox] env passes MY_API_TOKEN in; get-env's output reaches the client with the value replaced."""
    text = text_of(strict.seen.steps["get-env"])
    environment = json.loads(text)
    assert environment[SECRET_NAME] == f"[redacted:{SECRET_NAME}]"  # the server had it: the sandbox passed it
    assert SECRET_VALUE not in json.dumps(strict.seen.steps)
    assert SECRET_VALUE not in strict.seen.stderr


def test_audit_log_has_one_line_per_decision(strict: Recorded) -> None:
    """[audit] path: JSONL, one line per tools/call decision, with what, why, how big and how long."""
    audit = strict.seen.audit
    assert audit, "no audit log written"
    for line in audit:
        assert {"time", "direction", "method", "id", "decision"} <= set(line), line
    calls = [line for line in audit if line["method"] == "tools/call"]
    made = [step for step in strict.seen.steps if step.startswith(("call ", "echo ", "get-", "trigger-"))]
    assert len(calls) == len(made), (made, calls)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for line in calls:
        by_name.setdefault(line["name"], []).append(line)
    for tool in HIDDEN_TOOLS:
        [denied] = by_name[tool]
        # get-tiny-image and get-resource-* match the allow glob get-*: only the deny list hides them.
        expected = "tools.deny" if tool.startswith("get-") else "tools.allow"
        assert denied["decision"] == "deny" and denied["rule"] == expected and denied["direction"] == "client"
    first, second, third = by_name["echo"]
    for allowed in (first, second):
        assert allowed["decision"] == "allow"
        assert allowed["arguments"].startswith("sha256:")
        assert allowed["bytes"] > 0 and allowed["duration_ms"] >= 0
    assert first["arguments"] != second["arguments"]  # a hash of the arguments, not a constant
    assert third["decision"] == "deny" and third["rule"] == "tools.rate"
    ids = [line["id"] for line in calls]
    assert len(ids) == len(set(ids)), "one line per request, not two"
    reads = {line["name"]: line for line in audit if line["method"] == "resources/read"}
    assert reads[DENIED_RESOURCE]["decision"] == "deny" and reads[DENIED_RESOURCE]["rule"] == "resources.deny"
    gets = [line for line in audit if line["method"] == "prompts/get" and line["decision"] == "deny"]
    assert sorted(line["name"] for line in gets) == sorted(HIDDEN_PROMPTS)
    assert any(line["method"] == "roots/list" and line["decision"] == "filter" for line in audit)


def test_audit_log_never_holds_an_argument_or_a_secret(strict: Recorded) -> None:
    """[audit] arguments defaults to "hash": neither the echo text nor the secret's value is in the file."""
    assert ECHO_MARKER in json.dumps(strict.seen.steps)  # it was sent (and echoed back)
    assert ECHO_MARKER not in strict.seen.audit_text
    assert SECRET_VALUE not in strict.seen.audit_text
    assert oct(strict.audit.stat().st_mode & 0o777) == oct(0o600)


# -- server-everything, open (and roots = false) -------------------------------------------


def open_profile(audit: Path) -> str:
    return f"""description = "policy test control: sampling and elicitation allowed, roots refused"
[sandbox]
env = ["{SECRET_NAME}"]
[client]
sampling = true
elicitation = true
roots = false
[audit]
path = "{audit}"
arguments = "full"
"""


async def open_script(client: ClientSession, seen: Seen) -> None:
    steps = seen.steps
    steps["tools/list"] = dump(await client.list_tools())
    steps["trigger-sampling-request"] = await outcome(
        client.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 5}))
    steps["trigger-elicitation-request"] = await outcome(client.call_tool("trigger-elicitation-request", {}))
    steps["echo secret"] = await outcome(client.call_tool("echo", {"message": f"token {SECRET_VALUE}"}))
    steps["get-roots-list"] = await outcome(client.call_tool("get-roots-list", {}))
    # server-everything would have asked for roots ~0.4 s after `initialized`; give it more than that.
    await asyncio.sleep(1.0)


@pytest.fixture(scope="module")
def open_(xdg: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    server = require(EVERYTHING)
    base = tmp_path_factory.mktemp("open")
    audit = base / "audit.jsonl"
    profile = write_profile(base / "open.toml", open_profile(audit))
    # The client would offer a root if asked: roots = false means the server must never ask.
    seen = record(boxed(profile, [str(server)], client_env(xdg)), open_script, base, roots=[base.as_uri()],
                  audit=audit)
    return Recorded(seen, base, base, audit)


def test_roots_false_removes_the_capability_the_server_is_told(open_: Recorded) -> None:
    """roots = false: server-everything never asks for roots and never offers get-roots-list.

    The client declares roots (it has a callback), so only mcpbox's narrowing of
    the `initialize` capabilities can explain both.
    """
    assert "get-roots-list" not in names(open_.seen.steps["tools/list"], "tools")
    assert open_.seen.steps["get-roots-list"].get("isError") is True or "error" in open_.seen.steps["get-roots-list"]
    assert open_.seen.roots_calls == 0
    assert not open_.seen.transport_errors


def test_full_audit_arguments_are_redacted(open_: Recorded) -> None:
    """[audit] arguments = "full" writes the arguments, yet never the value of a secret (nor does the client get it)."""
    [echo] = [line for line in open_.seen.audit if line["method"] == "tools/call" and line["name"] == "echo"]
    assert echo["arguments"] == json.dumps({"message": f"token [redacted:{SECRET_NAME}]"}, sort_keys=True,
                                           ensure_ascii=False)
    assert SECRET_VALUE not in open_.seen.audit_text
    assert text_of(open_.seen.steps["echo secret"]) == f"Echo: token [redacted:{SECRET_NAME}]"


# -- server-filesystem: argument rules ---------------------------------------------------------

PUBLIC_TEXT = "public file, read through the sandbox\n"
PRIVATE_TEXT = "private file: the argument rule must keep this from the client\n"


def files_profile(granted: Path) -> str:
    public = granted / "public"
    return f"""description = "policy test: path arguments confined to one folder"
[sandbox]
read_only = ["{granted}"]
[tools]
allow = ["read_text_file", "read_file", "read_multiple_files", "list_allowed_directories"]
[tools.arguments.read_text_file]
path = "{public}/**"
[tools.arguments.read_file]
path = "{public}/**"
[tools.arguments.read_multiple_files]
paths = "{public}/**"
[client]
roots = false
"""


@pytest.fixture(scope="module")
def files(xdg: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """server-filesystem serves the whole granted folder; the profile narrows reads to granted/public."""
    server = require(FILESYSTEM)
    base = tmp_path_factory.mktemp("files")
    granted = base / "granted"
    (granted / "public").mkdir(parents=True)
    (granted / "private").mkdir()
    (granted / "public" / "hello.txt").write_text(PUBLIC_TEXT)
    (granted / "private" / "secret.txt").write_text(PRIVATE_TEXT)
    public, private = granted / "public", granted / "private" / "secret.txt"
    attempts = {
        "inside": ("read_text_file", {"path": f"{public}/hello.txt"}),
        "inside, deprecated name": ("read_file", {"path": f"{public}/hello.txt"}),
        "sibling": ("read_text_file", {"path": str(private)}),
        "dot-dot": ("read_text_file", {"path": f"{public}/../private/secret.txt"}),
        "double slash and dot-dot": ("read_text_file", {"path": f"{public}//..//private//secret.txt"}),
        "leading double slash": ("read_text_file", {"path": f"/{private}"}),
        "relative": ("read_text_file", {"path": "private/secret.txt"}),
        "host file": ("read_file", {"path": "/etc/passwd"}),
        "one bad path in a list": ("read_multiple_files", {"paths": [f"{public}/hello.txt", str(private)]}),
        "server's own check, inside the rule": ("list_allowed_directories", {}),
    }

    async def script(client: ClientSession, seen: Seen) -> None:
        seen.steps["tools/list"] = dump(await client.list_tools())
        for step, (tool, arguments) in attempts.items():
            seen.steps[step] = await outcome(client.call_tool(tool, arguments))

    audit = base / "audit.jsonl"
    profile = write_profile(base / "files.toml", files_profile(granted) + f'[audit]\npath = "{audit}"\n')
    seen = record(boxed(profile, [str(server), str(granted)], client_env(xdg)), script, base, roots=None,
                  audit=audit)
    return Recorded(seen, granted, base, audit)


def test_allowed_path_is_really_read_through_the_sandbox(files: Recorded) -> None:
    """Inside the glob the call passes and the file's content comes back from the sandboxed server."""
    for step in ("inside", "inside, deprecated name"):
        result = files.seen.steps[step]
        assert result.get("isError") is not True, result
        assert text_of(result) == PUBLIC_TEXT


@pytest.mark.parametrize("step", ["sibling", "dot-dot", "double slash and dot-dot", "leading double slash",
                                  "relative", "host file"])
def test_path_outside_the_glob_is_refused_naming_the_rule(files: Recorded, step: str) -> None:
    """The denial table: an isError result naming the argument, the tool and the glob; `..` and `//` do not help.

    The server itself would serve granted/private (it was given all of
    granted), so this refusal can only be mcpbox's.
    """
    result = files.seen.steps[step]
    assert result.get("isError") is True, result
    text = text_of(result)
    public = files.granted / "public"
    assert text.startswith("mcpbox: argument path="), text
    assert f"is outside {public}/**" in text
    assert PRIVATE_TEXT.strip() not in text


def test_a_list_argument_with_one_bad_path_is_refused(files: Recorded) -> None:
    """Every element of an array argument must match: one outside path refuses the whole call."""
    result = files.seen.steps["one bad path in a list"]
    assert result.get("isError") is True, result
    assert "argument paths=" in text_of(result) and "read_multiple_files" in text_of(result)
    assert PUBLIC_TEXT not in text_of(result) and PRIVATE_TEXT not in text_of(result)


def test_the_server_would_have_served_the_private_file(files: Recorded) -> None:
    """The control for the refusals: the server's own allowed directory is the whole granted folder."""
    assert str(files.granted) in text_of(files.seen.steps["server's own check, inside the rule"])
    assert set(names(files.seen.steps["tools/list"], "tools")) == {
        "read_text_file", "read_file", "read_multiple_files", "list_allowed_directories"}


def test_refused_arguments_are_audited_with_the_rule(files: Recorded) -> None:
    denied = [line for line in files.seen.audit if line["decision"] == "deny"]
    assert len(denied) == 7
    assert {line["rule"] for line in denied} == {
        "tools.arguments.read_text_file", "tools.arguments.read_file", "tools.arguments.read_multiple_files"}


# -- mcp-server-time in the 2026-07-28 era -------------------------------------------------------

TIME_PROFILE = """description = "policy test: the modern era"
[tools]
allow = ["*"]
deny = ["convert_time"]
[tools.arguments.get_current_time]
timezone = "Europe/*"
"""


@pytest.mark.skipif(not hasattr(mcp, "Client"), reason="this mcp SDK has no mcp.Client")
def test_modern_era_hides_tools_and_refuses_arguments(xdg: dict[str, str], tmp_path: Path) -> None:
    """mcp.Client(mode="auto") talks 2026-07-28 to mcp-server-time (server/discover, `_meta` per request).

    The same denials hold without a handshake: the denied tool is absent and
    unknown (-32602), an argument outside its glob is an isError result, one
    inside passes.
    """
    server = require(TIME)
    profile = write_profile(tmp_path / "time.toml", TIME_PROFILE)
    params = boxed(profile, [str(server)], client_env(xdg))

    async def session() -> dict[str, Any]:
        with (tmp_path / "mcpbox.stderr").open("w") as errlog:
            async with mcp.Client(stdio_client(params, errlog=errlog), mode="auto") as client:
                return {
                    "version": client.protocol_version,
                    "tools": [tool.name for tool in (await client.list_tools()).tools],
                    "hidden": await outcome(client.call_tool("convert_time", {
                        "source_timezone": "UTC", "time": "12:00", "target_timezone": "UTC"})),
                    "refused": await outcome(client.call_tool("get_current_time", {"timezone": "UTC"})),
                    "allowed": await outcome(client.call_tool("get_current_time", {"timezone": "Europe/Paris"})),
                }

    seen = asyncio.run(asyncio.wait_for(session(), SESSION_TIMEOUT))
    assert not seen["version"].startswith("2025"), seen["version"]  # the modern era, not the fallback
    assert seen["tools"] == ["get_current_time"]
    assert seen["hidden"] == {"error": {"code": -32602, "message": "Unknown tool: convert_time"}}
    assert seen["refused"].get("isError") is True
    assert text_of(seen["refused"]) == "mcpbox: argument timezone='UTC' of get_current_time is outside Europe/*"
    assert seen["allowed"].get("isError") is not True, seen["allowed"]
    assert "Europe/Paris" in text_of(seen["allowed"])
