"""The prefilters and cleaners on adversarial data: the same answers as the obvious code, whatever the payload.

Their speed on such payloads (one lead byte repeated, base64, hex dumps) is measured by scripts/bench_relay;
here only what they answer: a search that leaves a frequent lead for rarer characters must still find every
needle wherever it sits, and a cleaner that removes a run at a time must remove exactly what one character at
a time did.
"""

from __future__ import annotations

import json
import os
import re
import select

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpbox.relay import filters
from mcpbox.relay.pump import Sink

CHECKS = settings(max_examples=int(os.environ.get("MCPBOX_FUZZ_EXAMPLES", "400")), deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PREFIXES = [prefix for _, prefix, _ in filters.TOKEN_PATTERNS]
SIZE = 4 * filters.SHORT_DATA  # past SHORT_DATA: the led search, not the one regex
# Positions around the points where the search changes strategy (LEAD_TRIES hits of a lead, then of each anchor).
PLACES = sorted({0, 1, 2, filters.LEAD_TRIES - 1, filters.LEAD_TRIES, filters.LEAD_TRIES + 1, 2 * filters.LEAD_TRIES,
                 3 * filters.LEAD_TRIES + 2, SIZE // 2, SIZE - 30, SIZE - 12})


def _fillers(needles: list[str]) -> list[str]:
    """Every character of the needles, each the filler of a payload made of it alone (its hits never stop)."""
    return sorted({char for needle in needles for char in needle} | {"\u2014", "\\"})


@pytest.mark.parametrize("filler", _fillers(PREFIXES + ["hunter2-secret"]))
def test_needle_search_finds_every_needle_anywhere_in_a_payload_of_one_character(filler):
    needles = PREFIXES + ["hunter2-secret"]
    search = filters.needle_search(needles)
    for needle in needles:
        for place in PLACES:
            text = filler * place + needle + filler * (SIZE - place)
            for data in (text, text.encode()):
                assert search(data), (needle, place, filler)
    blank = filler * SIZE
    expected = any(needle in blank for needle in needles)
    assert search(blank) == expected and search(blank.encode()) == expected


# Text made of the needles' own characters (so every lead and anchor turns up often) and a few others.
alphabet = st.sampled_from(sorted(set("".join(PREFIXES)) | set("xo-_kAIS é—\\")))
short_needles = st.lists(st.text(alphabet, min_size=1, max_size=6), min_size=1, max_size=5)


@CHECKS
@given(needles=short_needles, pieces=st.lists(st.text(alphabet, max_size=40) | short_needles.map("".join),
                                               max_size=30),
       repeat=st.integers(1, 120))
def test_needle_search_answers_as_in_does(needles, pieces, repeat):
    """Random needles in text of their own characters, long enough (the pieces repeated) for every strategy."""
    search = filters.needle_search(needles)
    text = "".join(pieces) * repeat
    assert search(text) == any(needle in text for needle in needles)
    assert search(text.encode()) == any(needle.encode() in text.encode() for needle in needles)


# What `suspect` looks for, one character a range (the first of it), and fillers sharing their leading bytes.
SUSPECTS = [chr(first) for first, _ in filters.DEFAULT_IGNORABLE + filters.ALSO_INVISIBLE + filters.RAW_CONTROLS] + [
    chr(last) for _, last in filters.DEFAULT_IGNORABLE + filters.ALSO_INVISIBLE + filters.RAW_CONTROLS]
LOOKALIKES = ["\u2014", "\u2019", "\u00a3", "\u00e9", "\u2070", "\u17b6", "\ufe10", "\ufffd", "\U0001d17b",
              "\U000f0000", "\u034e", "\\", "b", "f", "u", "x"]


def _reference_suspect(raw: bytes) -> bool:
    """`suspect` as one regex of every led pattern, searched whole (slow on a frequent lead, simply right)."""
    return any(led.pattern.search(raw) for led in filters.SUSPECT_LED)


@pytest.mark.parametrize("filler", LOOKALIKES)
def test_suspect_finds_an_invisible_character_anywhere_in_a_payload_of_its_lookalike(filler):
    for hidden in SUSPECTS + ["\x1b", "\b", "\f"]:
        for place in PLACES:
            raw = json.dumps({"text": filler * place + hidden + filler * (SIZE - place)}, ensure_ascii=False).encode()
            assert filters.suspect(raw), (hex(ord(hidden)), place, filler)
    raw = json.dumps({"text": filler * SIZE}, ensure_ascii=False).encode()
    assert filters.suspect(raw) == _reference_suspect(raw)


@CHECKS
@given(pieces=st.lists(st.sampled_from(LOOKALIKES + SUSPECTS + ["\\u", "\\b", "\n", "a"]), max_size=40),
       repeat=st.integers(1, 200), ascii_only=st.booleans())
def test_suspect_answers_as_its_patterns_do(pieces, repeat, ascii_only):
    raw = json.dumps({"text": "".join(pieces) * repeat}, ensure_ascii=ascii_only).encode()
    assert filters.suspect(raw) == _reference_suspect(raw)


def test_utf8_needles_spell_each_range_in_valid_utf8():
    """The literals a frequent lead falls back to match exactly the UTF-8 of their range."""
    for first, last in filters.DEFAULT_IGNORABLE + filters.ALSO_INVISIBLE + filters.RAW_CONTROLS:
        needles = filters._utf8_needles(first, last)
        for point in {first, last, (first + last) // 2, first - 1, last + 1}:
            inside = first <= point <= last
            assert any(chr(point).encode().startswith(needle) for needle in needles) == inside, hex(point)


# The cleaners, against their one-character-at-a-time forms: the same text out.
ONE_AT_A_TIME = {
    "invisible": re.compile(filters.INVISIBLE.pattern.replace("]+", "]").replace("\u200d+", "\u200d")),
    "ansi": re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
                       r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                       r"|\x1b[ -/]+[0-~]?|\x1b[0-~]"),
}
EMOJI_PARTS = ["\U0001f600", "\u2764", "1", "#", "\u20e3", "\ufe0f", "\ufe0e", "\u200d", "\U000e0067", "\U000e007f",
               "\U0001f3f4", "\u00ad", "\u200b", "\u2060", "a", "\x7f", "\x85"]
ESCAPE_PARTS = ["\x1b", "[", "]", "P", "X", "^", "_", "\\", "\x07", "\x9c", "\x90", "\x98", "\x9b", "\x9d", "\x9f",
                "0", "?", " ", "/", "@", "~", "m", ";", "\x7f", "é"]


@CHECKS
@given(parts=st.lists(st.sampled_from(EMOJI_PARTS + ["\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e"
                                                     "\U000e0067\U000e007f"]), max_size=30))
def test_invisible_runs_go_as_single_characters_did(parts):
    text = "".join(parts)
    assert filters.INVISIBLE.sub(r"\1", text) == ONE_AT_A_TIME["invisible"].sub(r"\1", text)


@CHECKS
@given(parts=st.lists(st.sampled_from(ESCAPE_PARTS), max_size=30))
def test_escapes_go_as_before(parts):
    text = "".join(parts)
    assert filters.ANSI.sub("", text) == ONE_AT_A_TIME["ansi"].sub("", text)
    assert filters.clean_definition_text(text) == filters.STRAY_CONTROL.sub("", ONE_AT_A_TIME["ansi"].sub(
        "", ONE_AT_A_TIME["invisible"].sub(r"\1", text)))


def test_redactor_redacts_a_token_among_its_prefix_repeated():
    redact = filters.Redactor({"PASS": "hunter2-secret"})
    for filler in ("x", "o", "-", "_", "s", "k", "A", "h"):
        token = "xoxb-" + "1234567890ab"
        text = filler * 500 + token + " hunter2-secret " + filler * 500
        assert redact(text) == filler * 500 + "[redacted:slack-token] [redacted:PASS] " + filler * 500


def test_sink_delivers_what_it_queued_in_order():
    """What the pipe could not take is queued as views of the bytes sent (never copied); a bytearray
    changed after it was sent does not change what is written."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    try:
        sink = Sink(write_end, "a pipe")
        changing = bytearray(b"kept as sent\n")
        pieces = [os.urandom(100_000), b"line\n", changing, os.urandom(300_000)]
        sink.send(pieces[:2])
        sink.send(pieces[2:])
        changing[:4] = b"LOST"
        received = bytearray()
        while len(received) < sum(map(len, pieces)):
            select.select([read_end], [], [], 1)
            received += os.read(read_end, 1 << 20)
            sink.flush()
        assert bytes(received) == b"".join(pieces[:2]) + b"kept as sent\n" + pieces[3]
        assert sink.pending == 0 and not sink.queue
    finally:
        os.close(read_end)
        os.close(write_end)
