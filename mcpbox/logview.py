"""`mcpbox log`: the audit log for people, as a table or as the JSON lines that match.

The log (mcpbox.audit) holds two shapes of line, each with its "time":

- the relay's decisions: direction, method, id, decision, and name, rule, bytes, response_bytes,
  duration_ms, arguments where they apply;
- events: {"event": "pin"} (a definition that changed: direction, kind, name, decision "hide", rule,
  fields), "egress" (a connection through the proxy: kind, host, port, address, decision, rule or reason,
  sent, received, seconds), "provenance" (ecosystem, package, policy, decision, found and detail, or reason)
  and "verify" (artifact, bundle, decision, identity, issuer, sha256, ... or reason).

A relay line and an egress line name their server (its profile's name, "server"); a provenance line names its
package and a verify line its artifact. `--server` selects on those and says how many lines it could not place.

Everything here but `main` and the reading is pure: a line in, a row out, rows in, text out. Every cell is
made printable (a peer chose some of these texts: a control or invisible character is shown escaped, never
sent to the terminal).

No `from __future__ import annotations`: a NamedTuple would compile its string annotations (test_profile).
"""

import fnmatch
import json
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, NamedTuple

from mcpbox.errors import UsageError, say

HEADER = ("TIME", "SERVER", "DIR", "METHOD", "ITEM", "DECISION", "RULE")
MAX_WIDTHS = (15, 24, 6, 28, 40, 8)  # every column but the last, which is never cut
FIXED_WIDTHS = (15, 12, 6, 24, 32, 8)  # when rows stream (--follow, long logs): no look ahead
STREAM_AFTER = 5000  # rows held to size the columns before the table streams at fixed widths
DENIED = frozenset({"deny", "drop", "hide", "error"})
FOLLOW_LINES = 10
POLL_SECONDS = 0.2

RESET = "\x1b[0m"
DECISION_COLOURS = {"allow": "\x1b[32m", "filter": "\x1b[36m", "cancel": "\x1b[35m", "drop": "\x1b[33m",
                    "hide": "\x1b[33m", "deny": "\x1b[1;31m", "error": "\x1b[31m"}
DIM = "\x1b[2m"
BOLD = "\x1b[1m"

SPANS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
# What str.isprintable() lets through that renders as nothing: variation selectors, the Hangul fillers, the
# Mongolian free variation selectors, the combining grapheme joiner, the Khmer inherent vowels.
INVISIBLE = frozenset([*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0), 0x115F, 0x1160, 0x3164, 0xFFA0,
                       0x180B, 0x180C, 0x180D, 0x180F, 0x034F, 0x17B4, 0x17B5])


class Entry(NamedTuple):
    raw: bytes  # the line as it is in the log, without its newline
    record: dict[str, Any]
    moment: float  # seconds since the epoch


class Query(NamedTuple):
    denied: bool = False
    server: str | None = None  # a glob
    since: float | None = None  # seconds since the epoch


# -- pure: lines, rows, the table ----------------------------------------------------------------------


def parse(raw: bytes) -> Entry | None:
    """A line of the log, or None when it is not a JSON object with a readable "time"."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("time"), str):
        return None
    try:
        moment = datetime.fromisoformat(record["time"])
    except ValueError:
        return None
    if moment.tzinfo is None:  # mcpbox writes UTC ("...Z")
        moment = moment.replace(tzinfo=timezone.utc)
    return Entry(raw, record, moment.timestamp())


def server_of(record: dict[str, Any]) -> str | None:
    """What names the server a line is about, when the line says."""
    for key in ("server", "profile"):
        if isinstance(record.get(key), str) and record[key]:
            return record[key]
    event = record.get("event")
    if event == "provenance" and isinstance(record.get("package"), str):
        package = record["package"]
        at = package.rfind("@")
        return package[:at] if at > 0 else package  # '@scope/name@1.2.3' -> '@scope/name'
    if event == "verify" and isinstance(record.get("artifact"), str):
        return os.path.basename(record["artifact"].rstrip("/")) or record["artifact"]
    return None


def matches(entry: Entry, query: Query) -> bool:
    record = entry.record
    if query.since is not None and entry.moment < query.since:
        return False
    if query.denied and record.get("decision") not in DENIED:
        return False
    if query.server is not None:
        server = server_of(record)
        if server is None or not (fnmatch.fnmatchcase(server, query.server)
                                  or fnmatch.fnmatchcase(server.rsplit("/", 1)[-1], query.server)):
            return False
    return True


def row(record: dict[str, Any], moment: float) -> tuple[str, ...]:
    """The table's cells for one line: time, server, direction, method, item, decision, rule."""
    event = record.get("event")
    method = record.get("method") if record.get("method") is not None else event
    item: Any = record.get("name")
    rule: Any = record.get("rule") or record.get("reason")
    if event == "pin":
        item = f"{record.get('kind', '')} {item}" if item is not None else record.get("kind")
        fields = record.get("fields")
        if rule and isinstance(fields, list) and fields:
            rule = f"{rule} ({', '.join(str(field) for field in fields)})"
    elif event == "egress":
        host, port = record.get("host"), record.get("port")
        if host is not None:
            host = f"[{host}]" if ":" in str(host) else host
            item = f"{host}:{port}" if port is not None else host
    elif event == "provenance":
        item = record.get("package")
        rule = rule or record.get("found")
    elif event == "verify":
        item = record.get("identity") or record.get("artifact")
    return (format_time(moment), _cell(server_of(record)), _cell(record.get("direction")), _cell(method),
            _cell(item), _cell(record.get("decision")), "" if rule is None else printable(str(rule)))


def format_time(moment: float) -> str:
    """Local time, short: 'Dec 04 16:49:03'."""
    return time.strftime("%b %d %H:%M:%S", time.localtime(moment))


def printable(text: str) -> str:
    """`text` safe for a terminal, one line: controls and invisible characters shown as escapes."""
    if text.isprintable() and not any(ord(char) in INVISIBLE for char in text):
        return text
    return "".join(char if char.isprintable() and ord(char) not in INVISIBLE else _escape(char) for char in text)


def format_table(rows: Iterable[tuple[str, ...]], colour: bool, widths: tuple[int, ...] | None = None,
                 header: bool = True) -> list[str]:
    """The table's lines. Without `widths` each column is as wide as its widest cell (up to MAX_WIDTHS);
    a longer cell is cut with '…'. The last column is never padded or cut. Colour: escapes only around cells."""
    rows = list(rows)
    widths = widths or column_widths(rows)
    lines = [format_row(HEADER, colour, widths, header=True)] if header else []
    lines += [format_row(cells, colour, widths) for cells in rows]
    return lines


def column_widths(rows: list[tuple[str, ...]]) -> tuple[int, ...]:
    """Each column as wide as its header or widest cell, up to MAX_WIDTHS (all but the last column)."""
    return tuple(min(cap, max([len(HEADER[index]), *(len(cells[index]) for cells in rows)]))
                 for index, cap in enumerate(MAX_WIDTHS))


def format_row(cells: tuple[str, ...], colour: bool, widths: tuple[int, ...], header: bool = False) -> str:
    fitted = [_fit(cell, width) for cell, width in zip(cells, widths)]
    shown = [text.ljust(width) for text, width in zip(fitted, widths)] + [cells[-1]]
    if colour:
        if header:
            return BOLD + "  ".join(shown).rstrip() + RESET
        for index, paint in ((0, DIM), (5, DECISION_COLOURS.get(cells[5]))):
            if paint:  # the escapes around the text, the padding outside: the columns stay where they are
                shown[index] = paint + fitted[index] + RESET + " " * (widths[index] - len(fitted[index]))
    return "  ".join(shown).rstrip()


def parse_since(text: str, now: float) -> float:
    """'30s', '10m', '2h', '1d', '1w' ago, or an ISO date or time (local unless it names its zone)."""
    words = text.strip().lower()
    span = SPAN.fullmatch(words)
    if span and span.group(2) in SPANS:
        return now - float(span.group(1)) * SPANS[span.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: give a span like 30s, 10m, 2h, 1d, 1w, or an ISO time like "
                         "2026-01-31T09:00") from None
    return moment.timestamp()  # a naive time is local


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else printable(str(value))


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# -- reading the log ----------------------------------------------------------------------------------------


class Tally:
    """What was left out, said at the end on stderr."""

    def __init__(self) -> None:
        self.malformed = 0
        self.nameless = 0  # lines --server could not place

    def say(self, query: Query) -> None:
        if self.malformed:
            say(f"skipped {self.malformed} malformed line(s) (not a JSON object with a time)")
        if query.server is not None and self.nameless:
            say(f"{self.nameless} line(s) name no server (written by an mcpbox before it named them, or by a check "
                "of no server); --server left them out")


def log_files(path: str) -> list[str]:
    """The log and its rotated files (path.1 is the newest of those), oldest first."""
    rotated = []
    index = 1
    while os.path.exists(f"{path}.{index}"):
        rotated.append(f"{path}.{index}")
        index += 1
    return [*reversed(rotated), *([path] if os.path.exists(path) else [])]


def select(lines: Iterable[bytes], query: Query, tally: Tally) -> Iterator[Entry]:
    """The lines that parse and match, in order; the others counted."""
    for raw in lines:
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        entry = parse(raw)
        if entry is None:
            tally.malformed += 1
        elif matches(entry, query):
            yield entry
        elif query.server is not None and server_of(entry.record) is None:
            tally.nameless += matches(entry, query._replace(server=None))


def _file_lines(path: str, since: float | None) -> Iterator[bytes]:
    try:
        with open(path, "rb") as handle:
            if since is not None and os.fstat(handle.fileno()).st_mtime < since:
                return  # last written before --since: nothing in it can match
            yield from handle
    except FileNotFoundError:
        return  # rotated away while the log was read


class Output:
    """The table or the JSON lines on stdout. The table's columns are sized by the rows of a short log, or by
    the first STREAM_AFTER rows of a long one; when following, they are fixed from the start."""

    def __init__(self, as_json: bool, colour: bool, follow: bool) -> None:
        self.as_json = as_json
        self.colour = colour
        self.rows: list[tuple[str, ...]] = []
        self.widths: tuple[int, ...] | None = FIXED_WIDTHS if follow else None
        self.header_due = not as_json

    def add(self, entry: Entry) -> None:
        if self.as_json:
            sys.stdout.buffer.write(entry.raw + b"\n")
            return
        self.rows.append(row(entry.record, entry.moment))
        if self.widths is None and len(self.rows) >= STREAM_AFTER:
            self.widths = column_widths(self.rows)

    def flush(self) -> None:
        """Write what is held (the header first, when there is anything to head) and flush stdout."""
        if self.rows or self.header_due and self.widths is not None:
            widths = self.widths or column_widths(self.rows)
            text = format_table(self.rows, self.colour, widths, header=self.header_due)
            self.header_due = False
            self.rows = []
            sys.stdout.write("".join(line + "\n" for line in text))
        sys.stdout.flush()


class _Stop(Exception):
    """SIGTERM while following: the end, as after Ctrl-C."""


def main(args: Any) -> int:
    path = os.path.expanduser(args.path) if args.path else _default_path()
    query = Query(denied=args.denied, server=args.server,
                  since=parse_since(args.since, time.time()) if args.since else None)
    if args.lines is not None and args.lines < 0:
        raise UsageError("--lines: give a number of lines, 0 or more")
    last = args.lines if args.lines is not None else FOLLOW_LINES if args.follow else None
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    output = Output(args.json, bool(colour), args.follow)
    tally = Tally()
    try:
        if args.follow:
            return _follow(path, query, last, output, tally)
        files = log_files(path)
        if not files:
            say(f"no audit log at {path} (nothing was recorded yet; a profile's [audit] path names another file: "
                "--path FILE)")
            return 1
        lines = (line for name in files for line in _file_lines(name, query.since if name != path else None))
        entries: Iterable[Entry] = select(lines, query, tally)
        if last is not None:
            entries = deque(entries, maxlen=last)
        for entry in entries:
            output.add(entry)
            if len(output.rows) >= STREAM_AFTER:
                output.flush()
        output.flush()
        return 0
    except BrokenPipeError:  # `mcpbox log | head`: the reader has all it wanted
        _quiet_stdout()
        return 0
    finally:
        tally.say(query)


def _follow(path: str, query: Query, last: int | None, output: Output, tally: Tally) -> int:
    """What the log holds (the last `last` lines that match), then each new line as it is written. A rotated
    log is read to its end and its new file followed from the start; a truncated one from the start; a
    missing one is waited for."""
    def stop(signum: int, frame: Any) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    split = _Splitter()
    handle = _open(path)
    earlier = [name for name in log_files(path) if name != path]
    held = [line for name in earlier for line in _file_lines(name, query.since)]
    if handle is not None:
        held += split.feed(_drain(handle))
    shown: Iterable[Entry] = select(held, query, tally)
    if last is not None:
        shown = deque(shown, maxlen=last)
    for entry in shown:
        output.add(entry)
    output.flush()
    try:
        while True:
            chunk = handle.read(1 << 16) if handle is not None else b""
            if chunk:
                for entry in select(split.feed(chunk), query, tally):
                    output.add(entry)
                output.flush()
                continue
            if handle is None:
                handle = _open(path)
            elif _replaced(path, handle):
                for entry in select([*split.feed(_drain(handle)), *split.end()], query, tally):
                    output.add(entry)
                output.flush()
                handle.close()
                handle = _open(path)
            elif _truncated(path, handle):
                handle.seek(0)
                split.end()
            if handle is None or not _has_more(handle):
                time.sleep(POLL_SECONDS)
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        if handle is not None:
            handle.close()


class _Splitter:
    """Chunks into whole lines; an unfinished last line waits for the rest."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        *whole, self.pending = (self.pending + chunk).split(b"\n")
        return whole

    def end(self) -> list[bytes]:
        """The unfinished line, at the end of its file (counted as malformed if it does not parse)."""
        rest, self.pending = self.pending, b""
        return [rest] if rest else []


def _open(path: str) -> Any:
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        return None


def _drain(handle: Any) -> bytes:
    return b"".join(iter(lambda: handle.read(1 << 20), b""))


def _replaced(path: str, handle: Any) -> bool:
    """The path names another file than the one followed (rotated: a new log was started)."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False  # rotated and not yet written again, or removed: what was opened may still grow
    opened = os.fstat(handle.fileno())
    return (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino)


def _truncated(path: str, handle: Any) -> bool:
    return os.fstat(handle.fileno()).st_size < handle.tell()


def _has_more(handle: Any) -> bool:
    return os.fstat(handle.fileno()).st_size > handle.tell()


def _default_path() -> str:
    from mcpbox import audit

    return audit.default_path()


def _quiet_stdout() -> None:
    """After a broken pipe, the interpreter's own flush at exit must not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
