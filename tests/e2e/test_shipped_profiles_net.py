"""The shipped profiles of default, everything, time, filesystem, fetch, playwright and markitdown, each run end
to end against the real server, whoever ran mcpbox: root, or an unprivileged user (tests/unprivileged.py runs the
same steps both ways), with no change to the user's folders' modes.

Each server is a client config's entry started as Claude Desktop starts it (the `mcp` SDK, a minimal PATH and
HOME): `python -m mcpbox run --profile profiles/NAME.toml -- SERVER ARGS`, the server installed by
`scripts/setup --servers` and its arguments those of the profile's own `[server] command` (the command line wins
over the profile's, so nothing is fetched). The network servers reach only a loopback HTTP server this test
opened on 127.0.0.1 (never another host); fetch is given --allow-private-ips for that, its own refusal of
loopback addresses being no part of the sandbox.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from conftest import EVERYTHING, FILESYSTEM, ROOT, SERVERS, TIME, require
from shipped import Session, ok, shipped
from unprivileged import Workspace, way  # noqa: F401 - way is a fixture

mcp = pytest.importorskip("mcp", reason="the mcp Python SDK is a test dependency (pip install -e .[test])")

FETCH = SERVERS / "py" / "bin" / "mcp-server-fetch"
PLAYWRIGHT = SERVERS / "npm" / "node_modules" / ".bin" / "playwright-mcp"
MARKITDOWN = SERVERS / "markitdown" / "bin" / "markitdown-mcp"  # its own venv (scripts/setup)
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 90.0  # against hangs only (Chromium's first start is the slowest)


def shipped_args(name: str) -> list[str]:
    """The arguments of the shipped profile's own `[server] command` (its program is the installed one here)."""
    return list(shipped(name).get("server", {}).get("command", [""])[1:])


def refused(ran: dict[str, Any], index: int, *expected: str) -> str:
    result = ran["results"][index]
    assert result["is_error"], (result, ran["stderr"])
    for text in expected:
        assert text in result["text"], (text, result, ran["stderr"])
    return str(result["text"])


class Site(NamedTuple):
    url: str  # the page
    marker: str  # a text only that page holds
    requests: list[str]  # the paths asked for, in order


@pytest.fixture
def site() -> Iterator[Site]:
    """A page served on 127.0.0.1 at a port this test opened (robots.txt: 404), for the network servers."""
    marker = f"boxed-{secrets.token_hex(6)}"
    body = (f"<html><head><title>mcpbox test page</title></head><body><h1>Served on loopback</h1>"
            f"<p>The page says {marker}.</p></body></html>").encode()
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            requests.append(self.path)
            if self.path != "/page":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}/page", marker, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("name", ["everything", "default"])
def test_everything_echoes_and_sees_none_of_the_clients_environment(name: str, way: Workspace) -> None:
    require(EVERYTHING)
    secret = f"not-for-the-server-{secrets.token_hex(4)}"
    session = Session.of(way, name, EVERYTHING, *shipped_args(name), timeout=TIMEOUT,
                         env={"MCPBOX_TEST_SECRET": secret, "LANG": "C.UTF-8"})
    _, ran = way.drive([session.write(), session.run([("echo", {"message": "through the shipped profile"}),
                                                      ("get-env", {})])], timeout=2 * TIMEOUT)

    assert "echo" in ran["tools"], ran["tools"]
    ok(ran, 0, "Echo: through the shipped profile")
    env = json.loads(ok(ran, 1))
    assert "MCPBOX_TEST_SECRET" not in env and secret not in json.dumps(env), env
    assert env["LANG"] == "C.UTF-8" and env["HOME"] == str(way.home), env  # env = ["LANG"]; a private home


def test_time_converts_with_only_its_two_tools(way: Workspace) -> None:
    require(TIME)
    session = Session.of(way, "time", TIME, *shipped_args("time"), timeout=TIMEOUT)
    _, ran = way.drive([session.write(), session.run([
        ("convert_time", {"source_timezone": "Europe/Paris", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
    ])], timeout=2 * TIMEOUT)

    assert sorted(ran["tools"]) == sorted(shipped("time")["tools"]["allow"]), ran["tools"]
    ok(ran, 0, "20:00", "Asia/Tokyo")


def test_filesystem_writes_in_the_users_projects_and_nowhere_else(way: Workspace) -> None:
    require(FILESYSTEM)
    projects, outside = way.home / "projects", way.path / "outside"
    # The shipped command's argument is "~/projects": given expanded, as a client's entry holds it.
    assert shipped_args("filesystem") == ["~/projects"]
    session = Session.of(way, "filesystem", FILESYSTEM, str(projects), timeout=TIMEOUT)
    _, _, _, ran = way.drive([
        session.write(),
        {"write": str(projects / "notes" / "inside.txt"), "text": "made by the user\n"},
        {"write": str(outside / "secret.txt"), "text": "outside the folder\n"},
        session.run([
            ("read_text_file", {"path": str(projects / "notes" / "inside.txt")}),
            ("write_file", {"path": str(projects / "notes" / "new.txt"), "content": "written through mcpbox"}),
            ("edit_file", {"path": str(projects / "notes" / "inside.txt"),
                           "edits": [{"oldText": "made by the user", "newText": "edited through mcpbox"}]}),
            ("write_file", {"path": str(outside / "new.txt"), "content": "must not land"}),
            ("write_file", {"path": str(projects / ".." / "escaped.txt"), "content": "must not land"}),
            ("read_text_file", {"path": str(outside / "secret.txt")}),
        ]),
    ], timeout=2 * TIMEOUT)

    ok(ran, 0, "made by the user")
    ok(ran, 1, "Successfully wrote")
    ok(ran, 2)
    refused(ran, 3, "~/projects/**")  # the profile's argument rule, before the server sees it
    refused(ran, 4, "~/projects/**")  # `..` resolved first
    refused(ran, 5, "~/projects/**")
    new, edited = projects / "notes" / "new.txt", projects / "notes" / "inside.txt"
    assert new.read_text() == "written through mcpbox"
    assert edited.read_text() == "edited through mcpbox\n"
    for path in (new, edited, projects / "notes"):
        assert path.stat().st_uid == way.who.uid, f"{path} belongs to the user who ran mcpbox ({way.who.name})"
    assert sorted(os.listdir(outside)) == ["secret.txt"] and not (way.home / "escaped.txt").exists()


def test_fetch_reaches_a_loopback_page_the_test_opened(way: Workspace, site: Site) -> None:
    require(FETCH)
    # Its own check refuses loopback addresses by default: the test's page is on loopback.
    session = Session.of(way, "fetch", FETCH, *shipped_args("fetch"), "--allow-private-ips", timeout=TIMEOUT)
    _, ran = way.drive([session.write(), session.run([("fetch", {"url": site.url})])], timeout=2 * TIMEOUT)

    assert ran["tools"] == ["fetch"], ran["tools"]
    ok(ran, 0, "Served on loopback", site.marker)  # the page's text, as Markdown
    assert "/page" in site.requests, site.requests
    assert "npm error" not in ran["stderr"], "readabilipy finds no npm to install with at run time"


def test_playwright_browses_a_loopback_page_with_debians_chromium(way: Workspace, site: Site) -> None:
    require(PLAYWRIGHT)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: the Playwright profile drives Debian's chromium (apt-get install "
                    "chromium, as scripts/setup --servers does as root)")
    args = shipped_args("playwright")
    assert args[args.index("--executable-path") + 1] == str(CHROMIUM)
    session = Session.of(way, "playwright", PLAYWRIGHT, *args, timeout=TIMEOUT)
    _, ran = way.drive([session.write(), session.run([("browser_navigate", {"url": site.url}),
                                                      ("browser_snapshot", {})])], timeout=3 * TIMEOUT)

    assert {"browser_navigate", "browser_snapshot"} <= set(ran["tools"]), ran["tools"]
    assert "browser_run_code_unsafe" not in ran["tools"], "the profile denies it"
    ok(ran, 0, site.url)
    ok(ran, 1, 'heading "Served on loopback"', site.marker, "mcpbox test page")
    assert site.requests.count("/page") >= 1, site.requests


def test_markitdown_reads_only_the_users_documents_and_has_no_network(way: Workspace, site: Site) -> None:
    require(MARKITDOWN)
    documents = way.home / "Documents"
    session = Session.of(way, "markitdown", MARKITDOWN, *shipped_args("markitdown"), timeout=TIMEOUT)
    _, _, _, ran = way.drive([
        session.write(),
        {"write": str(documents / "fruit.csv"), "text": "fruit,count\napples,3\npears,5\n"},
        {"write": str(way.home / "private.csv"), "text": "secret,value\nkey,hunter2\n"},
        session.run([
            ("convert_to_markdown", {"uri": (documents / "fruit.csv").as_uri()}),
            ("convert_to_markdown", {"uri": (way.home / "private.csv").as_uri()}),
            ("convert_to_markdown", {"uri": "data:text/html,<h1>Inline</h1><p>from a data URI</p>"}),
            ("convert_to_markdown", {"uri": site.url}),
        ]),
    ], timeout=3 * TIMEOUT)

    assert ran["tools"] == ["convert_to_markdown"], ran["tools"]
    ok(ran, 0, "| fruit | count |", "| apples | 3 |", "| pears | 5 |")
    assert "hunter2" not in refused(ran, 1)  # outside ~/Documents: not in the sandbox at all
    ok(ran, 2, "# Inline", "from a data URI")
    refused(ran, 3)  # no network: the loopback page is not reached
    assert site.requests == [], site.requests
    assert (documents / "fruit.csv").read_text() == "fruit,count\napples,3\npears,5\n"


def test_profiles_lists_what_each_shipped_profile_grants(tmp_path: Path) -> None:
    import subprocess

    listed = subprocess.run([sys.executable, "-m", "mcpbox", "profiles"], capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path)))  # no profiles of the user's
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    grants: dict[str, str] = {}
    for line, following in zip(lines, [*lines[1:], ""]):
        if not line.startswith(" "):
            assert following.lstrip().startswith("grants: "), (line, following)
            grants[line.split()[0]] = following.split("grants: ", 1)[1]
    assert sorted(grants) == sorted(path.stem for path in (ROOT / "profiles").glob("*.toml")), listed.stdout
    for name in ("fetch", "playwright"):
        assert grants[name].startswith("host network (internet, LAN, loopback); "), grants[name]
    assert grants["markitdown"].startswith("no network; reads ~/Documents; env LANG; "), grants["markitdown"]
    assert grants["filesystem"].startswith("no network; writes ~/projects; "), grants["filesystem"]
    assert grants["time"].endswith("tools only get_current_time, convert_time"), grants["time"]
    assert grants["everything"].endswith("; may ask for sampling"), grants["everything"]
