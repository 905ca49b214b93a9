"""A server that needs what it does not have says so (issue 10, part 3).

Each test runs `mcpbox run` on a server that fails at start for one reason the sandbox causes (a module
outside the binds, a variable the profile does not pass, the network it does not have, a start that never
answers), talks to it as a client does (JSON lines over pipes, or the `mcp` SDK), and checks both ends:
mcpbox's stderr says what it saw in one or two lines, and the client's pending request gets an error
naming the same thing. No packet leaves: the only network use is a name lookup that fails inside the
sandbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import MCPBOX, NODE22, ROOT, require, write_profile

TIMEOUT = 30.0  # against hangs only
STALL_SECONDS = 1
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "test_failed_start", "version": "0"}}}


@pytest.fixture
def short_deadline(tmp_path: Path) -> Path:
    """A profile whose start-up deadline ([limits] start_seconds) is STALL_SECONDS."""
    return write_profile(tmp_path / "short.toml", f"[limits]\nstart_seconds = {STALL_SECONDS}\n")


class Client:
    """A client on mcpbox's stdio that keeps its stdin open, as real clients do."""

    def __init__(self, argv: list[str], *, profile: Path | None = None, env: dict[str, str] | None = None) -> None:
        options = ["--profile", str(profile)] if profile else []
        self.process = subprocess.Popen([*MCPBOX, "run", *options, "--", *argv], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
                                        start_new_session=True)
        self.buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any] | None:
        """The next line from mcpbox, or None at end of file."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"nothing from mcpbox within {TIMEOUT} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def error_for(self, request: dict[str, Any]) -> str:
        """Send `request`; the message of the JSON-RPC error that answers it."""
        self.send(request)
        answer = self.receive()
        assert answer is not None, f"mcpbox ended without answering; stderr: {self.stderr()}"
        assert answer["id"] == request["id"] and answer["error"]["code"] == -32603, answer
        return answer["error"]["message"]

    def finish(self) -> tuple[int, str]:
        """Close stdin (if open) and wait: mcpbox's status and its stderr."""
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        status = self.process.wait(TIMEOUT)
        return status, self.stderr()

    def stderr(self) -> str:
        assert self.process.stderr is not None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return self.process.stderr.read().decode()


@pytest.fixture
def clients():
    started: list[Client] = []
    yield started
    for client in started:
        if client.process.poll() is None:
            client.process.kill()
            client.process.wait()
        for pipe in (client.process.stdin, client.process.stdout, client.process.stderr):
            if pipe is not None:
                pipe.close()


def start(clients: list[Client], argv: list[str], **options: Any) -> Client:
    client = Client(argv, **options)
    clients.append(client)
    return client


def mcpbox_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mcpbox: ")]


def assert_told(stderr: str, message: str) -> None:
    """mcpbox's stderr holds the client's error as its two lines: what was seen, then the hint."""
    seen, hint = message.split(" — ", 1)
    assert mcpbox_lines(stderr) == [seen, f"mcpbox: {hint}"], stderr


def node() -> str:
    return shutil.which("node") or str(require(NODE22))


def test_module_outside_the_binds(clients: list[Client], tmp_path: Path) -> None:
    """A node server requiring a module that exists on the host but outside the sandbox's binds."""
    module = tmp_path / "lib" / "helper.js"
    module.parent.mkdir()
    module.write_text("module.exports = {};\n")
    client = start(clients, [node(), "-e", f"require({json.dumps(str(module))})"])
    message = client.error_for(INITIALIZE)
    assert message.startswith("mcpbox: the server exited (status 1) before answering: "
                              f"Error: Cannot find module '{module}' — {module} is outside the sandbox's binds: "
                              "add it to read_only under [sandbox] in "), message
    status, stderr = client.finish()
    assert status == 1, stderr
    assert_told(stderr, message)
    assert "[server] Error: Cannot find module" in stderr, "the server's own lines are shown as before"


def test_module_inside_a_granted_bind_is_found(clients: list[Client], tmp_path: Path) -> None:
    """The contrast: with the folder granted, the same server gets past the require (and then exits 0, being no
    server): mcpbox says so, with no hint about binds."""
    module = tmp_path / "lib" / "helper.js"
    module.parent.mkdir()
    module.write_text("module.exports = {};\n")
    profile = write_profile(tmp_path / "p.toml", f"[sandbox]\nread_only = [{json.dumps(str(module.parent))}]\n")
    client = start(clients, [node(), "-e", f"require({json.dumps(str(module))})"], profile=profile)
    message = client.error_for(INITIALIZE)
    assert message == "mcpbox: the server exited (status 0) before answering; it wrote nothing on stderr"
    status, stderr = client.finish()
    assert status == 0 and mcpbox_lines(stderr) == [message], stderr


NEEDS_TOKEN = "import os\nprint('starting', flush=True, file=__import__('sys').stderr)\nos.environ['NEEDED_TOKEN']\n"


def test_missing_variable_reaches_an_sdk_client(tmp_path: Path) -> None:
    """The `mcp` SDK's stdio client: `initialize` raises the error naming the variable to pass."""
    mcp = pytest.importorskip("mcp")
    params = mcp.StdioServerParameters(command=MCPBOX[0], args=[*MCPBOX[1:], "run", "--", sys.executable, "-c",
                                                                NEEDS_TOKEN],
                                       env=dict(os.environ, NEEDED_TOKEN="set-here-but-not-passed"), cwd=str(ROOT))
    errlog_path = tmp_path / "stderr"

    async def session() -> str:
        with errlog_path.open("w") as errlog:
            async with mcp.stdio_client(params, errlog=errlog) as (read, write):
                async with mcp.ClientSession(read, write) as client:
                    try:
                        await client.initialize()
                    except mcp.MCPError as error:
                        return error.message
        pytest.fail("initialize succeeded")

    message = asyncio.run(asyncio.wait_for(session(), TIMEOUT))
    assert message.startswith("mcpbox: the server exited (status 1) before answering: KeyError: 'NEEDED_TOKEN' — "
                              "the sandbox gets only the variables its profile names, with their values from "
                              "mcpbox's environment: add \"NEEDED_TOKEN\" to env under [sandbox] in "), message
    lines = mcpbox_lines(errlog_path.read_text())  # written before the error was sent
    assert lines[0] == "mcpbox: the server exited (status 1) before answering: KeyError: 'NEEDED_TOKEN'"
    assert lines[1].startswith("mcpbox: the sandbox gets only the variables its profile names")


def test_variable_listed_but_not_set_and_its_value_never_shown(clients: list[Client], tmp_path: Path) -> None:
    """Listed in [sandbox] env but absent from mcpbox's environment: the hint says where to set it. Once set,
    a server that prints the value in its dying line has it redacted in the client's error and on stderr."""
    profile = write_profile(tmp_path / "p.toml", '[sandbox]\nenv = ["NEEDED_TOKEN"]\n')
    env = {name: value for name, value in os.environ.items() if name != "NEEDED_TOKEN"}
    client = start(clients, [sys.executable, "-c", NEEDS_TOKEN], profile=profile, env=env)
    message = client.error_for(INITIALIZE)
    assert message.endswith(f"— NEEDED_TOKEN is passed by [sandbox] env in {profile}, but mcpbox's environment "
                            "does not have it: set it where the client starts this server (its \"env\")"), message
    client.finish()

    secret = "tok-5a1f0c3e9b7d2468ace0"
    leaky = "import os, sys\nsys.exit('rejected token ' + os.environ['NEEDED_TOKEN'])\n"
    client = start(clients, [sys.executable, "-c", leaky], profile=profile, env=dict(env, NEEDED_TOKEN=secret))
    message = client.error_for(INITIALIZE)
    assert message.startswith("mcpbox: the server exited (status 1) before answering: rejected token "), message
    status, stderr = client.finish()
    assert secret not in message and secret not in stderr, (message, stderr)
    assert status == 1 and len(mcpbox_lines(stderr)) == 1, stderr


def test_name_lookup_without_network(clients: list[Client]) -> None:
    """The sandbox has no network: a lookup fails inside it, and the hint says which profile key grants it."""
    lookup = ("import socket, sys\ntry:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError as error:\n"
              "    sys.exit(f'cannot reach the API: {error}')\n")
    client = start(clients, [sys.executable, "-c", lookup])
    message = client.error_for(INITIALIZE)
    assert message.startswith("mcpbox: the server exited (status 1) before answering: cannot reach the API: "), message
    assert "Temporary failure in name resolution — the sandbox has no network: a server that must reach it needs " \
           "network = true under [sandbox] in " in message
    status, stderr = client.finish()
    assert status == 1
    assert_told(stderr, message)


STALLS = "import sys, time\nprint('connecting to the index...', file=sys.stderr, flush=True)\ntime.sleep(3600)\n"


def test_a_start_that_never_answers_is_given_up_on(clients: list[Client], short_deadline: Path) -> None:
    """A server that never answers `initialize`: after the deadline the client gets the error (so does any later
    request, at once), mcpbox says what the server last said, and stops it though the client stays connected."""
    client = start(clients, [sys.executable, "-c", STALLS], profile=short_deadline)
    began = time.monotonic()
    message = client.error_for(INITIALIZE)
    waited = time.monotonic() - began
    assert message == f"mcpbox: the server answered nothing within {STALL_SECONDS:g} s: connecting to the index..."
    assert waited >= STALL_SECONDS
    assert client.error_for({"jsonrpc": "2.0", "id": 2, "method": "ping"}) == message
    status = client.process.wait(TIMEOUT)  # stdin still open: mcpbox ended the server itself
    assert status != 0
    stderr = client.stderr()
    assert mcpbox_lines(stderr) == [message], stderr


def test_npx_through_a_shell_stalls_and_is_told_to_use_the_store(clients: list[Client],
                                                                 short_deadline: Path) -> None:
    """The issue's own case: npx inside the sandbox waits on a registry it cannot reach (its lookups fail there)."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed on this host")
    client = start(clients, ["/bin/sh", "-c", "npx -y @modelcontextprotocol/server-memory"], profile=short_deadline)
    message = client.error_for(INITIALIZE)
    assert message.startswith(f"mcpbox: the server answered nothing within {STALL_SECONDS:g} s"), message
    assert ("— npx fetches @modelcontextprotocol/server-memory over the network at every start, and the sandbox "
            "has none: give mcpbox `npx -y @modelcontextprotocol/server-memory` itself as the command") in message
    client.process.wait(TIMEOUT)
    assert len(mcpbox_lines(client.stderr())) == 2


ANSWERS_THEN_DIES = """\
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    if request.get("method") == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "t", "version": "0"}}}),
            flush=True)
    elif "id" in request:
        sys.exit("Error: ENOENT: no such file or directory, open '/etc/mcpbox-test-absent'")
"""


def test_after_initialize_was_answered_the_old_answer_stays(clients: list[Client]) -> None:
    """Past its start, a server that dies leaves the pending request the plain error and stderr no diagnosis."""
    client = start(clients, [sys.executable, "-c", ANSWERS_THEN_DIES])
    client.send(INITIALIZE)
    answer = client.receive()
    assert answer is not None and "result" in answer, answer
    assert client.error_for({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}) == (
        "mcpbox: the server exited before answering")
    status, stderr = client.finish()
    assert status == 1
    assert mcpbox_lines(stderr) == [], stderr
