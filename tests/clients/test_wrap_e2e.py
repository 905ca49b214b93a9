"""A wrapped Claude Desktop entry, started exactly as Claude Desktop starts it, is a working sandboxed server.

The config names real installed servers (PyPI mcp-server-time, npm server-everything) the way a user
writes them. After `mcpbox wrap claude`, each entry's command, args and env are handed to the `mcp` SDK's
stdio client with a minimal PATH (/usr/bin:/bin, as Claude Desktop gives): the server must answer
`tools/list` and a tool call, through mcpbox, in the profile `wrap` wrote for it.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import EVERYTHING, TIME, require, run_client_entry
from mcpbox import cli

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")

TIMEOUT = 60.0  # against hangs only


@pytest.mark.parametrize(("name", "server", "tool", "arguments", "expected"), [
    ("time", TIME, "convert_time",
     {"source_timezone": "Europe/Paris", "time": "12:00", "target_timezone": "Asia/Tokyo"}, "20:00"),
    ("everything", EVERYTHING, "echo", {"message": "wrapped"}, "wrapped"),
])
def test_a_wrapped_entry_runs_as_the_client_starts_it(name: str, server: Path, tool: str, arguments: dict[str, Any],
                                                      expected: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    require(server)
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {name: {"command": str(server), "args": [],
                                                        "env": {"LANG": "C.UTF-8"}}}}, indent=2) + "\n")
    assert cli.main(["wrap", "claude", "--config", str(config)]) == 0
    assert f"claude-{name} (new)" in capsys.readouterr().out
    entry = json.loads(config.read_text())["mcpServers"][name]
    assert os.path.isabs(entry["command"]) and entry["args"][-1] == str(server)
    # What Claude Desktop hands a server: a minimal PATH, HOME, and the entry's env (here the XDG dirs
    # too, so that mcpbox finds the profile wrap wrote in this test's private config dir).
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"],
           **{key: os.environ[key] for key in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}}
    tools, (result,) = asyncio.run(asyncio.wait_for(
        run_client_entry(entry, env, [(tool, arguments)], tmp_path / "stderr"), TIMEOUT))
    assert tool in tools, (tools, (tmp_path / "stderr").read_text())
    assert not result.is_error and expected in result.content[0].text, result
    if name == "time":
        assert sorted(tools) == ["convert_time", "get_current_time"], "the shipped time profile's tool list holds"
