"""`mcpbox wrap` / `unwrap` on configs written as real users keep them, for every client mcpbox knows.

Each file has comments where the client allows them, keys mcpbox does not know, remote entries,
disabled entries, and (Zed) all three entry shapes, (Claude Code) user and local scopes. Each goes:
wrap (every stdio entry runs mcpbox by absolute path, the file still parses as the client reads it,
nothing outside the wrapped entries changed) -> wrap again (same bytes) -> unwrap (the original bytes).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from mcpbox import cli, paths
from mcpbox.clients import jsonc, wrap
from mcpbox.clients.formats import CLIENTS, stdio


class Case(NamedTuple):
    client: str
    filename: str
    text: str  # {BIN} {PROJ} {NOTES} {REPO} {DB}: filled in per test
    wrapped: tuple[str, ...]  # key paths (joined with '/') of entries that must be wrapped
    profiles: dict[str, str]  # profile written -> the shipped profile it must come from (by description)


CLAUDE = """{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": [
        "-y",
        "@modelcontextprotocol/server-filesystem",
        "{PROJ}",
        "{NOTES}"
      ]
    },
    "time": {"command": "uvx", "args": ["mcp-server-time", "--local-timezone=Europe/Berlin"]},
    "github": {
      "command": "docker-not-installed",
      "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
      "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_notarealtoken"}
    },
    "linear": {"type": "http", "url": "https://mcp.linear.app/mcp"}
  },
  "globalShortcut": "Alt+Space",
  "preferences": {"quickEntryDictationShortcut": "capslock", "menuBarEnabled": false}
}
"""

ZED = """// Zed settings
//
// For information on how to configure Zed, see the Zed
// documentation: https://zed.dev/docs/configuring-zed
{
  "theme": "One Dark", // easier on the eyes
  "buffer_font_size": 15,
  /* MCP servers: one of each shape Zed has used */
  "context_servers": {
    // the legacy shape
    "git": {
      "command": {
        "path": "uvx",
        "args": ["mcp-server-git", "--repository", "{REPO}"],
        "env": {}
      },
      "settings": {}
    },
    "sqlite": {
      "source": "custom",
      "command": "uvx",
      "args": ["mcp-server-sqlite", "--db-path", "{DB}"],
      "env": {"LOG_LEVEL": "info",}, // trailing comma, as Zed allows
    },
    "everything": {
      "enabled": true,
      "command": "{BIN}/mcp-server-everything",
      "args": [],
      "env": {},
      "timeout": 60000
    },
    "postgres": {"source": "extension", "settings": {"database_url": "postgresql://localhost/app"}},
    "remote": {"url": "https://mcp.example.com/sse", "headers": {"Authorization": "Bearer x"}},
    "off": {"enabled": false, "command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"]},
  },
  "vim_mode": false,
}
"""

CLAUDE_CODE = """{
  "numStartups": 42,
  "installMethod": "npm",
  "autoUpdates": true,
  "mcpServers": {
    "time": {
      "type": "stdio",
      "command": "uvx",
      "args": [
        "mcp-server-time"
      ],
      "env": {}
    }
  },
  "projects": {
    "{PROJ}": {
      "allowedTools": [],
      "mcpServers": {
        "fs": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "{PROJ}"], "env": {}},
        "sentry": {"type": "http", "url": "https://mcp.sentry.dev/mcp"}
      },
      "hasTrustDialogAccepted": true
    },
    "{NOTES}": {"allowedTools": [], "mcpServers": {"fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "{NOTES}"]}}},
    "/home/nobody/gone": {"allowedTools": []}
  },
  "userID": "0f3c"
}
"""

CLAUDE_CODE_PROJECT = """{
  "mcpServers": {
    "db": {
      "command": "{BIN}/mcp-server-postgres",
      "args": ["postgresql://localhost/app"],
      "env": {"PGPASSWORD": "${PGPASSWORD:-secret}"}
    }
  }
}
"""

CURSOR = """{
  "mcpServers": {
    "everything": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-everything"],
      "env": {"API_KEY": "value"}
    },
    "remote": {"url": "http://localhost:3000/mcp", "headers": {"API_KEY": "value"}}
  }
}
"""

VSCODE = """{
  // Inputs are prompted on first server start, then stored securely by VS Code.
  "inputs": [
    {
      "type": "promptString",
      "id": "perplexity-key",
      "description": "Perplexity API Key",
      "password": true
    }
  ],
  "servers": {
    "Perplexity": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "server-perplexity-ask"],
      "env": {
        "PERPLEXITY_API_KEY": "${input:perplexity-key}"
      }
    },
    "fetch": {"type": "stdio", "command": "uvx", "args": ["mcp-server-fetch"],},
    "github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/"}
  }
}
"""

WINDSURF = """{
  "mcpServers": {
    "github": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "<YOUR_PERSONAL_ACCESS_TOKEN>"},
      "disabled": true
    },
    "figma": {"serverUrl": "https://figma.example.com/mcp"},
    "time": {"command": "{BIN}/mcp-server-time", "args": [], "disabledTools": ["convert_time"]}
  }
}
"""

CODEX = """# ~/.codex/config.toml
model = "gpt-5-codex"
approval_policy = "on-request"   # ask before running commands

[mcp_servers.time]
command = "uvx"   # from PyPI
args = ["mcp-server-time", "--local-timezone", "Europe/Paris"]  # my zone
startup_timeout_sec = 20

[mcp_servers.docs]
# the docs server, a local build
command = "{BIN}/mcp-server-everything"
args = [
  "--root", "{PROJ}",
]
env_vars = ["DOCS_TOKEN"]
enabled = false

[mcp_servers.docs.env]
LOG = "debug"

[mcp_servers.figma]
url = "https://mcp.figma.com/mcp"
bearer_token_env_var = "FIGMA_OAUTH_TOKEN"

[profiles.fast]
model = "gpt-5-mini"
"""

GEMINI = """{
  "theme": "GitHub",
  // local servers
  "mcpServers": {
    "pythonTools": {
      "command": "python",
      "args": ["-m", "my_mcp_server", "--port", "8080"],
      "cwd": "./mcp-servers/python",
      "env": {"DATABASE_URL": "$DB_CONNECTION_STRING", "API_KEY": "${EXTERNAL_API_KEY}"},
      "timeout": 15000,
      "trust": false,
      "includeTools": ["safe_tool"]
    },
    "httpServer": {"httpUrl": "http://localhost:3000/mcp", "timeout": 5000},
  },
}
"""

CASES = [
    Case("claude", "claude_desktop_config.json", CLAUDE, ("mcpServers/filesystem", "mcpServers/time"),
         {"claude-filesystem": "filesystem", "claude-time": "time"}),
    Case("zed", "settings.json", ZED,
         ("context_servers/git", "context_servers/sqlite", "context_servers/everything", "context_servers/off"),
         {"zed-git": "git", "zed-sqlite": "sqlite", "zed-everything": "everything", "zed-off": "everything"}),
    Case("claude-code", ".claude.json", CLAUDE_CODE,
         ("mcpServers/time", "projects/{PROJ}/mcpServers/fs", "projects/{NOTES}/mcpServers/fs"),
         {"claude-code-time": "time", "claude-code-proj-fs": "filesystem", "claude-code-notes-fs": "filesystem"}),
    Case("claude-code", ".mcp.json", CLAUDE_CODE_PROJECT, ("mcpServers/db",), {"claude-code-db": "default"}),
    Case("cursor", "mcp.json", CURSOR, ("mcpServers/everything",), {"cursor-everything": "everything"}),
    Case("vscode", "mcp.json", VSCODE, ("servers/Perplexity", "servers/fetch"),
         {"vscode-perplexity": "default", "vscode-fetch": "fetch"}),
    Case("windsurf", "mcp_config.json", WINDSURF, ("mcpServers/github", "mcpServers/time"),
         {"windsurf-github": "default", "windsurf-time": "time"}),
    Case("codex", "config.toml", CODEX, ("mcp_servers/time", "mcp_servers/docs"),
         {"codex-time": "time", "codex-docs": "everything"}),
    Case("gemini", "settings.json", GEMINI, ("mcpServers/pythonTools",), {"gemini-pythontools": "default"}),
]
IDS = [f"{case.client}:{case.filename}" for case in CASES]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake runners and servers on PATH, and the folders and files entries name."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("npx", "uvx", "python", "mcp-server-everything", "mcp-server-time", "mcp-server-postgres"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(wrap, "_fill_store", lambda installs: None)  # npx/uvx installs: tests/store
    places = {"BIN": str(bin_dir), "PROJ": str(tmp_path / "proj"), "NOTES": str(tmp_path / "notes"),
              "REPO": str(tmp_path / "repo"), "DB": str(tmp_path / "app.db")}
    for name in ("PROJ", "NOTES", "REPO"):
        os.mkdir(places[name])
    Path(places["DB"]).write_bytes(b"SQLite format 3\0")
    return places


def fill(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def config_file(tmp_path: Path, case: Case, places: dict[str, str]) -> Path:
    path = tmp_path / "config" / case.filename
    path.parent.mkdir(exist_ok=True)
    path.write_text(fill(case.text, places))
    return path


def mcpbox(*argv: str) -> int:
    return cli.main(list(argv))


def parse(client: str, text: str) -> Any:
    """The file as the client reads it: strict JSON, JSON with comments, or TOML."""
    syntax = CLIENTS[client].syntax
    if syntax == "json":
        return json.loads(text)
    if syntax == "toml":
        return tomllib.loads(text)
    return jsonc.parse(text).value


def at(document: Any, key_path: str) -> Any:
    """An entry by its key path (`projects/<dir>/mcpServers/fs`: a project dir holds '/' itself)."""
    first, _, rest = key_path.partition("/")
    if first == "projects":
        name = rest.rsplit("/mcpServers/", 1)
        return document["projects"][name[0]]["mcpServers"][name[1]]
    return document[first][rest]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".mcpbox-backup-*"))


def entry_spans(client: str, text: str, key_paths: list[str]) -> list[tuple[int, int]]:
    """Where the entries lie in the text: a JSON value's span; a TOML table, header to the next header."""
    spans = []
    for key_path in key_paths:
        if CLIENTS[client].syntax == "toml":
            name = key_path.rsplit("/", 1)[1]
            start = text.index(f"[mcp_servers.{name}]")
            following = re.search(r"^\[(?!mcp_servers\." + re.escape(name) + r"\b)", text[start + 1:], re.M)
            spans.append((start, start + 1 + following.start() if following else len(text)))
        else:
            first, _, rest = key_path.partition("/")
            keys = [first, *rest.rsplit("/mcpServers/", 1)] if first == "projects" else [first, rest]
            if first == "projects":
                keys = ["projects", keys[1], "mcpServers", keys[2]]
            node = jsonc.find(jsonc.parse(text), *keys)
            assert node is not None
            spans.append((node.start, node.end))
    return spans


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrap_wrap_again_unwrap(case: Case, world: dict[str, str], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, case, world)
    original = path.read_bytes()
    before = parse(case.client, original.decode())
    wrapped_paths = [fill(key_path, world) for key_path in case.wrapped]
    launcher = wrap.mcpbox_argv()
    assert os.path.isabs(launcher[0])

    assert mcpbox("wrap", case.client, "--config", str(path)) == 0
    table = capsys.readouterr().out
    text = path.read_text()
    after = parse(case.client, text)  # still parses as the client reads it
    for key_path in wrapped_paths:
        server = stdio(at(after, key_path))
        old = stdio(at(before, key_path))
        assert not isinstance(server, str) and not isinstance(old, str)
        assert server.command == launcher[0], key_path
        profile = server.args[server.args.index("--profile") + 1]
        tail = server.args[server.args.index("--") + 1:]
        assert os.path.isabs(tail[0]) and os.path.basename(tail[0]) == os.path.basename(old.command)
        assert tail[1:] == old.args and server.env == old.env, "arguments and env values kept"
        assert profile in table
    for key_path in _entry_paths(before):
        if key_path not in wrapped_paths:
            assert at(after, key_path) == at(before, key_path), f"{key_path} must stay as it was"
    # Every change lies inside a wrapped entry: comments, order, other keys and entries are the same bytes.
    spans = entry_spans(case.client, original.decode(), wrapped_paths)
    for kind, i1, i2, _, _ in difflib.SequenceMatcher(None, original.decode(), text, autojunk=False).get_opcodes():
        if kind != "equal":
            assert any(start <= i1 and i2 <= end for start, end in spans), (kind, original.decode()[i1 - 20:i2 + 20])
    profiles_dir = Path(paths.user_profiles_dir())
    for name, shipped in case.profiles.items():
        profile_text = (profiles_dir / f"{name}.toml").read_text()
        assert f"from the shipped '{shipped}' profile" in profile_text, name
        assert "[server]" not in profile_text
    assert len(backups(path)) == 1 and backups(path)[0].read_bytes() == original

    wrapped_bytes = path.read_bytes()
    assert mcpbox("wrap", case.client, "--config", str(path)) == 0
    assert path.read_bytes() == wrapped_bytes, "wrapping twice changes nothing"
    assert len(backups(path)) == 1, "and writes no backup"
    assert "already wrapped" in capsys.readouterr().out

    assert mcpbox("unwrap", case.client, "--config", str(path)) == 0
    assert path.read_bytes() == original, "unwrap restores the original byte for byte"
    capsys.readouterr()


def _entry_paths(document: Any) -> list[str]:
    found = []
    for top in ("mcpServers", "context_servers", "servers", "mcp_servers"):
        found += [f"{top}/{name}" for name in document.get(top, {})]
    for directory, project in document.get("projects", {}).items():
        if isinstance(project, dict) and "mcpServers" in project:
            found += [f"projects/{directory}/mcpServers/{name}" for name in project["mcpServers"]]
    return found


def test_profiles_bind_the_entries_paths_and_pass_env_names(world: dict[str, str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    claude = config_file(tmp_path, CASES[0], world)
    mcpbox("wrap", "claude", "--config", str(claude))
    zed = config_file(tmp_path, CASES[1], world)
    mcpbox("wrap", "zed", "--config", str(zed))
    capsys.readouterr()
    profiles_dir = Path(paths.user_profiles_dir())
    filesystem = tomllib.loads((profiles_dir / "claude-filesystem.toml").read_text())
    assert filesystem["sandbox"]["read_write"] == [world["PROJ"], world["NOTES"]], "the shipped profile says writable"
    assert "~/projects" not in json.dumps(filesystem), "the shipped example folder is gone"
    assert filesystem["tools"]["arguments"] == {}, "one glob cannot name two folders"
    git = tomllib.loads((profiles_dir / "zed-git.toml").read_text())
    # git's and sqlite's shipped profiles bind what the command line names writable at each run (a file by its
    # folder): the entry's paths are not copied in as read-only binds, which would win over that.
    assert git["sandbox"]["writable_args"] is True and world["REPO"] not in json.dumps(git["sandbox"])
    sqlite = tomllib.loads((profiles_dir / "zed-sqlite.toml").read_text())
    assert sqlite["sandbox"]["writable_args"] is True and world["DB"] not in json.dumps(sqlite["sandbox"])
    assert sqlite["sandbox"]["env"] == ["LANG", "LOG_LEVEL"]  # the shipped sqlite profile's, and the entry's
    assert "info" not in (profiles_dir / "zed-sqlite.toml").read_text(), "env values never go into a profile"
    from mcpbox import profile

    for name in ("claude-filesystem", "claude-time", "zed-git", "zed-sqlite", "zed-everything"):
        profile.load(name)  # every profile wrap writes is valid


def test_one_folder_keeps_the_filesystem_argument_rules(world: dict[str, str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[2]  # Claude Code: each project's filesystem server has one folder
    mcpbox("wrap", "claude-code", "--config", str(config_file(tmp_path, case, world)))
    capsys.readouterr()
    fs = tomllib.loads((Path(paths.user_profiles_dir()) / "claude-code-proj-fs.toml").read_text())
    assert fs["sandbox"]["read_write"] == [world["PROJ"]]
    assert fs["tools"]["arguments"]["read_file"] == {"path": world["PROJ"] + "/**"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dry_run_writes_nothing(case: Case, world: dict[str, str], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, case, world)
    original, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert mcpbox("wrap", case.client, "--config", str(path), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "+++" in out and "nothing written" in out
    assert path.read_bytes() == original and path.stat().st_mtime_ns == mtime
    assert not backups(path)
    assert not os.path.exists(paths.user_profiles_dir()) and not os.path.exists(paths.state_dir())


BROKEN = {
    "claude": '{"mcpServers": {"time": {"command": "uvx",}}}\n',  # a trailing comma: not JSON
    "claude-code": '{\n  // a comment breaks ~/.claude.json\n  "mcpServers": {}\n}\n',
    "zed": '{\n  "context_servers": {\n    "git": {"command": "uvx" "args": []}\n  }\n}\n',
    "cursor": '{"mcpServers": {\n',
    "vscode": '{"servers": {"a": {"command": "npx"}}} /* unterminated\n',
    "windsurf": "",
    "codex": '[mcp_servers.time]\ncommand = "uvx\n',
    "gemini": '{"mcpServers": {"a": {"command": \'npx\'}}}\n',
}


@pytest.mark.parametrize("client", sorted(BROKEN))
@pytest.mark.parametrize("action", ["wrap", "unwrap"])
def test_a_file_that_does_not_parse_is_left_untouched(client: str, action: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config"
    path.write_text(BROKEN[client])
    mtime = path.stat().st_mtime_ns
    assert mcpbox(action, client, "--config", str(path)) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mcpbox: {path}: not valid "), err
    assert path.read_text() == BROKEN[client] and path.stat().st_mtime_ns == mtime
    assert not backups(path) and not os.path.exists(paths.user_profiles_dir())


def test_usage_errors_are_one_line(tmp_path: Path, world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, CASES[0], world)
    assert mcpbox("wrap", "notepad") == 2
    assert mcpbox("wrap", "claude", "--config", str(path), "--only", "nope") == 2
    assert mcpbox("wrap", "claude", "--config", str(tmp_path / "absent.json")) == 125
    errors = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in errors] == ["mcpbox"] * 3, errors
    assert "unknown client 'notepad'" in errors[0] and "no server entry named 'nope'" in errors[1]
    assert "no such file" in errors[2]
    assert not backups(path)


def test_only_wraps_the_named_entries(world: dict[str, str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, CASES[0], world)
    original = path.read_text()
    assert mcpbox("wrap", "claude", "--config", str(path), "--only", "time") == 0
    document = json.loads(path.read_text())
    assert document["mcpServers"]["filesystem"] == json.loads(original)["mcpServers"]["filesystem"]
    assert document["mcpServers"]["time"]["command"] == wrap.mcpbox_argv()[0]
    assert mcpbox("unwrap", "claude", "--config", str(path)) == 0
    assert path.read_text() == original
    capsys.readouterr()


def test_an_entry_edited_since_wrap_is_left_as_it_is(world: dict[str, str], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, CASES[0], world)
    original = path.read_text()
    mcpbox("wrap", "claude", "--config", str(path))
    path.write_text(path.read_text().replace('"--local-timezone=Europe/Berlin"', '"--local-timezone=UTC"'))
    capsys.readouterr()
    assert mcpbox("unwrap", "claude", "--config", str(path)) == 0
    out = capsys.readouterr().out
    assert re.search(r"time .*NOT unwrapped: edited since", out), out
    restored = json.loads(path.read_text())["mcpServers"]
    assert restored["filesystem"] == json.loads(original)["mcpServers"]["filesystem"]
    assert "--local-timezone=UTC" in restored["time"]["args"]


def test_an_existing_profile_is_kept(world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = Path(paths.user_profiles_dir()) / "claude-time.toml"
    mine.parent.mkdir(parents=True)
    mine.write_text('description = "mine"\n')
    mcpbox("wrap", "claude", "--config", str(config_file(tmp_path, CASES[0], world)))
    assert re.search(r"time +claude-time \(kept\)", capsys.readouterr().out)
    assert mine.read_text() == 'description = "mine"\n'


def test_an_unresolvable_command_stays_unwrapped(world: dict[str, str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, CASES[0], world)
    mcpbox("wrap", "claude", "--config", str(path))
    out = capsys.readouterr().out
    assert re.search(r"github .*NOT wrapped: cannot find 'docker-not-installed'", out), out
    assert re.search(r"linear .*remote", out)
    assert json.loads(path.read_text())["mcpServers"]["github"]["command"] == "docker-not-installed"


def test_the_command_is_found_on_the_entrys_own_path(tmp_path: Path, world: dict[str, str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    own = tmp_path / "own-bin"
    own.mkdir()
    (own / "private-server").write_text("#!/bin/sh\n")
    (own / "private-server").chmod(0o755)
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"p": {"command": "private-server", "env": {"PATH": str(own)}}}}))
    assert mcpbox("wrap", "cursor", "--config", str(path)) == 0
    entry = json.loads(path.read_text())["mcpServers"]["p"]
    assert entry["args"][-1] == str(own / "private-server") and entry["env"] == {"PATH": str(own)}
    assert "PATH not passed" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the config to another owner needs root")
def test_written_files_keep_the_configs_owner_and_mode_and_new_ones_are_private(
        world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, CASES[0], world)
    os.chown(path, 4321, 4322)
    path.chmod(0o640)
    assert mcpbox("wrap", "claude", "--config", str(path)) == 0
    capsys.readouterr()
    for written in (path, backups(path)[0]):
        status = written.stat()
        assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (4321, 4322, 0o640), written
    profiles_dir = Path(paths.user_profiles_dir())
    records = list(Path(paths.state_dir(), "wraps").iterdir())
    assert len(records) == 1
    for made in (profiles_dir / "claude-time.toml", records[0]):
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    for folder in (profiles_dir, records[0].parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_symlinked_config_is_edited_where_it_points(world: dict[str, str], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    real = config_file(tmp_path, CASES[4], world)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert mcpbox("wrap", "cursor", "--config", str(link)) == 0
    assert link.is_symlink() and "mcpbox" in real.read_text()
    capsys.readouterr()


def test_clients_lists_each_known_client(world: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CODEX_HOME", raising=False)
    cursor = home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(fill(CURSOR, world))
    windsurf = home / ".codeium" / "windsurf" / "mcp_config.json"
    windsurf.parent.mkdir(parents=True)
    windsurf.write_text(fill(WINDSURF, world))
    assert mcpbox("wrap", "cursor") == 0
    capsys.readouterr()
    assert mcpbox("clients") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert list(lines) == list(CLIENTS)
    assert lines["cursor"].endswith("~/.cursor/mcp.json  1 stdio entry, 1 wrapped")
    assert lines["windsurf"].endswith("2 stdio entries, 0 wrapped")
    assert lines["zed"].endswith("not found")


def test_run_imports_none_of_this() -> None:
    """`mcpbox run` sits on every client launch: the parser and its dispatch load no client code."""
    import subprocess
    import sys

    code = ("import sys, mcpbox.cli; mcpbox.cli.build_parser().parse_args(['run', '--', 'x']); "
            "import mcpbox.launch; "
            "print(sorted(m for m in sys.modules if m.startswith('mcpbox.clients') or m == 'tomlkit'))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@pytest.mark.parametrize(("command", "args", "fits"), [
    ("npx", ("-y", "@playwright/mcp@latest"), "playwright"),
    ("npx", ("-y", "@modelcontextprotocol/server-memory"), "memory"),
    ("uvx", ("mcp-server-git", "--repository", "/srv/repo"), "git"),
    ("npx", ("-y", "@acme/unknown-server"), "default"),
])
def test_an_entry_fits_the_shipped_profile_of_its_package(command: str, args: tuple[str, ...], fits: str) -> None:
    from mcpbox.clients import profiles as entry_profiles
    from mcpbox.clients.formats import Stdio

    assert entry_profiles.fitting(Stdio(command, args, {}, ()), entry_profiles.shipped()) == fits
