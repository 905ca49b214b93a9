"""Shared test fixtures: where mcpbox, the real servers and the test profiles are."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / ".cache" / "servers"
EVERYTHING = SERVERS / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
FILESYSTEM = SERVERS / "npm" / "node_modules" / ".bin" / "mcp-server-filesystem"
TIME = SERVERS / "py" / "bin" / "mcp-server-time"
MCPBOX = [sys.executable, "-m", "mcpbox"]


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not installed: run scripts/setup --servers")
    return path


@pytest.fixture(autouse=True)
def private_xdg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep each test's mcpbox caches and user profiles out of the real home."""
    base = tmp_path_factory.mktemp("xdg")
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(base / name.lower()))


@pytest.fixture(scope="session")
def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        pytest.fail("bwrap is not installed: scripts/setup installs it")
    return path


def mcpbox_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
