"""`mcpbox log`: the audit log as a table. The rows and the table are pure functions, tested without I/O; the
command on logs written by mcpbox's own AuditLog and by a real `mcpbox run`, following one as it is written
and rotated."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MCPBOX, ROOT, write_profile
from mcpbox import logview
from mcpbox.audit import AuditLog, write_one
from mcpbox.errors import UsageError
from mcpbox.logview import Entry, Query

MOMENT = 1767225600.0  # 2026-01-01T00:00:00Z
ESC = "\x1b"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def entry(**record: object) -> Entry:
    record = {"time": "2026-01-01T00:00:00.000Z", **record}
    return Entry(json.dumps(record).encode(), record, MOMENT)


# -- pure ------------------------------------------------------------------------------------------------------


def test_a_relay_decision_is_one_row(utc: None) -> None:
    assert logview.row({"direction": "client", "method": "tools/call", "id": 7, "decision": "deny", "name": "rm",
                        "rule": "tools.deny: rm*", "bytes": 90}, MOMENT) == (
        "Jan 01 00:00:00", "-", "client", "tools/call", "rm", "deny", "tools.deny: rm*")
    assert logview.row({"direction": "server", "method": None, "id": 3, "decision": "drop",
                        "rule": "response to an id the client never sent"}, MOMENT)[3:] == (
        "-", "-", "drop", "response to an id the client never sent")


def test_events_show_what_they_are_about(utc: None) -> None:
    pin = logview.row({"direction": "server", "event": "pin", "kind": "tool", "name": "echo", "decision": "hide",
                       "rule": "changed since first seen", "fields": ["description", "inputSchema"]}, MOMENT)
    assert pin[1:] == ("-", "server", "pin", "tool echo", "hide", "changed since first seen (description, inputSchema)")
    instructions = logview.row({"direction": "server", "event": "pin", "kind": "instructions", "decision": "hide",
                                "rule": "changed since first seen"}, MOMENT)
    assert instructions[4] == "instructions"
    egress = logview.row({"event": "egress", "kind": "CONNECT", "host": "api.github.com", "port": 443,
                          "address": "140.82.112.5", "decision": "allow", "rule": "api.github.com", "sent": 1,
                          "received": 2, "seconds": 0.1}, MOMENT)
    assert egress[1:] == ("-", "-", "egress", "api.github.com:443", "allow", "api.github.com")
    assert logview.row({"event": "egress", "host": "::1", "port": 80, "decision": "deny", "rule": "loopback"},
                       MOMENT)[4] == "[::1]:80"
    assert logview.row({"event": "egress", "decision": "error", "reason": "SOCKS5 address type 9"},
                       MOMENT)[4:] == ("-", "error", "SOCKS5 address type 9")
    provenance = logview.row({"event": "provenance", "ecosystem": "npm", "package": "@scope/server-x@1.2.3",
                              "policy": "required", "decision": "deny", "reason": "no attestations"}, MOMENT)
    assert provenance[1:] == ("@scope/server-x", "-", "provenance", "@scope/server-x@1.2.3", "deny",
                              "no attestations")
    verify = logview.row({"event": "verify", "decision": "allow", "artifact": "/opt/srv/bin/server",
                          "identity": "https://github.com/o/r/.github/workflows/r.yml@refs/tags/v1"}, MOMENT)
    assert verify[1:4] == ("server", "-", "verify") and verify[4].startswith("https://github.com/o/r/")


def test_a_server_or_profile_field_names_the_server() -> None:
    assert logview.server_of({"server": "time", "profile": "p"}) == "time"
    assert logview.server_of({"profile": "claude-time"}) == "claude-time"
    assert logview.server_of({"event": "provenance", "package": "mcp-server-time@2025.1"}) == "mcp-server-time"
    assert logview.server_of({"direction": "client", "method": "initialize"}) is None


def test_what_a_peer_chose_cannot_reach_the_terminal_as_escapes() -> None:
    cells = logview.row({"direction": "client", "method": "tools/call\x1b]0;pwned\x07", "decision": "deny",
                         "name": "ev\u200bil\ufe0f", "rule": "line\nbreak\u202e"}, MOMENT)
    assert cells[3] == "tools/call\\x1b]0;pwned\\x07"
    assert cells[4] == "ev\\u200bil\\ufe0f"
    assert cells[6] == "line\\x0abreak\\u202e"
    assert not any(ESC in cell or "\n" in cell for cell in cells)
    assert logview.printable("naïve — 東京 ✓") == "naïve — 東京 ✓"


def test_the_table_sizes_its_columns_and_cuts_long_cells() -> None:
    rows = [("Jan 01 00:00:00", "-", "client", "tools/call", "echo", "allow", ""),
            ("Jan 01 00:00:01", "-", "server", "roots/list", "x" * 100, "deny", "client.roots")]
    lines = logview.format_table(rows, colour=False)
    assert lines[0] == ("TIME             SERVER  DIR     METHOD      ITEM" + " " * 38 + "DECISION  RULE")
    assert lines[1] == "Jan 01 00:00:00  -       client  tools/call  echo" + " " * 38 + "allow"
    assert lines[2] == "Jan 01 00:00:01  -       server  roots/list  " + "x" * 39 + "…  deny      client.roots"
    assert all(ESC not in line for line in lines)
    assert logview.format_table([], colour=False) == ["TIME  SERVER  DIR  METHOD  ITEM  DECISION  RULE"]
    fixed = logview.format_table(rows[:1], colour=False, widths=logview.FIXED_WIDTHS, header=False)
    assert fixed == ["Jan 01 00:00:00  -             client  tools/call                echo" + " " * 30 + "allow"]


def test_colour_marks_the_decision_and_keeps_the_columns() -> None:
    rows = [("Jan 01 00:00:00", "-", "client", "tools/call", "rm", "deny", "tools.deny"),
            ("Jan 01 00:00:00", "-", "client", "tools/call", "ok", "allow", "")]
    plain = logview.format_table(rows, colour=False)
    painted = logview.format_table(rows, colour=True)
    assert painted[0].startswith("\x1b[1mTIME")
    assert "\x1b[1;31mdeny\x1b[0m      tools.deny" in painted[1] and "\x1b[32mallow" in painted[2]
    strip = [line.replace("\x1b[0m", "").replace("\x1b[1m", "").replace("\x1b[2m", "").replace("\x1b[1;31m", "")
             .replace("\x1b[32m", "") for line in painted]
    assert strip == plain


def test_malformed_lines_do_not_parse() -> None:
    for raw in (b"not json", b"[1, 2]", b'{"no": "time"}', b'{"time": 5}', b'{"time": "yesterday"}', b"{" * 5000):
        assert logview.parse(raw) is None, raw
    parsed = logview.parse(b'{"time":"2026-01-01T00:00:00.000Z","decision":"allow"}')
    assert parsed is not None and parsed.moment == MOMENT


def test_since_takes_spans_and_iso_times(utc: None) -> None:
    now = MOMENT
    assert logview.parse_since("10m", now) == now - 600
    assert logview.parse_since("2h", now) == now - 7200
    assert logview.parse_since("1d", now) == now - 86400
    assert logview.parse_since("30s", now) == now - 30
    assert logview.parse_since("1w", now) == now - 604800
    assert logview.parse_since("2025-12-31T23:00:00Z", now) == now - 3600
    assert logview.parse_since("2025-12-31T23:00", now) == now - 3600  # local time (UTC here)
    assert logview.parse_since("2026-01-01", now) == now
    for wrong in ("yesterday", "10 parsecs", ""):
        with pytest.raises(UsageError, match="--since"):
            logview.parse_since(wrong, now)


def test_queries_select_denied_server_and_time() -> None:
    allowed = entry(direction="client", method="tools/call", decision="allow", name="echo")
    denied = entry(direction="client", method="tools/call", decision="deny", name="rm")
    hidden = entry(direction="server", event="pin", kind="tool", name="x", decision="hide")
    named = entry(server="claude-time", decision="error")
    package = entry(event="provenance", package="@modelcontextprotocol/server-memory@1.0.0", decision="allow")
    assert [logview.matches(e, Query(denied=True)) for e in (allowed, denied, hidden, named)] == [
        False, True, True, True]
    assert [logview.matches(e, Query(server="claude-*")) for e in (allowed, named, package)] == [False, True, False]
    assert logview.matches(package, Query(server="server-memory"))
    assert logview.matches(package, Query(server="@modelcontextprotocol/*"))
    assert logview.matches(allowed, Query(since=MOMENT)) and not logview.matches(allowed, Query(since=MOMENT + 1))


# -- the command -----------------------------------------------------------------------------------------------


def log_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MCPBOX, "log", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env=env)


def write_sample(path: Path) -> None:
    """Lines of every shape, as mcpbox writes them, and two that are not lines of an audit log."""
    old = {"time": "2020-01-01T00:00:00.000Z", "direction": "client", "method": "initialize", "id": 0,
           "decision": "allow"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old) + "\n")
    log = AuditLog(str(path))
    log.write(direction="client", method="initialize", id=1, decision="allow", bytes=120, response_bytes=300,
              duration_ms=4.2)
    log.write(direction="client", method="tools/call", id=2, decision="allow", name="echo", arguments="sha256:ab")
    log.write(direction="client", method="tools/call", id=3, decision="deny", name="rm\x1b[2J", rule="tools.deny: rm")
    log.write(direction="server", event="pin", kind="tool", name="add", decision="hide",
              rule="changed since first seen", fields=["description"])
    log.close()
    with path.open("a") as handle:
        handle.write("this is not json\n{\"decision\": \"deny\"}\n")
    write_one(str(path), event="egress", kind="CONNECT", host="example.com", port=443, address="93.184.215.14",
              decision="deny", rule="not in sandbox.network", sent=0, received=0, seconds=0.0)
    write_one(str(path), event="provenance", ecosystem="npm", package="@modelcontextprotocol/server-memory@2.0.0",
              policy="required", decision="allow", found="attested", detail="built by ...")


def test_the_table_of_a_log_with_every_shape_and_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path)
    result = log_cli("--path", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIME", "SERVER", "DIR", "METHOD", "ITEM", "DECISION", "RULE"]
    assert [line.split()[5:7] for line in lines[1:4]] == [["initialize", "-"], ["initialize", "-"],
                                                          ["tools/call", "echo"]]
    assert "rm\\x1b[2J" in lines[4] and "tools.deny: rm" in lines[4]
    assert "tool add" in lines[5] and "changed since first seen (description)" in lines[5]
    assert "example.com:443" in lines[6] and "not in sandbox.network" in lines[6]
    assert "@modelcontextprotocol/server-memory@2.0…" in lines[7] and lines[7].endswith("attested")
    assert len(lines) == 8 and ESC not in result.stdout, "no colour when stdout is not a terminal"
    assert result.stderr == "mcpbox: skipped 2 malformed line(s) (not a JSON object with a time)\n"


def test_filters_and_json(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path)
    denied = log_cli("--path", str(path), "--denied")
    assert [line.split()[-1] for line in denied.stdout.splitlines()[1:]] == ["rm", "(description)", "sandbox.network"]
    recent = log_cli("--path", str(path), "--since", "1h", "--json")
    records = [json.loads(line) for line in recent.stdout.splitlines()]
    assert len(records) == 6 and records[0]["id"] == 1, "the line of 2020 is older than an hour"
    raw = path.read_bytes().splitlines()
    assert recent.stdout.encode().splitlines() == [line for line in raw[1:] if line.startswith(b'{"time"')]
    last = log_cli("--path", str(path), "--json", "-n", "2", "--denied")
    assert [json.loads(line).get("event") for line in last.stdout.splitlines()] == ["pin", "egress"]
    server = log_cli("--path", str(path), "--server", "server-memory")
    assert len(server.stdout.splitlines()) == 2 and "@modelcontextprotocol/server-memory" in server.stdout
    assert "6 line(s) name no server" in server.stderr
    nothing = log_cli("--path", str(path), "--since", "2999-01-01")
    assert nothing.returncode == 0 and nothing.stdout == ""
    wrong = log_cli("--path", str(path), "--since", "last tuesday")
    assert wrong.returncode == 2 and wrong.stderr.startswith("mcpbox: --since 'last tuesday'")
    assert "Traceback" not in wrong.stderr


def test_the_default_log_and_its_rotated_files_oldest_first(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = state / "mcpbox" / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=300, keep=3)
    for index in range(12):
        log.write(direction="client", method="tools/call", id=index, decision="allow", name=f"tool{index}")
    log.close()
    assert (state / "mcpbox" / "audit.jsonl.2").exists()
    result = log_cli("--json", env=dict(os.environ, XDG_STATE_HOME=str(state)))
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert ids == sorted(ids) and ids[-1] == 11 and len(ids) >= 8
    missing = log_cli(env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "none")))
    assert missing.returncode == 1 and "no audit log at" in missing.stderr and "Traceback" not in missing.stderr


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path)

    def on_terminal(**env: str) -> str:
        leader, follower = pty.openpty()
        process = subprocess.Popen([*MCPBOX, "log", "--path", str(path), "--denied"], stdout=follower,
                                   stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "TERM": "xterm", **env})
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        assert process.wait(timeout=60) == 0
        return seen.decode()

    coloured = on_terminal()
    assert "\x1b[1;31mdeny" in coloured and "rm\\x1b[2J" in coloured
    assert ESC not in on_terminal(NO_COLOR="1")


def test_a_closed_pipe_ends_it_quietly(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path))
    for index in range(20000):
        log.write(direction="client", method="tools/call", id=index, decision="allow", name="echo")
    log.close()
    process = subprocess.Popen([*MCPBOX, "log", "--path", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"TIME")
    process.stdout.close()
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""


class Lines:
    """A child's stdout read line by line, never waiting longer than a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"no line within {timeout} s (have {self.buffer!r})"
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 4096)
                assert chunk, f"stdout closed (have {self.buffer!r})"
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def test_follow_prints_new_lines_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path)
    process = subprocess.Popen([*MCPBOX, "log", "--follow", "--path", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    try:
        lines = Lines(process.stdout.fileno())
        assert lines.next().startswith("TIME")
        shown = [lines.next() for _ in range(7)]  # the last 10 lines: 7 well-formed, 2 malformed, and the header
        assert "initialize" in shown[0] and "attested" in shown[-1]
        log = AuditLog(str(path), max_bytes=path.stat().st_size + 150, keep=2)
        log.write(direction="client", method="tools/call", id=40, decision="deny", name="after", rule="tools.deny")
        after = lines.next()
        assert "after" in after and "deny" in after
        time.sleep(0.5)  # the follower sees the file it holds at its end before the log rotates
        log.write(direction="client", method="tools/call", id=41, decision="allow", name="rotated" + "x" * 100)
        log.close()
        assert (tmp_path / "audit.jsonl.1").exists(), "the log rotated"
        assert "rotated" in lines.next()
        with path.open("a") as handle:
            handle.write("garbage\n")
        write_one(str(path), direction="server", method="sampling/createMessage", id=1, decision="deny",
                  rule="client.sampling")
        assert "client.sampling" in lines.next()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        status = process.wait(timeout=20)
        errors = process.stderr.read().decode()
        process.stdout.close()
        process.stderr.close()
    assert status == 0 and "Traceback" not in errors
    assert errors == "mcpbox: skipped 3 malformed line(s) (not a JSON object with a time)\n"


TINY_SERVER = """
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    if message["method"] == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "tiny", "version": "1"}}
    else:
        result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
"""


def test_the_log_of_a_real_run(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    profile = write_profile(tmp_path / "tiny.toml", f"[tools]\ndeny = ['rm']\n[audit]\npath = '{audit}'\n")
    process = subprocess.Popen([*MCPBOX, "run", "--profile", str(profile), "--", "/usr/bin/python3", "-c",
                                TINY_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdin is not None and process.stdout is not None
    lines = Lines(process.stdout.fileno())

    def send(message: dict[str, object]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        process.stdin.flush()

    try:  # one request at a time, as a client does
        send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                          "clientInfo": {"name": "test", "version": "1"}}})
        assert json.loads(lines.next(60))["id"] == 1
        send({"method": "notifications/initialized"})
        send({"id": 2, "method": "tools/call", "params": {"name": "rm", "arguments": {"path": "/"}}})
        assert json.loads(lines.next())["id"] == 2
        send({"id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}})
        assert json.loads(lines.next())["result"]["content"][0]["text"] == "ok"
    except AssertionError as error:
        process.kill()
        raise AssertionError(f"{error}; mcpbox's stderr: {process.communicate(timeout=60)[1].decode()}") from None
    process.stdin.close()
    process.stdin = None
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors.decode()
    result = log_cli("--path", str(audit))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    # The side whose message each line decides on: the server's answers, the client's refused call.
    assert [row[3:7] for row in rows] == [["tiny", "server", "initialize", "-"], ["tiny", "client", "tools/call", "rm"],
                                          ["tiny", "server", "tools/call", "echo"]], "each line names its server"
    assert [row[7] for row in rows] == ["allow", "deny", "allow"]
    denied = log_cli("--path", str(audit), "--denied", "--json")
    assert [json.loads(line)["name"] for line in denied.stdout.splitlines()] == ["rm"]
