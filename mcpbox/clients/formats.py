"""The clients mcpbox can wrap: where each keeps its servers, in which format, and how an entry reads.

One table, so that adding a client is one row. The facts come from the clients' own docs and code
(shared/design/CLIENTS.md): every client but Codex keeps JSON (some with comments), every one names its
stdio servers in an object keyed by name, and an entry is `{command, args, env, ...}` except Zed's oldest
shape, `{command: {path, args, env}}`.
"""

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

# Keys that make an entry a remote server (the client connects to it; there is no process to sandbox).
REMOTE_KEYS = ("url", "serverUrl", "httpUrl")


class Client(NamedTuple):
    name: str  # what `mcpbox wrap NAME` takes
    label: str
    syntax: str  # "json" (strict), "jsonc" (comments, trailing commas) or "toml"
    paths: Callable[[], list[str]]  # candidate default paths, best first
    scopes: Callable[[Any], Iterator[tuple[tuple[str, ...], str]]]  # document -> (key path of a server map, scope)


class Stdio(NamedTuple):
    """What an entry starts: the fields mcpbox reads, whatever shape the entry has."""

    command: str
    args: tuple[str, ...]
    env: dict[str, str]  # values stay in the client's config; only the names go into a profile
    env_names: tuple[str, ...]  # names the client passes from its own environment (Codex `env_vars`)


def _home(*parts: str) -> str:
    return os.path.join(os.path.expanduser("~"), *parts)


def _config_home(*parts: str) -> str:
    config = os.environ.get("XDG_CONFIG_HOME", "")
    return os.path.join(config if os.path.isabs(config) else _home(".config"), *parts)


def _app_support(*parts: str) -> str:
    """Where Electron apps keep settings: ~/Library/Application Support on macOS, XDG_CONFIG_HOME elsewhere."""
    return _home("Library", "Application Support", *parts) if sys.platform == "darwin" else _config_home(*parts)


def _top(key: str) -> Callable[[Any], Iterator[tuple[tuple[str, ...], str]]]:
    def scopes(document: Any) -> Iterator[tuple[tuple[str, ...], str]]:
        yield (key,), ""
    return scopes


def _claude_code_scopes(document: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """User scope (top-level `mcpServers`) and each project's local scope (`projects.<dir>.mcpServers`)."""
    yield ("mcpServers",), ""
    projects = document.get("projects") if isinstance(document, dict) else None
    if isinstance(projects, dict):
        for directory, project in projects.items():
            if isinstance(project, dict):
                yield ("projects", directory, "mcpServers"), directory


def _claude_code_paths() -> list[str]:
    directory = os.environ.get("CLAUDE_CONFIG_DIR", "")
    return [os.path.join(directory, ".claude.json")] if os.path.isabs(directory) else [_home(".claude.json")]


def _codex_paths() -> list[str]:
    directory = os.environ.get("CODEX_HOME", "")
    return [os.path.join(directory if os.path.isabs(directory) else _home(".codex"), "config.toml")]


CLIENTS: dict[str, Client] = {client.name: client for client in (
    Client("claude", "Claude Desktop", "json",
           lambda: [_app_support("Claude", "claude_desktop_config.json"),
                    _app_support("claude", "claude_desktop_config.json")], _top("mcpServers")),
    Client("claude-code", "Claude Code", "json", _claude_code_paths, _claude_code_scopes),
    Client("zed", "Zed", "jsonc",
           lambda: [_home(".config", "zed", "settings.json") if sys.platform == "darwin"
                    else _config_home("zed", "settings.json")], _top("context_servers")),
    Client("cursor", "Cursor", "json", lambda: [_home(".cursor", "mcp.json")], _top("mcpServers")),
    Client("vscode", "VS Code", "jsonc", lambda: [_app_support("Code", "User", "mcp.json")], _top("servers")),
    Client("windsurf", "Windsurf", "json", lambda: [_home(".codeium", "windsurf", "mcp_config.json")],
           _top("mcpServers")),
    Client("codex", "Codex CLI", "toml", _codex_paths, _top("mcp_servers")),
    Client("gemini", "Gemini CLI", "jsonc", lambda: [_home(".gemini", "settings.json")], _top("mcpServers")),
)}


def default_path(client: Client) -> str:
    """The first candidate that exists, else the first (where the client would create it)."""
    candidates = client.paths()
    return next((path for path in candidates if os.path.exists(path)), candidates[0])


def stdio(entry: Any) -> Stdio | str:
    """What a stdio entry starts, or why the entry is no stdio server mcpbox can wrap."""
    if not isinstance(entry, dict):
        return "not an object"
    if any(key in entry for key in REMOTE_KEYS) or entry.get("type", "stdio") != "stdio":
        return f"remote ({entry.get('type') or 'url'}), left as is"
    command, holder = entry.get("command"), entry
    if isinstance(command, dict):  # Zed's legacy shape
        command, holder = command.get("path"), command
    if command is None:
        return "no command (run by the client itself), left as is"
    args, env = holder.get("args", []), holder.get("env") or {}
    env_names = entry.get("env_vars", [])
    if not isinstance(command, str) or not command or not _strings(args) or not isinstance(env, dict) \
            or not _strings(env_names):
        return "not a valid stdio entry, left as is"
    return Stdio(command, tuple(args), {str(k): str(v) for k, v in env.items()}, tuple(env_names))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def with_command(entry: dict[str, Any], command: str, args: list[str]) -> dict[str, Any]:
    """The entry with its command and args replaced, every other key (and the key order) kept."""
    if isinstance(entry.get("command"), dict):  # Zed's legacy shape: {command: {path, args, env}}
        return {**entry, "command": _replaced(entry["command"], "path", command, args)}
    return _replaced(entry, "command", command, args)


def _replaced(holder: dict[str, Any], key: str, command: str, args: list[str]) -> dict[str, Any]:
    replaced: dict[str, Any] = {}
    for name, value in holder.items():
        replaced[name] = command if name == key else args if name == "args" else value
        if name == key and "args" not in holder:
            replaced["args"] = args
    return replaced
