"""End to end with real parts: a Claude Desktop config of `npx -y` and `uvx` servers is wrapped and each entry
then works exactly as Claude Desktop starts it, from mcpbox's store, with no network anywhere it runs; whoever
ran mcpbox: root, or an unprivileged user (tests/unprivileged.py runs the same steps both ways).

The packages come from the registries (npm `@modelcontextprotocol/server-memory` and `server-filesystem`,
PyPI `mcp-server-time`) into this test's own store, when `wrap` installs and pins them. The entries are then
started by the `mcp` SDK with their command, args and env, a minimal PATH, and an npm registry and a PyPI
index that do not answer: a start that tried to install anything would fail. The filesystem server writes into
its folder, as the user who ran mcpbox, and nowhere else; `mcpbox unwrap` puts the config back byte for byte.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from conftest import EVERYTHING, require
from unprivileged import MINIMAL_PATH, Workspace, way  # noqa: F401 - way is a fixture

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")

pytestmark = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("bwrap") is None,
                                reason="needs npm and bwrap")
TIMEOUT = 120.0  # against hangs only
DEAD = "http://127.0.0.1:9/"  # the discard port: nothing answers


def test_wrapped_npx_and_uvx_entries_run_pinned_from_the_store_as_the_client_starts_them(way: Workspace) -> None:
    local = require(EVERYTHING)
    folder, outside, config = way.path / "folder", way.path / "outside", way.path / "claude_desktop_config.json"
    original = json.dumps({"mcpServers": {
        "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", str(folder)]},
        "time": {"command": "uvx", "args": ["mcp-server-time"]},
        "local": {"command": str(local), "args": []},
    }}, indent=2) + "\n"
    # What Claude Desktop hands a server: a minimal PATH and HOME (mcpbox's XDG dirs lie by default below it),
    # here with registries that do not answer.
    env = {"PATH": MINIMAL_PATH, "HOME": str(way.home), "npm_config_registry": DEAD, "PIP_INDEX_URL": DEAD}

    def entry(name: str, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        return {"entry": name, "config": str(config), "calls": calls, "env": env, "timeout": TIMEOUT}

    # All made and run by the user this way is about: its config, its folders (its own, not opened to others:
    # the sandbox writes there as that user), its store, its mcpbox.
    _, _, _, wrapped, every_pin, memory, filesystem, time, local_run, servers, unwrapped = way.drive([
        {"write": str(folder / "inside.txt"), "text": "inside the folder\n"},
        {"write": str(outside / "secret.txt"), "text": "outside the folder\n"},
        {"write": str(config), "text": original},
        {"mcpbox": ["wrap", "claude", "--config", str(config)], "timeout": 5 * TIMEOUT},
        {"pins": True},
        entry("memory", [("read_graph", {})]),
        entry("filesystem", [
            ("read_text_file", {"path": str(folder / "inside.txt")}),
            ("write_file", {"path": str(folder / "new.txt"), "content": "written through mcpbox"}),
            ("read_text_file", {"path": str(outside / "secret.txt")}),
            ("write_file", {"path": str(outside / "new.txt"), "content": "must not land"}),
        ]),
        entry("time", [("convert_time", {"source_timezone": "Europe/Paris", "time": "12:00",
                                         "target_timezone": "Asia/Tokyo"})]),
        entry("local", [("echo", {"message": "still local"})]),
        {"mcpbox": ["servers"]},
        {"mcpbox": ["unwrap", "claude", "--config", str(config)]},
    ], timeout=10 * TIMEOUT)

    out = wrapped["out"]
    assert wrapped["status"] == 0, wrapped
    for requirement in ("@modelcontextprotocol/server-memory", "@modelcontextprotocol/server-filesystem",
                        "mcp-server-time"):
        assert f"mcpbox: installing {requirement} into the store ..." in out, out
        assert f"{requirement}: {requirement}@" in out and "pinned for claude-" in out, out
    assert "cannot" not in out and "not installed now" not in out, out
    assert {pin["name"] for pin in every_pin} == {"@modelcontextprotocol/server-memory",
                                                  "@modelcontextprotocol/server-filesystem", "mcp-server-time"}
    for name in ("memory", "filesystem", "time", "local"):
        profile = (way.home / ".config" / "mcpbox" / "profiles" / f"claude-{name}.toml").read_text()
        assert "network = true" not in profile, f"claude-{name} would get the network"
    for ran in (memory, filesystem, time, local_run):
        assert "installing" not in ran["stderr"], ran["stderr"]

    tools, (graph,) = memory["tools"], memory["results"]
    assert "create_entities" in tools and not graph["is_error"] and '"entities"' in graph["text"], graph

    read, wrote, read_outside, wrote_outside = filesystem["results"]
    assert not read["is_error"] and "inside the folder" in read["text"], read
    assert not wrote["is_error"] and (folder / "new.txt").read_text() == "written through mcpbox", wrote
    assert ((folder / "new.txt").stat().st_uid, folder.stat().st_uid) == (way.who.uid, way.who.uid), \
        f"the server's file belongs to the user who ran mcpbox ({way.who.name})"
    assert read_outside["is_error"] and "outside the folder" not in read_outside["text"], read_outside
    assert wrote_outside["is_error"] and not (outside / "new.txt").exists(), wrote_outside

    tools, (converted,) = time["tools"], time["results"]
    assert sorted(tools) == ["convert_time", "get_current_time"] and "20:00" in converted["text"], converted

    (echoed,) = local_run["results"]
    assert "still local" in echoed["text"], echoed

    assert servers["status"] == 0, servers
    for pin in every_pin:
        assert f"{pin['package']} -> {pin['version']}" in servers["out"], servers["out"]
        assert pin["installed"], pin
    assert unwrapped["status"] == 0, unwrapped
    assert config.read_bytes() == original.encode(), "unwrap puts the config back byte for byte"
