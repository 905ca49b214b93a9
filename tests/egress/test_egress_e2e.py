"""The egress proxy end to end: real runtimes in the sandbox (Python's urllib and raw sockets, Node's fetch,
PyPI mcp-server-fetch driven by the mcp SDK) reach only the hosts a profile lists, through mcpbox.

Every target is a listener the test opens on the host's loopback (conftest's `listeners`: 127.0.0.2 and
127.0.0.3, which a client's NO_PROXY for 127.0.0.1 does not catch), named by address in the test's
profile; each counts the requests it got, so that "no connection reached a listener the profile does not
name" is checked, not assumed. Nothing here sends a packet beyond 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import MCPBOX, NODE22, SERVERS, Listener, audit_lines, write_profile

PYTHON = "/usr/bin/python3"
FETCH = SERVERS / "py" / "bin" / "mcp-server-fetch"
pytestmark = pytest.mark.skipif(not os.path.exists(PYTHON), reason=f"the forwarder needs {PYTHON}")


def profile_for(tmp_path: Path, allowed: Listener, extra: str = "") -> Path:
    return write_profile(tmp_path / "egress.toml", f'[sandbox]\nnetwork = ["{allowed.host}:{allowed.port}"]\n{extra}')


def run(profile: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MCPBOX, "run", "--profile", str(profile), "--", *argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def server_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("[server] ") for line in done.stderr.splitlines() if line.startswith("[server] ")]


URLLIB = r"""
import json, socket, sys, urllib.error, urllib.request
allowed, unlisted = sys.argv[1], sys.argv[2]
seen = {"allowed": urllib.request.urlopen(allowed + "/one").read().decode()}
for attempt in range(2):
    try:
        urllib.request.urlopen(unlisted + "/two")
        seen["unlisted"] = "reached"
    except urllib.error.HTTPError as error:
        seen["unlisted"] = [error.code, error.read().decode()]
host, port = allowed[len("http://"):].split(":")
try:
    socket.create_connection((host, int(port)), timeout=3)
    seen["direct"] = "connected"
except OSError as error:
    seen["direct"] = error.errno
print(json.dumps(seen), file=sys.stderr)
"""


def test_python_reaches_the_listed_host_only_through_the_proxy(listeners, tmp_path: Path) -> None:
    allowed, unlisted = listeners
    profile = profile_for(tmp_path, allowed)
    done = run(profile, [PYTHON, "-c", URLLIB, allowed.url, unlisted.url])
    assert done.returncode == 0, done.stderr
    seen = json.loads(server_lines(done)[-1])
    assert "page /one from 127.0.0.2" in seen["allowed"]
    code, body = seen["unlisted"]
    assert code == 403 and f"mcpbox refused {unlisted.host}:{unlisted.port}" in body and str(profile) in body
    assert seen["direct"] == 111, "a raw connect bypassing the proxy finds only the sandbox's own loopback"
    refused = [line for line in done.stderr.splitlines() if line.startswith("mcpbox: refused")]
    assert refused == [f"mcpbox: refused the server's connection to {unlisted.host}:{unlisted.port}: "
                       f"{unlisted.host}:{unlisted.port} is not on the profile's network list"], "one line per target"
    assert allowed.requests == ["/one"] and unlisted.requests == []
    lines = audit_lines(Path(os.environ["XDG_STATE_HOME"]) / "mcpbox" / "audit.jsonl")
    egress = [line for line in lines if line.get("event") == "egress"]
    assert [(line["decision"], line["host"], line["port"]) for line in egress] == [
        ("allow", allowed.host, allowed.port), ("deny", unlisted.host, unlisted.port),
        ("deny", unlisted.host, unlisted.port)]
    assert egress[0]["address"] == allowed.host and egress[0]["sent"] > 0 and egress[0]["received"] > 0
    assert "seconds" in egress[0]


SOCKS = r"""
import json, os, socket, struct, sys
proxy = os.environ["ALL_PROXY"].removeprefix("socks5h://")
host, port = proxy.split(":")
def ask(target, target_port):
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"\x05\x01\x00")
    assert sock.recv(2) == b"\x05\x00"
    name = target.encode()
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", target_port))
    reply = sock.recv(10)
    if reply[1] != 0:
        return reply[1]
    sock.sendall(b"GET /socks HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data.decode()
print(json.dumps([ask(sys.argv[1], int(sys.argv[2])), ask(sys.argv[3], int(sys.argv[4]))]), file=sys.stderr)
"""


def test_socks5_clients_get_the_same_rules(listeners, tmp_path: Path) -> None:
    allowed, unlisted = listeners
    done = run(profile_for(tmp_path, allowed), [PYTHON, "-c", SOCKS, allowed.host, str(allowed.port), unlisted.host,
                                                str(unlisted.port)])
    assert done.returncode == 0, done.stderr
    reached, refused = json.loads(server_lines(done)[-1])
    assert "page /socks from 127.0.0.2" in reached
    assert refused == 2, "SOCKS5 reply 2: connection not allowed by ruleset"
    assert unlisted.requests == []


def test_node_fetch_goes_through_the_proxy(listeners, tmp_path: Path) -> None:
    if not NODE22.exists():
        pytest.skip(f"Node 22 is not installed at {NODE22} (scripts/setup --servers)")
    allowed, unlisted = listeners
    script = ("Promise.all([fetch(process.argv[1] + '/node').then(r => r.text()),"
              " fetch(process.argv[2] + '/node').then(r => 'reached ' + r.status, e => 'refused: ' + (e.cause?.cause ?? e.cause))])"
              ".then(both => console.error(JSON.stringify(both)))")
    done = run(profile_for(tmp_path, allowed), [str(NODE22), "-e", script, allowed.url, unlisted.url])
    assert done.returncode == 0, done.stderr
    reached, refused = json.loads(server_lines(done)[-1])
    assert "page /node from 127.0.0.2" in reached
    assert refused.startswith("refused:") and "403" in refused
    assert allowed.requests == ["/node"] and unlisted.requests == []


def test_mcp_server_fetch_fetches_an_allowed_url_and_names_the_rule_for_another(listeners, tmp_path: Path) -> None:
    if not FETCH.exists():
        pytest.skip(f"mcp-server-fetch is not installed at {FETCH} (scripts/setup --servers)")
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    allowed, unlisted = listeners
    profile = profile_for(tmp_path, allowed)

    async def session() -> tuple[str, str]:
        parameters = StdioServerParameters(
            command=MCPBOX[0], args=[*MCPBOX[1:], "run", "--profile", str(profile), "--", str(FETCH),
                                     "--ignore-robots-txt", "--allow-private-ips"], env=dict(os.environ))
        with open(tmp_path / "stderr", "w") as errlog:
            async with stdio_client(parameters, errlog=errlog) as (read, write), ClientSession(read, write) as client:
                await client.initialize()
                good = await client.call_tool("fetch", {"url": allowed.url + "/fetched", "raw": True})
                bad = await client.call_tool("fetch", {"url": unlisted.url + "/fetched", "raw": True})
        text = lambda result: "".join(getattr(part, "text", "") for part in result.content)  # noqa: E731
        return text(good), text(bad)

    good, bad = asyncio.run(asyncio.wait_for(session(), 120))
    assert "page /fetched from 127.0.0.2" in good, (good, (tmp_path / "stderr").read_text())
    assert "403" in bad and f"{unlisted.host}:{unlisted.port}" in bad, bad
    assert allowed.requests == ["/fetched"] and unlisted.requests == []


def test_check_says_what_a_list_grants_and_broad_entries_are_refused(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "p.toml", '[sandbox]\nnetwork = ["api.github.com", "127.0.0.2:8080"]\n')
    check = subprocess.run([*MCPBOX, "check", str(profile)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "network:     only api.github.com, 127.0.0.2:8080 (ports 443 and 80 unless named)" in check.stdout
    for entry, said in (("*", "is not a host name"), ("*.com", "is too broad")):
        bad = write_profile(tmp_path / "bad.toml", f'[sandbox]\nnetwork = ["{entry}"]\n')
        check = subprocess.run([*MCPBOX, "check", str(bad)], capture_output=True, text=True)
        assert check.returncode == 125 and said in check.stderr and check.stderr.count("\n") == 1, check.stderr
