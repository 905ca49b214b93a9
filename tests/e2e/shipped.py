"""Shared by the shipped-profile end-to-end tests: a client config whose one entry runs a real server under a
shipped profile, as Claude Desktop starts it, in a workspace of tests/unprivileged.py (root or the test user)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from conftest import ROOT
from unprivileged import MINIMAL_PATH, Workspace


def shipped(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / "profiles" / f"{name}.toml").read_text())


class Session(NamedTuple):
    """A workspace's client config with one entry that runs `server` under the shipped profile `name`."""

    way: Workspace
    name: str
    config: Path
    text: str
    timeout: float

    @classmethod
    def of(cls, way: Workspace, name: str, server: Path, *args: str, env: dict[str, str] | None = None,
           timeout: float = 60.0) -> Session:
        entry: dict[str, Any] = {"command": sys.executable, "args": [
            "-m", "mcpbox", "run", "--profile", str(ROOT / "profiles" / f"{name}.toml"), "--", str(server), *args]}
        if env:
            entry["env"] = env
        config = way.home / ".config" / "Claude" / "claude_desktop_config.json"
        return cls(way, name, config, json.dumps({"mcpServers": {name: entry}}, indent=2) + "\n", timeout)

    def write(self) -> dict[str, Any]:
        """The step that writes the config (and so makes the home), as the way's user."""
        return {"write": str(self.config), "text": self.text}

    def run(self, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """One client session: a new mcpbox and server, `calls` made in it."""
        return {"entry": self.name, "config": str(self.config), "calls": [list(call) for call in calls],
                "env": {"PATH": MINIMAL_PATH, "HOME": str(self.way.home)}, "timeout": self.timeout}


def ok(ran: dict[str, Any], index: int, *expected: str) -> str:
    """The text of call `index`'s result, which must be no error and hold each of `expected`."""
    result = ran["results"][index]
    assert not result["is_error"], (result, ran["stderr"])
    for text in expected:
        assert text in result["text"], (text, result, ran["stderr"])
    return str(result["text"])
