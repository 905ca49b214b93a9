"""What the model sees: invisible characters removed, secrets replaced, definitions fingerprinted.

Each string goes through a cheap test before any regex (most strings have
nothing to remove), and a whole raw message is tested first (most messages
need no walk at all), so a large result costs little more than parsing it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

# Unicode's Default_Ignorable_Code_Point, from DerivedCoreProperties.txt of Unicode 16.0 (the same set since 9.0):
# code points a renderer that does not support them shows as nothing. Python's unicodedata has no such property.
DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                     (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
                     (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
                     (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
# The other format characters that draw nothing where they are supported: interlinear annotation marks (the
# annotation between them may be hidden) and Egyptian hieroglyph format controls. The remaining format characters,
# the prepended concatenation marks (U+0600-0605, U+06DD, ...), are drawn, and so stay. Kept on purpose too:
# U+2028/2029 (line breaks, which show as such), spaces of every width (they show as space) and private-use or
# unassigned code points (a glyph of some font or a visible box, never nothing).
ALSO_INVISIBLE = ((0xFFF9, 0xFFFB), (0x13430, 0x1343F))
RAW_CONTROLS = ((0x7F, 0x7F), (0x80, 0x9F))  # the controls JSON may carry unescaped: DEL and C1


def _class(ranges: Iterable[tuple[int, int]], leaving: str = "") -> str:
    """A regex character class body of `ranges` without the characters `leaving` (none of these
    code points is special in a class)."""
    points = sorted({point for first, last in ranges for point in range(first, last + 1)} - set(map(ord, leaving)))
    runs: list[list[int]] = []
    for point in points:
        if runs and runs[-1][1] == point - 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return "".join(chr(first) if first == last else f"{chr(first)}-{chr(last)}" for first, last in runs)


# Real emoji need three of them: U+200D (ZWJ) joining two pictographs (👨‍👩‍👧, ❤️‍🔥, 👩🏽‍💻), one U+FE0E/FE0F
# right after a pictograph (❤️) or a keycap's base (1️⃣), and tags in the three subdivision flags of Unicode's RGI
# set (🏴󠁧󠁢󠁥󠁮󠁧󠁿 🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏴󠁧󠁢󠁷󠁬󠁳󠁿). Nothing else is kept: a second selector after an emoji, a selector after a letter,
# or tags spelling anything else can only carry hidden text (the "emoji smuggling" of bytes as selectors).
# Pictographs: Unicode's Extended_Pictographic (emoji-data.txt), with its supplementary planes taken whole.
PICTOGRAPHIC = ("\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u2388\u23cf"
                "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u2605\u2607-\u2612"
                "\u2614-\u2685\u2690-\u2705\u2708-\u2712\u2714\u2716\u271d\u2721\u2728\u2733\u2734\u2744\u2747"
                "\u274c\u274e\u2753-\u2755\u2757\u2763-\u2767\u2795-\u2797\u27a1\u27b0\u27bf\u2934\u2935"
                "\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"
                "\U0001fc00-\U0001fffd")
_TAG = {ch: chr(0xE0000 + ord(ch)) for ch in "abcdefghijklmnopqrstuvwxyz"}
RGI_FLAGS = "|".join("\U0001f3f4" + "".join(_TAG[ch] for ch in region) + "\U000e007f"
                     for region in ("gbeng", "gbsct", "gbwls"))
INVISIBLE = re.compile(
    f"({RGI_FLAGS})"  # kept: the substitution writes group 1 back, which is empty for every other match
    f"|(?<![{PICTOGRAPHIC}])(?!(?<=[#*0-9])\ufe0f\u20e3)[\ufe0e\ufe0f]"
    f"|(?!(?:(?<=[{PICTOGRAPHIC}])|(?<=[{PICTOGRAPHIC}]\ufe0f))\u200d[{PICTOGRAPHIC}])\u200d"
    f"|[{_class(DEFAULT_IGNORABLE + ALSO_INVISIBLE, leaving=chr(0x200D) + chr(0xFE0E) + chr(0xFE0F))}]")
# ECMA-48's escape grammar, in its 7-bit (ESC Fe) and 8-bit (C1) forms: a control sequence (CSI, parameter,
# intermediate and final bytes); a control string (OSC, DCS, SOS, PM, APC) up to ST, BEL or what starts another
# escape, or to the end of the text; an nF escape (intermediates, then a final byte); an Fp, Fe or Fs escape. A
# sequence cut short loses what it has.
ANSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
                  r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                  r"|\x1b[ -/]+[0-~]?|\x1b[0-~]")
STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # what ANSI left: a lone ESC, ST, any C1
# Raw-byte hints that a message may hold something the result cleaner removes, each led by its first byte: a
# JSON \u, \b or \f escape (the only ways an ASCII message can spell ESC, backspace, form feed or any character
# past ASCII), or the exact UTF-8 of an invisible character or a C1 control (a bare \xe2\x80 would match every
# em-dash and curly quote). Built from the ranges above, so the two cannot drift apart. Definitions are cleaned
# whatever these say.
U_ESCAPE = re.compile(rb"\\[ubf]")


def _utf8_pattern(first: int, last: int) -> bytes:
    """The UTF-8 of first..last as a byte regex: their common prefix, then one byte range and whole
    continuation bytes (every range above is of that shape)."""
    low, high = chr(first).encode(), chr(last).encode()
    common = next(i for i in range(len(low)) if low[i] != high[i]) if low != high else len(low)
    if common == len(low):
        return re.escape(low)
    tail = len(low) - common - 1
    assert low[common + 1:] == b"\x80" * tail and high[common + 1:] == b"\xbf" * tail, (hex(first), hex(last))
    return re.escape(low[:common]) + b"[" + bytes([low[common]]) + b"-" + bytes([high[common]]) + b"]" + (
        b"[\x80-\xbf]" * tail)


def _suspect_led() -> list[tuple[bytes, re.Pattern[bytes]]]:
    by_lead: dict[bytes, list[bytes]] = {b"\\": [U_ESCAPE.pattern]}
    for first, last in DEFAULT_IGNORABLE + ALSO_INVISIBLE + RAW_CONTROLS:
        by_lead.setdefault(chr(first).encode()[:1], []).append(_utf8_pattern(first, last))
    return [(lead, re.compile(b"|".join(patterns))) for lead, patterns in by_lead.items()]


SUSPECT_LED = _suspect_led()
LEAD_TRIES = 16  # leads checked one by one before the regex scans the rest
SHORT_DATA = 512  # up to this length, one regex of all needles beats a memchr hop per lead (each hop is a call)
COMMON_BYTES = b' etaoinsrhldcu\n.,":mfpgwybv{}[]0123456789kETAOINSRHLDCUMFPGWYBVKxjqzXJQZ'


def suspect(raw: bytes) -> bool:
    """Whether the valid JSON `raw` may hold something `result_cleaner` removes.

    ESC and the other C0 controls can only be spelled as escapes there (JSON allows them nowhere
    raw), but DEL may be raw, so an ASCII message needs only the scans for \\u and DEL."""
    if raw.isascii():
        return b"\x7f" in raw or _led_search(raw, b"\\", U_ESCAPE)
    return any(_led_search(raw, lead, pattern) for lead, pattern in SUSPECT_LED)


def _led_search(data: Any, lead: Any, pattern: re.Pattern[Any]) -> bool:
    """Whether `pattern`, which starts with `lead`, occurs in `data`.

    `find` jumps to each lead at memchr speed (~0.7 ms over 16 MiB, where a regex's own scan
    or `needle in data` takes 5-15 ms); a lead that keeps turning up without a match hands
    the rest to the regex, so a frequent lead costs no more than the regex alone."""
    at = data.find(lead)
    for _ in range(LEAD_TRIES):
        if at < 0:
            return False
        if pattern.match(data, at):
            return True
        at = data.find(lead, at + 1)
    return at >= 0 and pattern.search(data, at) is not None


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def needle_search(needles: Iterable[str]) -> Callable[[Any], bool]:
    """`any(needle in data ...)` for str data, or bytes holding their UTF-8, at close to memchr speed.

    Needles are grouped by their rarest character, which leads one regex per group (the
    needles around it as lookbehind and lookahead): `_led_search` finds it with memchr.
    Short data (most messages, most strings) is searched with one alternation of all needles."""
    wanted = [needle for needle in needles if needle]
    if not wanted:
        return lambda data: False
    groups: dict[str, list[tuple[str, str]]] = {}
    for needle in wanted:
        rank = [COMMON_BYTES.find(ch.encode()) if ch.isascii() else -1 for ch in needle]
        pick = min(range(len(needle)), key=lambda i: (rank[i] != -1, -rank[i]))  # not common = rarest
        groups.setdefault(needle[pick], []).append((needle[:pick], needle[pick + 1:]))

    checks: dict[type, list[tuple[Any, re.Pattern[Any]]]] = {str: [], bytes: []}
    for lead, parts in groups.items():  # re.escape leaves non-ASCII alone: a str pattern's UTF-8 is the bytes one
        tails = [(f"(?<={re.escape(before + lead)})" if before else "") + (f"(?={re.escape(after)})" if after else "")
                 for before, after in parts]
        pattern = re.escape(lead) + (f"(?:{'|'.join(tails)})" if all(tails) else "")
        checks[str].append((lead, re.compile(pattern, re.S)))
        checks[bytes].append((_utf8(lead), re.compile(_utf8(pattern), re.S)))
    alternation = "|".join(map(re.escape, wanted))
    short = {str: re.compile(alternation), bytes: re.compile(_utf8(alternation))}

    def search(data: Any) -> bool:
        kind = str if isinstance(data, str) else bytes
        if len(data) <= SHORT_DATA:
            return short[kind].search(data) is not None
        return any(_led_search(data, lead, pattern) for lead, pattern in checks[kind])

    return search


TOKEN_PATTERNS: list[tuple[str, str, str]] = [  # (label, literal prefix, regex)
    ("anthropic-key", "sk-ant-", r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", "sk-", r"sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}"),
    ("github-token", "ghp_", r"ghp_[A-Za-z0-9]{36,}"),
    ("github-token", "gho_", r"gho_[A-Za-z0-9]{36,}"),
    ("github-token", "ghu_", r"ghu_[A-Za-z0-9]{36,}"),
    ("github-token", "ghs_", r"ghs_[A-Za-z0-9]{36,}"),
    ("github-token", "ghr_", r"ghr_[A-Za-z0-9]{36,}"),
    ("github-token", "github_pat_", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("aws-access-key", "AKIA", r"AKIA[0-9A-Z]{16}"),
    ("aws-access-key", "ASIA", r"ASIA[0-9A-Z]{16}"),
    ("slack-token", "xox", r"xox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("slack-webhook", "hooks.slack.com/services/", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    ("google-api-key", "AIza", r"AIza[0-9A-Za-z_\-]{35}"),
    ("stripe-key", "_live_", r"(?:sk|rk)_live_[A-Za-z0-9]{20,}"),
    ("private-key", "-----BEGIN", r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----"),
]
SECRET_NAME_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "CREDENTIAL",
                     "CREDS", "CRED", "AUTH", "PRIVATE", "COOKIE", "SESSION", "PAT", "APIKEY", "DSN", "PIN", "OTP")
# Glued names (DBPASSWORD, GITHUBTOKENS): these endings, singular or plural, say secret wherever the word ends.
SECRET_NAME_ENDINGS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "PWD")
NOT_SECRET_NAMES = {"PWD", "OLDPWD"}  # the shell's working directories
MIN_SECRET_LENGTH = 6
JSON_ESCAPABLE = re.compile(r'["\\/\x00-\x1f]')  # a JSON writer may spell these with a \ escape other than \u


def _literal_part(text: str) -> str:
    """The longest piece of `text` every JSON writer leaves literal (any other spelling uses \\u)."""
    return max(JSON_ESCAPABLE.split(text), key=len)


def says_secret(name: str) -> bool:
    """An environment variable whose name says its value is a secret."""
    upper = name.upper()
    if upper in NOT_SECRET_NAMES:
        return False
    words = re.split(r"[^A-Z0-9]+", upper)
    return any(word in SECRET_NAME_WORDS or word.removesuffix("S") in SECRET_NAME_WORDS for word in words) or \
        upper.endswith(SECRET_NAME_ENDINGS) or upper.removesuffix("S").endswith(SECRET_NAME_ENDINGS)


class Redactor:
    """Replaces secret values and known token shapes with `[redacted:NAME]`; never fails a message."""

    def __init__(self, secrets: dict[str, str], builtin: bool = True, extra: Iterable[str] = ()) -> None:
        self._secrets = sorted(((name, value) for name, value in secrets.items() if len(value) >= MIN_SECRET_LENGTH),
                               key=lambda item: -len(item[1]))
        patterns = list(TOKEN_PATTERNS) if builtin else []
        patterns += [("pattern", "", expression) for expression in extra]
        self._patterns = [(label, prefix, re.compile(expression, re.S)) for label, prefix, expression in patterns]
        needles = [_literal_part(value) for _, value in self._secrets] + [
            _literal_part(prefix) for _, prefix, _ in self._patterns if prefix]
        self._always_walk = any(not prefix for _, prefix, _ in self._patterns) or not all(needles)
        self._has_needle = needle_search(needles)
        # A secret of digits (a PIN, an account number) can also be spelled as a JSON number, whose text holds it.
        self._digits = [(name, value) for name, value in self._secrets if value.isdigit()]
        self.number = self._number if self._digits else None

    def _number(self, value: Any) -> Any:
        """`value` (a JSON number) or, when its text holds a secret of digits, that secret's `[redacted:NAME]`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        text = repr(value)
        for name, digits in self._digits:
            if digits in text:
                return f"[redacted:{name}]"
        return value

    def may_apply(self, raw: bytes) -> bool:
        """False only when no string in the JSON `raw` holds a secret or token, unless a \\u escape spells
        it: the caller walks every message with one (`suspect`)."""
        return self._always_walk or self._has_needle(raw)

    def __call__(self, text: str) -> str:
        if not self._always_walk and not self._has_needle(text):
            return text
        for name, value in self._secrets:
            if value in text:
                text = text.replace(value, f"[redacted:{name}]")
        for label, prefix, pattern in self._patterns:
            if not prefix or prefix in text:
                text = pattern.sub(f"[redacted:{label}]", text)
        return text


def _without_invisible(text: str) -> str:
    return text if text.isascii() else INVISIBLE.sub(r"\1", text)


def _without_escapes(text: str) -> str:
    """Invisible characters go first: one between ESC and the rest of a sequence must not hide it."""
    return ANSI.sub("", _without_invisible(text))


def clean_definition_text(text: str) -> str:
    """What the model may read of a definition: no escapes, no stray controls, nothing invisible."""
    if text.isascii() and not STRAY_CONTROL.search(text):
        return text
    return STRAY_CONTROL.sub("", _without_escapes(text))


def result_cleaner(keep_ansi: bool) -> Callable[[str], str]:
    """A result is cleaned as a definition is, but with `keep_ansi` its escapes and controls stay
    (a terminal-minded client shows the colours)."""
    return _without_invisible if keep_ansi else clean_definition_text


def walk(value: Any, change: Callable[[str], str], keys: bool = False,
         number: Callable[[Any], Any] | None = None) -> Any:
    """`value` with `change` applied to every string in it (and to object keys when `keys`), and `number`
    to every number."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [walk(item, change, keys, number) for item in value]
    if isinstance(value, dict):
        return {(change(k) if keys else k): walk(v, change, keys, number) for k, v in value.items()}
    return value if number is None else number(value)


def fingerprints(definition: dict[str, Any], fields: Iterable[str]) -> dict[str, str]:
    """A hash per field of what the model is told about an item (key order does not matter),
    so that a change can be named by the fields it touched."""
    return {field: _digest(definition[field]) for field in fields if field in definition}


_PIN_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def _digest(value: Any) -> str:
    return hashlib.sha256(_utf8(_PIN_JSON(value))).hexdigest()[:32]


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """A server's line as safe to show on a terminal or in a log: no escapes, no invisible tricks;
    a control left over is shown as U+FFFD, so the user sees that something was there."""
    return CONTROL.sub("\ufffd", _without_escapes(text))
