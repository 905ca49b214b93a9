"""A wrapped Claude Desktop entry, started exactly as Claude Desktop starts it, is a working sandboxed server,
whoever ran mcpbox: root, or an unprivileged user (tests/unprivileged.py runs the same steps both ways).

The config names real installed servers (PyPI mcp-server-time, npm server-everything and server-filesystem)
the way a user writes them. After `mcpbox wrap claude`, each entry's command, args and env are handed to the
`mcp` SDK's stdio client with a minimal PATH (/usr/bin:/bin) and HOME, as Claude Desktop gives: the server must
answer `tools/list` and a tool call, through mcpbox, in the profile `wrap` wrote for it. The filesystem server
writes into its folder, as the user who ran mcpbox, and nowhere else. `mcpbox unwrap` then puts the config back
byte for byte.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from conftest import EVERYTHING, FILESYSTEM, TIME, require
from unprivileged import MINIMAL_PATH, Workspace, way  # noqa: F401 - way is a fixture

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")

TIMEOUT = 60.0  # against hangs only
# entry -> its server, its arguments, and its calls: (tool, arguments, a text of the result, or None: an error).
# {folder} (the filesystem server's) and {outside} are filled in with the workspace's.
CASES: dict[str, tuple[Any, list[str], list[tuple[str, dict[str, Any], str | None]]]] = {
    "time": (TIME, [], [("convert_time", {"source_timezone": "Europe/Paris", "time": "12:00",
                                          "target_timezone": "Asia/Tokyo"}, "20:00")]),
    "everything": (EVERYTHING, [], [("echo", {"message": "wrapped"}, "wrapped")]),
    "filesystem": (FILESYSTEM, ["{folder}"], [
        ("write_file", {"path": "{folder}/new.txt", "content": "written through mcpbox"}, "Successfully wrote"),
        ("write_file", {"path": "{outside}/new.txt", "content": "must not land"}, None),
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_wrapped_entry_runs_as_the_client_starts_it(name: str, way: Workspace) -> None:
    server, extra, calls = CASES[name]
    require(server)
    folder, outside, config = way.path / "folder", way.path / "outside", way.path / "claude_desktop_config.json"

    def fill(value: Any) -> Any:
        return json.loads(json.dumps(value).replace("{folder}", str(folder)).replace("{outside}", str(outside)))

    original = json.dumps({"mcpServers": {name: {"command": str(server), "args": fill(extra),
                                                 "env": {"LANG": "C.UTF-8"}}}}, indent=2) + "\n"
    # All made and run by the user this way is about: its config, its folders, its mcpbox.
    _, _, _, wrapped, wrapped_config, ran, unwrapped = way.drive([
        {"write": str(folder / "inside.txt"), "text": "inside the folder\n"},
        {"write": str(outside / "secret.txt"), "text": "outside the folder\n"},
        {"write": str(config), "text": original},
        {"mcpbox": ["wrap", "claude", "--config", str(config)]},
        {"read": str(config)},
        # What Claude Desktop hands a server: a minimal PATH, HOME, and the entry's env. mcpbox finds the profile
        # wrap wrote where the XDG dirs lie by default below that HOME.
        {"entry": name, "config": str(config), "calls": [[tool, fill(arguments)] for tool, arguments, _ in calls],
         "env": {"PATH": MINIMAL_PATH, "HOME": str(way.home)}, "timeout": TIMEOUT},
        {"mcpbox": ["unwrap", "claude", "--config", str(config)]},
    ], timeout=4 * TIMEOUT)

    assert wrapped["status"] == 0 and f"claude-{name} (new)" in wrapped["out"], wrapped
    entry = json.loads(wrapped_config["text"])["mcpServers"][name]
    assert os.path.isabs(entry["command"]) and entry["args"][-1 - len(extra):] == [str(server), *fill(extra)]
    tools, results = ran["tools"], ran["results"]
    for (tool, _, expected), result in zip(calls, results, strict=True):
        assert tool in tools, (tools, ran["stderr"])
        if expected is None:
            assert result["is_error"], result
        else:
            assert not result["is_error"] and expected in result["text"], (result, ran["stderr"])
    if name == "time":
        assert sorted(tools) == ["convert_time", "get_current_time"], "the shipped time profile's tool list holds"
    if name == "filesystem":
        written = folder / "new.txt"
        assert written.read_text() == "written through mcpbox"
        assert (written.stat().st_uid, folder.stat().st_uid) == (way.who.uid, way.who.uid), \
            f"the server's file belongs to the user who ran mcpbox ({way.who.name})"
        assert not (outside / "new.txt").exists() and (outside / "secret.txt").read_text() == "outside the folder\n"
    assert unwrapped["status"] == 0, unwrapped
    assert config.read_bytes() == original.encode(), "unwrap puts the config back byte for byte"
