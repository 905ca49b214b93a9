"""The shipped profiles of the local servers people use (memory, sequential-thinking, git, sqlite), each run
end to end against the real server through its write path, whoever ran mcpbox: root, or an unprivileged user
(tests/unprivileged.py runs the same steps both ways), with no change to the user's folders' modes.

Each server is a client config's entry started as Claude Desktop starts it (the `mcp` SDK, a minimal PATH and
HOME): `python -m mcpbox run --profile profiles/NAME.toml -- SERVER ARGS`, the server installed by
`scripts/setup --servers` (the command line wins over the profile's `[server] command`, so nothing is fetched).
What a server writes is read back by a second run (a new process) and on the host, where it belongs to the user
who ran mcpbox.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import SERVERS, require
from shipped import Session, ok, shipped
from unprivileged import Workspace, way  # noqa: F401 - way is a fixture

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")

NPM_BIN = SERVERS / "npm" / "node_modules" / ".bin"
MEMORY = NPM_BIN / "mcp-server-memory"
THINKING = NPM_BIN / "mcp-server-sequential-thinking"
GIT = SERVERS / "py" / "bin" / "mcp-server-git"
SQLITE = SERVERS / "sqlite" / "bin" / "mcp-server-sqlite"  # its own venv: it needs the mcp 1.x SDK
TIMEOUT = 60.0  # against hangs only
AUTHOR = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.org",
          "GIT_COMMITTER_NAME": "Ada Lovelace", "GIT_COMMITTER_EMAIL": "ada@example.org"}


def allowed_tools(name: str) -> list[str]:
    return sorted(shipped(name)["tools"]["allow"])


def owned(way: Workspace, *paths: Path) -> None:
    """Each path (every file and folder below a folder) belongs to the way's user, and to no sandbox uid."""
    for path in paths:
        every = [path, *(path.rglob("*") if path.is_dir() else ())]
        strangers = {str(p): p.lstat().st_uid for p in every if p.lstat().st_uid != way.who.uid}
        assert not strangers, f"not {way.who.name}'s ({way.who.uid}): {strangers}"


def test_memory_keeps_its_graph_across_runs_in_the_users_folder(way: Workspace) -> None:
    require(MEMORY)
    session = Session.of(way, "memory", MEMORY)
    state = way.home / ".local" / "share" / "mcp-memory"
    entity = {"name": "mcpbox", "entityType": "project", "observations": ["runs MCP servers in a sandbox"]}
    _, first, second = way.drive([
        session.write(),
        session.run([("create_entities", {"entities": [entity]})]),
        session.run([("read_graph", {}), ("search_nodes", {"query": "sandbox"}),
                     ("add_observations", {"observations": [{"entityName": "mcpbox",
                                                             "contents": ["written by the second run"]}]})]),
    ], timeout=4 * TIMEOUT)

    assert sorted(first["tools"]) == allowed_tools("memory"), first["tools"]
    ok(first, 0, "mcpbox")
    assert f"mcpbox: made {state} for [sandbox] read_write" in first["stderr"], first["stderr"]
    ok(second, 0, "mcpbox", "runs MCP servers in a sandbox")  # the second process read run 1's file
    ok(second, 1, "mcpbox")
    ok(second, 2, "written by the second run")
    lines = [json.loads(line) for line in (state / "memory.jsonl").read_text().splitlines()]
    assert lines == [{"type": "entity", "name": "mcpbox", "entityType": "project",
                      "observations": ["runs MCP servers in a sandbox", "written by the second run"]}], lines
    owned(way, state)  # the folder mcpbox made on first use, and the file the server replaced in run 2
    assert "not mapped" not in first["stderr"] + second["stderr"], first["stderr"]


def test_sequential_thinking_thinks_with_only_its_tool(way: Workspace) -> None:
    require(THINKING)
    session = Session.of(way, "sequential-thinking", THINKING)
    _, ran = way.drive([
        session.write(),
        session.run([("sequentialthinking", {"thought": "First, list what the sandbox must hold.",
                                             "thoughtNumber": 1, "totalThoughts": 2, "nextThoughtNeeded": True}),
                     ("sequentialthinking", {"thought": "Then check each against the profile.",
                                             "thoughtNumber": 2, "totalThoughts": 2, "nextThoughtNeeded": False})]),
    ], timeout=2 * TIMEOUT)

    assert ran["tools"] == ["sequentialthinking"], ran["tools"]
    first, second = (json.loads(ok(ran, index)) for index in (0, 1))
    assert (first["thoughtNumber"], first["nextThoughtNeeded"], first["thoughtHistoryLength"]) == (1, True, 1), first
    assert (second["thoughtNumber"], second["nextThoughtNeeded"], second["thoughtHistoryLength"]) == (2, False, 2)


def test_git_commits_in_the_users_repository_and_the_host_git_sees_it(way: Workspace) -> None:
    require(GIT)
    repo = way.path / "repo"
    session = Session.of(way, "git", GIT, "--repository", str(repo), env=AUTHOR)
    git = ["git", "-C", str(repo)]
    _, _, init, ran, log, status, fsck = way.drive([
        session.write(),
        {"write": str(repo / "notes.txt"), "text": "made by the user\n"},
        {"run": ["git", "init", "-q", str(repo)]},
        session.run([("git_status", {"repo_path": str(repo)}),
                     ("git_add", {"repo_path": str(repo), "files": ["notes.txt"]}),
                     ("git_commit", {"repo_path": str(repo), "message": "Commit through mcpbox"}),
                     ("git_log", {"repo_path": str(repo)}),
                     ("git_status", {"repo_path": "/etc"})]),
        # The host's git, as the user: what the server wrote is a repository it owns.
        {"run": [*git, "log", "--format=%an <%ae>|%cn|%s"]},
        {"run": [*git, "status", "--porcelain"]},
        {"run": [*git, "fsck", "--strict"]},
    ], timeout=4 * TIMEOUT)

    assert init["status"] == 0, init
    assert sorted(ran["tools"]) == allowed_tools("git"), ran["tools"]
    ok(ran, 0, "notes.txt")  # untracked, seen through the bind
    ok(ran, 1)
    ok(ran, 2, "Changes committed successfully")
    ok(ran, 3, "Commit through mcpbox")
    outside = ran["results"][4]
    assert outside["is_error"] and "outside the allowed repository" in outside["text"], outside
    for done in (log, status, fsck):
        assert done["status"] == 0 and "dubious ownership" not in done["err"], done
    assert log["out"].splitlines() == ["Ada Lovelace <ada@example.org>|Ada Lovelace|Commit through mcpbox"], log
    assert status["out"] == "", status  # the commit holds the file; nothing left to commit
    owned(way, repo)  # .git's objects, index, refs and logs the server wrote are the user's


def test_sqlite_database_is_made_and_read_back_by_a_second_run(way: Workspace) -> None:
    require(SQLITE)
    data = way.path / "data"
    database = data / "app.db"
    session = Session.of(way, "sqlite", SQLITE, "--db-path", str(database))
    _, _, first, second = way.drive([
        session.write(),
        {"run": ["mkdir", str(data)]},  # an empty folder of the user's: the server makes the database there
        session.run([("create_table", {"query": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"}),
                     ("write_query", {"query": "INSERT INTO notes (body) VALUES ('from the first run')"})]),
        session.run([("list_tables", {}),
                     ("write_query", {"query": "INSERT INTO notes (body) VALUES ('from the second run')"}),
                     ("read_query", {"query": "SELECT id, body FROM notes ORDER BY id"})]),
    ], timeout=4 * TIMEOUT)

    assert sorted(first["tools"]) == allowed_tools("sqlite"), first["tools"]
    ok(first, 0)
    ok(first, 1, "'affected_rows': 1")
    ok(second, 0, "notes")
    ok(second, 2, "from the first run", "from the second run")
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:  # the file on the host, as written
        assert db.execute("SELECT body FROM notes ORDER BY id").fetchall() == [("from the first run",),
                                                                              ("from the second run",)]
    owned(way, data)
    assert os.listdir(data) == ["app.db"], os.listdir(data)  # no journal left behind
