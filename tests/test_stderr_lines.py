"""Stderr as the user sees it: the server's lines prefixed, cut and capped; mcpbox's own, one line each."""

from __future__ import annotations

from mcpbox.relay.stderr import StderrLines


def test_lines_are_prefixed_across_chunk_boundaries() -> None:
    lines = StderrLines(b"[s] ")
    assert lines.feed(b"one\ntw") == b"[s] one\n"
    assert lines.feed(b"o\r\nthree") == b"[s] two\n"
    assert lines.close() == b"[s] three\n"


def test_long_line_is_cut_once_and_its_rest_dropped() -> None:
    lines = StderrLines(b"> ", line_max=10)
    out = lines.feed(b"x" * 25) + lines.feed(b"y" * 25 + b"\nnext\n")
    assert out == b"> " + b"x" * 10 + b" [line cut by mcpbox]\n> next\n"


def test_stream_stops_at_its_budget_with_one_notice() -> None:
    lines = StderrLines(b"", total_max=20)
    out = lines.feed(b"0123456789\n" * 10)
    assert out.count(b"exceeded its budget") == 1
    assert out.startswith(b"0123456789\n0123456789\n")
    assert lines.feed(b"more\n") == b""


def test_mcpbox_says_one_line_whatever_the_text_holds():
    """A path or a peer's words with a line break cannot start a line that looks like another message."""
    from mcpbox.errors import one_line

    assert one_line("cannot write the audit log /tmp/a\nmcpbox: all is well\r\n") == \
        "mcpbox: cannot write the audit log /tmp/a mcpbox: all is well"
    assert one_line("plain\ttabbed") == "mcpbox: plain\ttabbed"
    assert one_line("host \x1b]0;owned\x07 \x9b") == "mcpbox: host \\x1b]0;owned\\x07 \\x9b", "no control reaches a terminal"
