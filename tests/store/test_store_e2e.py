"""End to end with real parts: a Claude Desktop config of `npx -y` and `uvx` servers is wrapped and each entry
then works exactly as Claude Desktop starts it, from mcpbox's store, with no network anywhere it runs.

The packages come from the registries (npm `@modelcontextprotocol/server-memory` and `server-filesystem`,
PyPI `mcp-server-time`) into this test's own store, when `wrap` installs and pins them. The entries are then
started by the `mcp` SDK with their command, args and env, a minimal PATH, and an npm registry and a PyPI
index that do not answer: a start that tried to install anything would fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import EVERYTHING, require, run_client_entry
from mcpbox import cli
from mcpbox.store import install, pins

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")

pytestmark = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("bwrap") is None,
                                reason="needs npm and bwrap")
TIMEOUT = 120.0  # against hangs only
DEAD = "http://127.0.0.1:9/"  # the discard port: nothing answers


def text(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def test_wrapped_npx_and_uvx_entries_run_pinned_from_the_store_as_the_client_starts_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    local = require(EVERYTHING)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder, outside = tmp_path / "folder", tmp_path / "outside"
    for directory, file, content in ((folder, "inside.txt", "inside the folder\n"),
                                     (outside, "secret.txt", "outside the folder\n")):
        # World-writable, as in test_escape: as root the sandbox has a uid of its own, owner of neither, so
        # only the binds decide what it may write.
        directory.mkdir(mode=0o777)
        directory.chmod(0o777)
        (directory / file).write_text(content)
        (directory / file).chmod(0o666)
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {
        "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", str(folder)]},
        "time": {"command": "uvx", "args": ["mcp-server-time"]},
        "local": {"command": str(local), "args": []},
    }}, indent=2) + "\n")

    assert cli.main(["wrap", "claude", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    for requirement in ("@modelcontextprotocol/server-memory", "@modelcontextprotocol/server-filesystem",
                        "mcp-server-time"):
        assert f"mcpbox: installing {requirement} into the store ..." in out, out
        assert f"{requirement}: {requirement}@" in out and "pinned for claude-" in out, out
    assert "cannot" not in out and "not installed now" not in out, out
    assert {pin.name for pin in pins.every()} == {"@modelcontextprotocol/server-memory",
                                                  "@modelcontextprotocol/server-filesystem", "mcp-server-time"}
    for name in ("memory", "filesystem", "time", "local"):
        profile = (Path(os.environ["XDG_CONFIG_HOME"]) / "mcpbox" / "profiles" / f"claude-{name}.toml").read_text()
        assert "network = true" not in profile, f"claude-{name} would get the network"

    entries = json.loads(config.read_text())["mcpServers"]
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"], "npm_config_registry": DEAD, "PIP_INDEX_URL": DEAD,
           **{key: os.environ[key] for key in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
                                               "XDG_DATA_HOME")}}

    def run(name: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], list[Any]]:
        errlog = tmp_path / f"{name}.stderr"
        tools, results = asyncio.run(asyncio.wait_for(run_client_entry(entries[name], env, calls, errlog), TIMEOUT))
        assert "installing" not in errlog.read_text(), errlog.read_text()
        return tools, results

    tools, (graph,) = run("memory", [("read_graph", {})])
    assert "create_entities" in tools and not graph.is_error and '"entities"' in text(graph), graph

    tools, (read, wrote, read_outside, wrote_outside) = run("filesystem", [
        ("read_text_file", {"path": str(folder / "inside.txt")}),
        ("write_file", {"path": str(folder / "new.txt"), "content": "written through mcpbox"}),
        ("read_text_file", {"path": str(outside / "secret.txt")}),
        ("write_file", {"path": str(outside / "new.txt"), "content": "must not land"}),
    ])
    assert not read.is_error and "inside the folder" in text(read), read
    assert not wrote.is_error and (folder / "new.txt").read_text() == "written through mcpbox", wrote
    assert read_outside.is_error and "outside the folder" not in text(read_outside), read_outside
    assert wrote_outside.is_error and not (outside / "new.txt").exists(), wrote_outside

    tools, (converted,) = run("time", [("convert_time", {"source_timezone": "Europe/Paris", "time": "12:00",
                                                          "target_timezone": "Asia/Tokyo"})])
    assert sorted(tools) == ["convert_time", "get_current_time"] and "20:00" in text(converted), converted

    tools, (echoed,) = run("local", [("echo", {"message": "still local"})])
    assert "still local" in text(echoed), echoed

    assert cli.main(["servers"]) == 0
    listed = capsys.readouterr().out
    for pin in pins.every():
        assert f"{pin.package} -> {pin.version}" in listed, listed
        assert install.read(install.entry_path(pin.ecosystem, pin.name, pin.version)) is not None
