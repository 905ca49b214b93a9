"""`mcpbox learn` end to end: a session of the real server-filesystem, server-everything and (through the egress
proxy, to listeners the test opens on loopback) mcp-server-fetch, driven by the `mcp` SDK, yields a profile under
which the same session passes and a call or host outside it is refused."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import EVERYTHING, FILESYSTEM, MCPBOX, SERVERS, require, run_client_entry, write_profile
from mcpbox import learn

pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")
TIMEOUT = 90.0  # against hangs only


def text(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def session(mode: list[str], server: list[str], calls: list[tuple[str, dict[str, Any]]],
            errlog: Path) -> tuple[list[str], list[Any]]:
    entry = {"command": sys.executable, "args": ["-m", "mcpbox", *mode, "--", *server]}
    return asyncio.run(asyncio.wait_for(run_client_entry(entry, dict(os.environ), calls, errlog), TIMEOUT))


def refusal(mode: list[str], server: list[str], call: tuple[str, dict[str, Any]], errlog: Path) -> str:
    """What a refused call gets: mcpbox's JSON-RPC error (which the SDK raises, inside its task group), or an
    error result (an argument rule's refusal)."""
    try:
        _, (result,) = session(mode, server, [call], errlog)
    except BaseException as raised:  # noqa: BLE001 (the SDK's ExceptionGroup)
        error: BaseException = raised
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        return str(error)
    assert result.is_error, text(result)
    return text(result)


def test_a_filesystem_session_learns_its_tools_and_folder(tmp_path: Path) -> None:
    server = require(FILESYSTEM)
    folder = tmp_path / "docs"  # readable by the sandbox's own user (as root): not the private tmp_path itself
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("beta\n")
    base = write_profile(tmp_path / "base.toml", "[tools]\nallow = ['*']\n")
    learned = tmp_path / "learned.toml"
    calls = [("list_directory", {"path": str(folder)}), ("read_text_file", {"path": str(folder / "sub" / "b.txt")})]
    _, results = session(["learn", "--profile", str(base), "--out", str(learned)], [str(server), str(folder)], calls,
                         tmp_path / "learn.stderr")
    assert "a.txt" in text(results[0]) and text(results[1]) == "beta\n"
    document = tomllib.loads(learned.read_text())
    assert document["tools"]["allow"] == ["list_directory", "read_text_file"]
    assert document["tools"]["arguments"] == {"list_directory": {"path": f"{folder}/**"},
                                              "read_text_file": {"path": f"{folder}/sub/**"}}
    assert "# called: list_directory (1x), read_text_file (1x)" in learned.read_text()
    assert learned.stat().st_mode & 0o777 == 0o600
    # The same session passes under the learned profile; a tool it did not use and a path outside are refused.
    run = ["run", "--profile", str(learned)]
    tools, results = session(run, [str(server), str(folder)], calls, tmp_path / "run.stderr")
    assert sorted(tools) == ["list_directory", "read_text_file"]
    assert "a.txt" in text(results[0]) and text(results[1]) == "beta\n"
    write = ("write_file", {"path": str(folder / "new.txt"), "content": "x"})
    assert "Unknown tool: write_file" in refusal(run, [str(server), str(folder)], write, tmp_path / "w.stderr")
    assert not (folder / "new.txt").exists()
    beside = ("read_text_file", {"path": str(folder / "a.txt")})  # in the folder, but not where the session read
    assert f"{folder}/sub/**" in refusal(run, [str(server), str(folder)], beside, tmp_path / "r.stderr")


def test_an_everything_session_learns_only_the_tool_it_called(tmp_path: Path) -> None:
    server = require(EVERYTHING)
    learned = tmp_path / "learned.toml"
    calls = [("echo", {"message": "learned"})]
    listed, results = session(["learn", "--out", str(learned)], [str(server)], calls, tmp_path / "learn.stderr")
    assert text(results[0]).endswith("learned") and len(listed) > 3
    document = tomllib.loads(learned.read_text())
    assert document["tools"]["allow"] == ["echo"]
    assert f"# listed: {', '.join(sorted(listed))}" in learned.read_text()
    assert document["client"] == {"sampling": False, "elicitation": False, "roots": False}
    assert 128 <= document["limits"]["memory_mb"] <= 1024 and document["sandbox"]["network"] is False
    run = ["run", "--profile", str(learned)]
    tools, results = session(run, [str(server)], calls, tmp_path / "run.stderr")
    assert tools == ["echo"] and text(results[0]).endswith("learned")
    assert "Unknown tool: get-sum" in refusal(run, [str(server)], ("get-sum", {"a": 1, "b": 2}), tmp_path / "s.stderr")
    again = subprocess.run([sys.executable, "-m", "mcpbox", "learn", "--out", str(learned), "--", str(server)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr == f"mcpbox: {learned} exists: mcpbox learn does not overwrite a " \
                                                      "file; give another --out\n"
    assert tomllib.loads(learned.read_text()) == document, "an existing file is never replaced"


def test_a_fetch_session_learns_the_host_it_reached_and_names_the_one_refused(listeners, tmp_path: Path) -> None:
    server = require(SERVERS / "py" / "bin" / "mcp-server-fetch")
    allowed, unlisted = listeners
    entry = f"{allowed.host}:{allowed.port}"
    base = write_profile(tmp_path / "base.toml", f'[sandbox]\nnetwork = ["{entry}", "api.example.com"]\n')
    learned = tmp_path / "learned.toml"
    fetch = [str(server), "--ignore-robots-txt", "--allow-private-ips"]
    calls = [("fetch", {"url": f"{allowed.url}/learned", "raw": True}),
             ("fetch", {"url": f"{unlisted.url}/learned", "raw": True})]
    _, (good, bad) = session(["learn", "--profile", str(base), "--out", str(learned)], fetch, calls,
                             tmp_path / "learn.stderr")
    assert "page /learned from 127.0.0.2" in text(good) and "403" in text(bad), (text(good), text(bad))
    written = learned.read_text()
    document = tomllib.loads(written)
    assert document["sandbox"]["network"] == [entry], "the unused api.example.com is left out"
    assert re.search(rf'    # 1 connection\(s\), [1-9]\d* bytes sent, [1-9]\d* received\n    "{entry}",', written)
    target = f"{unlisted.host}:{unlisted.port}"
    assert f"# tried, refused by the base profile: {target} ({target} is not on the profile's network list), " \
           "1 time(s)" in written
    check = subprocess.run([*MCPBOX, "check", str(learned)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and f"network:     only {entry} " in check.stdout, check.stderr
    # Under the learned profile the same session reaches the host it used and is refused the other.
    _, (good, bad) = session(["run", "--profile", str(learned)], fetch, calls, tmp_path / "run.stderr")
    assert "page /learned from 127.0.0.2" in text(good) and "403" in text(bad) and target in text(bad)
    assert allowed.requests == ["/learned", "/learned"] and unlisted.requests == []


def network(base: bool | tuple[str, ...], records: list[dict[str, object]]) -> tuple[Any, str]:
    """The learned `network` value from the proxy's records, and its lines as written."""
    lines = "\n".join(learn.network_lines(base, records))
    return tomllib.loads(lines)["network"], lines


def allow(host: str, port: int, rule: str) -> dict[str, object]:
    """The proxy's record of a connection `rule` allowed, 10 bytes sent and 20 received."""
    return {"kind": "http-connect", "host": host, "port": port, "rule": rule, "decision": "allow", "sent": 10,
            "received": 20}


def test_a_learned_list_is_never_wider_than_the_entry_that_allowed_each_host() -> None:
    base = ("*.githubusercontent.com", "example.com:8443", "[::1]:8080", "api.github.com", "unused.example.org")
    records = [allow("Raw.GitHubUserContent.com.", 443, "*.githubusercontent.com"),
               allow("raw.githubusercontent.com", 443, "*.githubusercontent.com"),
               allow("example.com", 8443, "example.com:8443"), allow("::1", 8080, "[::1]:8080"),
               {"kind": "http-connect", "host": "api.github.com", "port": 443, "rule": "api.github.com",
                "decision": "error", "reason": "cannot connect to 140.82.112.5:443: Connection refused"},
               {"kind": "http-connect", "host": "evil.example", "port": 443, "decision": "deny",
                "rule": "evil.example:443 is not on the profile's network list"},
               {"decision": "error", "reason": "the request ended before its headers did"}]
    listed, lines = network(base, records)
    assert listed == ["[::1]:8080", "api.github.com", "example.com:8443", "raw.githubusercontent.com"]
    assert "    # 2 connection(s), 20 bytes sent, 40 received; allowed by the base's *.githubusercontent.com\n" \
           '    "raw.githubusercontent.com",' in lines
    assert "# 1 connection(s), 0 bytes sent, 0 received; 1 failed: cannot connect to 140.82.112.5:443: " \
           "Connection refused" in lines
    assert "# tried, refused by the base profile: evil.example:443 (evil.example:443 is not on the profile's " \
           "network list), 1 time(s)" in lines


def test_no_connection_allowed_learns_no_network_and_true_stays_true() -> None:
    refused = {"host": "a.example", "port": 443, "decision": "deny", "rule": "a.example:443 is not on the list"}
    for records, said in (([refused], "# no connection was allowed"), ([], "# the server made no connection")):
        listed, lines = network(("b.example",), records)
        assert listed is False and f"{said}\nnetwork = false" in lines
    listed, lines = network(True, [])
    assert listed is True and "learn again within a base whose\n# network lists the hosts you expect" in lines
    assert network(False, []) == (False, "# as the base profile: no network\nnetwork = false")
