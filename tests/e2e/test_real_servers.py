"""Real servers, a real client: through `mcpbox run` they answer exactly as they do directly.

The npm reference server (server-everything) and the PyPI mcp-server-time are
each run twice with the same client, the `mcp` Python SDK's ClientSession
over stdio: once started directly, once as `python -m mcpbox run --profile
ALLOW_ALL -- SERVER`, a profile that allows every tool, prompt, resource and
client capability and grants the folder the client offers as its root.
Whatever the client sees (the initialize result, the lists, tool results, the
notifications, a server-to-client roots/list request) must be the same both
times: for allowed traffic the firewall and the sandbox must be invisible. Values that are
the clock's (mcp-server-time's current time and today's date) are compared by
shape, not value.

Each server's two transcripts are taken once per module (a session costs
about a second here), and the tests below compare parts of them, so a
failure names what differs. A server that is not installed skips its tests
(scripts/setup --servers installs them).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import EVERYTHING, MCPBOX, TIME, dump, require, write_profile

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp import types  # noqa: E402
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS  # noqa: E402

SESSION_TIMEOUT = 60.0  # against hangs only
ROOTS_WAIT = 15.0  # server-everything asks for roots ~0.5 s after initialize; generous, against hangs only
ROOT_DIR = Path(tempfile.gettempdir()) / "mcpbox-e2e-root"
ROOT_URI = ROOT_DIR.as_uri()
ALLOW_ALL = f"""description = "allow everything the servers do (transparency tests)"
[sandbox]
read_only = ["{ROOT_DIR}"]
[client]
sampling = true
elicitation = true
roots = true
"""
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?=T\d{2}:\d{2}:\d{2})")
TIME_OF_DAY = re.compile(r"(?<=<date>)T\d{2}:\d{2}:\d{2}")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class Transcript:
    """What one client session saw, step by step."""

    steps: dict[str, Any] = field(default_factory=dict)
    notifications: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    roots_requests: int = 0
    roots_asked: asyncio.Event = field(default_factory=asyncio.Event)
    stderr: str = ""


Script = Callable[[ClientSession, Transcript], Awaitable[None]]


def direct(server: Path, env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=str(server), env=env)


def boxed(server: Path, env: dict[str, str]) -> StdioServerParameters:
    ROOT_DIR.mkdir(exist_ok=True)
    profile = write_profile(Path(env["XDG_CONFIG_HOME"]) / "allow-all.toml", ALLOW_ALL)
    return StdioServerParameters(command=MCPBOX[0], args=[*MCPBOX[1:], "run", "--profile", str(profile), "--",
                                                          str(server)], env=env)


def record(params: StdioServerParameters, script: Script, stderr_path: Path) -> Transcript:
    """Run one session of `script` against the server `params` starts; return what the client saw."""
    transcript = Transcript()

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            transcript.transport_errors.append(repr(message))
        else:
            transcript.notifications.append(message.method)

    async def list_roots(context: Any) -> types.ListRootsResult:
        transcript.roots_requests += 1
        transcript.roots_asked.set()
        return types.ListRootsResult(roots=[types.Root(uri=ROOT_URI, name="e2e")])

    async def session() -> None:
        with stderr_path.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, message_handler=on_message,
                                         list_roots_callback=list_roots) as client:
                    transcript.steps["initialize"] = dump(await client.initialize())
                    await script(client, transcript)

    asyncio.run(asyncio.wait_for(session(), SESSION_TIMEOUT))
    transcript.stderr = stderr_path.read_text()
    return transcript


@dataclass
class Pair:
    direct: Transcript
    boxed: Transcript


def both(server: Path, script: Script, xdg: dict[str, str], tmp: Path) -> Pair:
    return Pair(record(direct(server, xdg), script, tmp / "direct.stderr"),
                record(boxed(server, xdg), script, tmp / "boxed.stderr"))


# -- server-everything --------------------------------------------------------


async def everything_script(client: ClientSession, seen: Transcript) -> None:
    steps = seen.steps
    steps["tools/list"] = dump(await client.list_tools())
    steps["echo"] = dump(await client.call_tool("echo", {"message": "héllo from mcpbox's e2e test ✓"}))
    steps["get-sum"] = dump(await client.call_tool("get-sum", {"a": 19, "b": 23}))
    steps["get-tiny-image"] = dump(await client.call_tool("get-tiny-image", {}))
    steps["unknown tool"] = dump(await client.call_tool("no-such-tool", {}))
    steps["resources/list"] = dump(await client.list_resources())
    steps["resources/templates/list"] = dump(await client.list_resource_templates())
    steps["prompts/list"] = dump(await client.list_prompts())
    steps["prompts/get"] = dump(await client.get_prompt("args-prompt", {"city": "Lyon", "state": "Rhône"}))
    # The server asks for the client's roots (a server-to-client request) about half a second after
    # `initialized`; then its get-roots-list tool shows what the client answered.
    try:
        await asyncio.wait_for(seen.roots_asked.wait(), ROOTS_WAIT)
    except asyncio.TimeoutError:
        return
    steps["get-roots-list"] = dump(await client.call_tool("get-roots-list", {}))


@pytest.fixture(scope="module")
def everything(xdg: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return both(require(EVERYTHING), everything_script, xdg, tmp_path_factory.mktemp("everything"))


def tool_names(transcript: Transcript) -> list[str]:
    return [tool["name"] for tool in transcript.steps["tools/list"]["tools"]]


def test_everything_initialize_is_the_same(everything: Pair) -> None:
    """serverInfo, capabilities, protocolVersion and instructions pass through unchanged."""
    init = everything.boxed.steps["initialize"]
    assert init["serverInfo"]["name"] == "mcp-servers/everything"
    assert "tools" in init["capabilities"]
    assert init == everything.direct.steps["initialize"]


def test_everything_tools_list_is_the_same(everything: Pair) -> None:
    """Every tool, with its description and schemas, as the server lists it."""
    assert {"echo", "get-sum", "get-tiny-image"} <= set(tool_names(everything.boxed))
    assert everything.boxed.steps["tools/list"] == everything.direct.steps["tools/list"]


@pytest.mark.parametrize("step", ["echo", "get-sum", "get-tiny-image", "unknown tool"])
def test_everything_tool_calls_are_the_same(everything: Pair, step: str) -> None:
    """Tool results (non-ASCII text, a base64 image, an unknown tool's error) are identical."""
    assert everything.boxed.steps[step] == everything.direct.steps[step]


def test_everything_tool_results_are_real(everything: Pair) -> None:
    """The calls did what they say, so the comparisons above compare something."""
    steps = everything.boxed.steps
    assert "héllo from mcpbox's e2e test ✓" in steps["echo"]["content"][0]["text"]
    assert "42" in steps["get-sum"]["content"][0]["text"]
    assert any(block["type"] == "image" and block["data"] for block in steps["get-tiny-image"]["content"])
    assert steps["unknown tool"].get("isError") is True


@pytest.mark.parametrize("step", ["resources/list", "resources/templates/list", "prompts/list", "prompts/get"])
def test_everything_resources_and_prompts_are_the_same(everything: Pair, step: str) -> None:
    assert everything.boxed.steps[step] == everything.direct.steps[step]


def test_everything_lists_are_not_empty(everything: Pair) -> None:
    steps = everything.boxed.steps
    assert steps["resources/list"]["resources"]
    assert steps["prompts/list"]["prompts"]
    assert "Lyon" in json.dumps(steps["prompts/get"], ensure_ascii=False)


def test_everything_server_to_client_traffic_is_the_same(everything: Pair) -> None:
    """Notifications (tools/list_changed) and the server's roots/list request get through, both ways.

    The server asks for roots because the client declared the capability; the
    SDK answers from the callback, and the server's get-roots-list tool shows
    the answer reached it. Notifications are compared as sets: how they
    interleave with the client's requests is the server's timing, not mcpbox's.
    """
    for transcript in (everything.boxed, everything.direct):
        assert transcript.roots_requests == 1, "server-everything did not ask for the client's roots"
    assert ROOT_URI in everything.boxed.steps["get-roots-list"]["content"][0]["text"]
    assert everything.boxed.steps["get-roots-list"] == everything.direct.steps["get-roots-list"]
    assert "notifications/tools/list_changed" in everything.boxed.notifications
    assert set(everything.boxed.notifications) == set(everything.direct.notifications)
    assert not everything.boxed.transport_errors
    assert not everything.direct.transport_errors


def test_everything_stderr_is_relayed_line_by_line(everything: Pair) -> None:
    """The server's stderr reaches the client's stderr, each line prefixed with "[server] "."""
    direct_lines = everything.direct.stderr.splitlines()
    assert direct_lines, "server-everything says nothing on stderr any more: pick another check"
    boxed_lines = everything.boxed.stderr.splitlines()
    for line in direct_lines:
        assert "[server] " + line in boxed_lines


# -- mcp-server-time ----------------------------------------------------------


def text_json(result: dict[str, Any]) -> Any:
    """A tool result whose one text block is JSON, parsed (and its structured content, if any)."""
    parsed = {"content": [json.loads(block["text"]) for block in result["content"]],
              "isError": result.get("isError", False)}
    if "structuredContent" in result:
        parsed["structuredContent"] = result["structuredContent"]
    return parsed


def scrub(data: Any, *, keep_time: bool) -> Any:
    """The clock out of a result: dates become <date>, weekdays <weekday>, and times <time> unless kept."""
    text = json.dumps(data)
    text = DATE.sub("<date>", text)
    if not keep_time:
        text = TIME_OF_DAY.sub("T<time>", text)
    for day in WEEKDAYS:
        text = text.replace(f'"{day}"', '"<weekday>"')
    return json.loads(text)


async def time_script(client: ClientSession, seen: Transcript) -> None:
    steps = seen.steps
    steps["tools/list"] = dump(await client.list_tools())
    steps["get_current_time"] = dump(await client.call_tool("get_current_time", {"timezone": "UTC"}))
    steps["convert_time"] = dump(await client.call_tool(
        "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}))
    steps["bad timezone"] = dump(await client.call_tool("get_current_time", {"timezone": "Mars/Olympus_Mons"}))


@pytest.fixture(scope="module")
def time_server(xdg: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return both(require(TIME), time_script, xdg, tmp_path_factory.mktemp("time"))


def test_time_initialize_is_the_same(time_server: Pair) -> None:
    init = time_server.boxed.steps["initialize"]
    assert init["serverInfo"]["name"] == "mcp-time"
    assert init == time_server.direct.steps["initialize"]


def test_time_tools_list_is_the_same(time_server: Pair) -> None:
    """Same tools and schemas, down to the local timezone named in the descriptions (/etc/localtime, TZ)."""
    assert set(tool_names(time_server.boxed)) == {"get_current_time", "convert_time"}
    assert time_server.boxed.steps["tools/list"] == time_server.direct.steps["tools/list"]


def test_time_get_current_time_has_the_same_shape(time_server: Pair) -> None:
    """Same fields and timezone; the clock itself differs between the two sessions and is scrubbed."""
    boxed = text_json(time_server.boxed.steps["get_current_time"])
    assert boxed["content"][0]["timezone"] == "UTC"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00", boxed["content"][0]["datetime"])
    direct = text_json(time_server.direct.steps["get_current_time"])
    assert scrub(boxed, keep_time=False) == scrub(direct, keep_time=False)


def test_time_convert_time_is_the_same(time_server: Pair) -> None:
    """A conversion gives the same answer in the sandbox: tzdata is there (only today's date is scrubbed)."""
    boxed = text_json(time_server.boxed.steps["convert_time"])
    assert boxed["content"][0]["target"]["datetime"].endswith("T21:00:00+09:00")
    assert boxed["content"][0]["time_difference"] == "+9.0h"
    direct = text_json(time_server.direct.steps["convert_time"])
    assert scrub(boxed, keep_time=True) == scrub(direct, keep_time=True)


def test_time_tool_error_is_the_same(time_server: Pair) -> None:
    """An invalid timezone is a tool error, worded the same in and out of the sandbox."""
    boxed = time_server.boxed.steps["bad timezone"]
    assert boxed.get("isError") is True
    assert boxed == time_server.direct.steps["bad timezone"]


def test_time_no_transport_errors(time_server: Pair) -> None:
    assert not time_server.boxed.transport_errors
    assert not time_server.direct.transport_errors
    assert time_server.boxed.notifications == time_server.direct.notifications


# -- mcp.Client(mode="auto"): server/discover first, then initialize ------------


def auto_session(params: StdioServerParameters, tool: str, arguments: dict[str, Any],
                 stderr_path: Path) -> dict[str, Any]:
    """One mcp.Client(mode="auto") session: what it negotiated, the tools, one call."""

    async def session() -> dict[str, Any]:
        with stderr_path.open("w") as errlog:
            # stdio_client itself is a Transport; built here rather than by Client to catch stderr.
            async with mcp.Client(stdio_client(params, errlog=errlog), mode="auto") as client:
                tools = await client.list_tools()
                result = await client.call_tool(tool, arguments)
                return {
                    "protocol_version": client.protocol_version,
                    "server_info": dump(client.server_info) if client.server_info else None,
                    "tools": [dump(t) for t in tools.tools],
                    "call": dump(result),
                }

    return asyncio.run(asyncio.wait_for(session(), SESSION_TIMEOUT))


AUTO_CASES = {
    # server-everything answers server/discover with -32601: the client falls back to initialize.
    "everything": (EVERYTHING, "echo", {"message": "auto"}),
    # mcp-server-time answers server/discover: the session runs the 2026-07-28 protocol, no initialize.
    "time": (TIME, "convert_time", {"source_timezone": "UTC", "time": "08:30", "target_timezone": "UTC"}),
}


@pytest.mark.skipif(not hasattr(mcp, "Client"), reason="this mcp SDK has no mcp.Client")
@pytest.mark.parametrize("name", sorted(AUTO_CASES))
def test_client_auto_mode_negotiates_the_same_through_mcpbox(name: str, xdg: dict[str, str],
                                                             tmp_path: Path) -> None:
    """mcp.Client(mode="auto") probes server/discover first; through mcpbox it ends up where it does directly.

    The same protocol version (a modern one for mcp-server-time, the
    initialize fallback for server-everything), server info, tools and a call.
    """
    server, tool, arguments = AUTO_CASES[name]
    server = require(server)
    through = auto_session(boxed(server, xdg), tool, arguments, tmp_path / "boxed.stderr")
    alone = auto_session(direct(server, xdg), tool, arguments, tmp_path / "direct.stderr")
    assert through["call"].get("isError") is not True, through["call"]
    expected_era = MODERN_PROTOCOL_VERSIONS if name == "time" else HANDSHAKE_PROTOCOL_VERSIONS
    assert through["protocol_version"] in expected_era
    if name == "time":
        through["call"] = scrub(text_json(through["call"]), keep_time=True)
        alone["call"] = scrub(text_json(alone["call"]), keep_time=True)
    assert through == alone
