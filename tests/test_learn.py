"""`mcpbox learn` end to end: a session of the real server-filesystem and server-everything, driven by the `mcp`
SDK, yields a profile under which the same session passes and a call outside it is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import EVERYTHING, FILESYSTEM, require, run_client_entry, write_profile

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
