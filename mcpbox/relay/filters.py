"""What the model sees: invisible characters removed, secrets replaced, definitions fingerprinted.

Each string goes through a cheap test before any regex (most strings have
nothing to remove), and a whole raw message is tested first (most messages
need no walk at all), so a large result costs little more than parsing it.
"""

import functools
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
# Each removal takes a whole run (after its first, no selector or joiner of a run can be kept), so a text made
# of them costs one match, not one per character (~0.4 µs each: 16 MiB of U+00AD took 7 s).
INVISIBLE = re.compile(
    f"({RGI_FLAGS})"  # kept: the substitution writes group 1 back, which is empty for every other match
    f"|(?<![{PICTOGRAPHIC}])(?!(?<=[#*0-9])\ufe0f\u20e3)[\ufe0e\ufe0f]+"
    f"|(?!(?:(?<=[{PICTOGRAPHIC}])|(?<=[{PICTOGRAPHIC}]\ufe0f))\u200d[{PICTOGRAPHIC}])\u200d+"
    f"|[{_class(DEFAULT_IGNORABLE + ALSO_INVISIBLE, leaving=chr(0x200D) + chr(0xFE0E) + chr(0xFE0F))}]+")
# ECMA-48's escape grammar, in its 7-bit (ESC Fe) and 8-bit (C1) forms: a control sequence (CSI, parameter,
# intermediate and final bytes); a control string (OSC, DCS, SOS, PM, APC) up to ST, BEL or what starts another
# escape, or to the end of the text; an nF escape (intermediates, then a final byte); an Fp, Fe or Fs escape. A
# sequence cut short loses what it has. Every form starts with one character of a class, then tells by a
# lookbehind which it was: sre then skips to that class in C (a branch per form tried everywhere: 30 ns a character).
ANSI = re.compile(r"[\x1b\x90\x98\x9b\x9d-\x9f](?:(?:(?<=\x1b)\[|(?<=\x9b))[0-?]*[ -/]*[@-~]?"
                  r"|(?:(?<=\x1b)[\]PX^_]|(?<=[\x90\x98\x9d-\x9f]))[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                  r"|(?<=\x1b)[ -/]+[0-~]?|(?<=\x1b)[0-~])")
STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # what ANSI left: a lone ESC, ST, any C1
STRAY_CONTROLS = re.compile(STRAY_CONTROL.pattern + "+")  # removed a run at a time
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


def _utf8_needles(first: int, last: int) -> list[bytes]:
    """The UTF-8 of first..last as literal byte strings, without the trailing bytes that may be any
    continuation byte (valid UTF-8 always has them): 32 for U+0080-009F, one (F3 A0) for the 4096 tags."""
    low, high = chr(first).encode(), chr(last).encode()
    end = len(low)
    while end > 1 and low[end - 1] == 0x80 and high[end - 1] == 0xBF:
        end -= 1
    common = next((i for i in range(end) if low[i] != high[i]), end - 1)
    return [low[:common] + bytes([byte]) for byte in range(low[common], high[common] + 1)]


class Led:
    """Needles sharing a lead character. At each lead, `pattern` (which starts with it) tells whether
    one of them starts there; `needles` are the same as literals, (index of the lead, needle), for
    when the lead is everywhere. (A plain class: a NamedTuple costs ~0.1 ms to make, on every launch.)"""

    __slots__ = ("lead", "pattern", "needles")

    def __init__(self, lead: Any, pattern: re.Pattern[Any], needles: tuple[tuple[int, Any], ...]) -> None:
        self.lead = lead
        self.pattern = pattern
        self.needles = needles


def _suspect_led() -> list[Led]:
    """The ASCII message's lead (backslash) first."""
    by_lead: dict[bytes, tuple[list[bytes], list[bytes]]] = {b"\\": ([U_ESCAPE.pattern], [b"\\u", b"\\b", b"\\f"])}
    for first, last in DEFAULT_IGNORABLE + ALSO_INVISIBLE + RAW_CONTROLS:
        patterns, literals = by_lead.setdefault(chr(first).encode()[:1], ([], []))
        patterns.append(_utf8_pattern(first, last))
        literals += _utf8_needles(first, last)
    return [Led(lead, re.compile(b"|".join(patterns)),
                tuple((0, needle) for needle in literals))
            for lead, (patterns, literals) in by_lead.items()]


SUSPECT_LED = _suspect_led()
LEAD_TRIES = 16  # hits of a lead (or anchor) checked one by one before the search turns to a rarer character
SHORT_NEEDLE = 3  # up to this length, a needle's last resort is a literal regex rather than `find`
SHORT_DATA = 512  # up to this length, one regex of all needles beats a memchr hop per lead (each hop is a call)
COMMON_BYTES = b' etaoinsrhldcu\n.,":mfpgwybv{}[]0123456789kETAOINSRHLDCUMFPGWYBVKxjqzXJQZ'


def suspect(raw: bytes) -> bool:
    """Whether the valid JSON `raw` may hold something `result_cleaner` removes.

    ESC and the other C0 controls can only be spelled as escapes there (JSON allows them nowhere
    raw), but DEL may be raw, so an ASCII message needs only the scans for \\u and DEL."""
    if raw.isascii():
        return b"\x7f" in raw or _led_search(raw, SUSPECT_LED[0])
    return any(_led_search(raw, led) for led in SUSPECT_LED)


def _led_search(data: Any, led: Led) -> bool:
    """Whether one of `led`'s needles occurs in `data`.

    `find` jumps to each lead at memchr speed (~0.7 ms over 16 MiB, where a regex's own scan
    or `needle in data` takes 5-15 ms) and the pattern tells there whether a needle starts. A
    lead that keeps turning up without a match (a payload made of it) hands each needle to
    `_needle_from`: the pattern tried at every position would cost 0.1-1 µs each."""
    at = data.find(led.lead)
    for _ in range(LEAD_TRIES):
        if at < 0:
            return False
        if led.pattern.match(data, at):
            return True
        at = data.find(led.lead, at + 1)
    return at >= 0 and any(_needle_from(data, needle, max(0, at - lead_at)) for lead_at, needle in led.needles)


def _needle_from(data: Any, needle: Any, start: int) -> bool:
    """Whether `needle` starts in `data` at `start` or later, in time linear in `len(data)` whatever it holds.

    Each anchor (`_anchors`) is hopped to with memchr and the needle checked there; one that keeps turning
    up gives way to the next from where it got to (no needle starts before: each was checked).
    When all of them are frequent, a linear search does the rest: sre's literal search, 2-3 times
    faster than `find` (Horspool, 1-3 ns a byte) on short needles and as many times slower on long ones."""
    for index, char in _anchors(needle):
        at = data.find(char, start + index)
        for _ in range(LEAD_TRIES):
            if at < 0:
                return False
            if data.startswith(needle, at - index):
                return True
            at = data.find(char, at + 1)
        if at < 0:
            return False
        start = at - index
    if len(needle) <= SHORT_NEEDLE:
        return re.compile(re.escape(needle)).search(data, start) is not None
    return data.find(needle, start) >= 0


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def needle_search(needles: Iterable[str]) -> Callable[[Any], bool]:
    """`any(needle in data ...)` for str data, or bytes holding their UTF-8, at close to memchr speed,
    and linear whatever the data.

    Needles are grouped by their rarest character, which leads one regex per group (the
    needles around it as lookbehind and lookahead): `_led_search` finds it with memchr.
    Short data (most messages, most strings) is searched with one alternation of all needles."""
    wanted = [needle for needle in needles if needle]
    if not wanted:
        return lambda data: False
    groups: dict[str, list[tuple[str, str]]] = {}
    for needle in wanted:
        pick = min(range(len(needle)), key=lambda i: _rarity(needle[i]))
        groups.setdefault(needle[pick], []).append((needle[:pick], needle[pick + 1:]))

    checks: dict[type, list[Led]] = {str: [], bytes: []}
    for lead, parts in groups.items():  # re.escape leaves non-ASCII alone: a str pattern's UTF-8 is the bytes one
        tails = [(f"(?<={re.escape(before + lead)})" if before else "") + (f"(?={re.escape(after)})" if after else "")
                 for before, after in parts]
        pattern = re.escape(lead) + (f"(?:{'|'.join(tails)})" if all(tails) else "")
        checks[str].append(Led(lead, re.compile(pattern, re.S), tuple(
            (len(before), before + lead + after) for before, after in parts)))
        checks[bytes].append(Led(_utf8(lead), re.compile(_utf8(pattern), re.S), tuple(
            (len(_utf8(before)), _utf8(before + lead + after)) for before, after in parts)))
    alternation = "|".join(map(re.escape, wanted))
    short = {str: re.compile(alternation), bytes: re.compile(_utf8(alternation))}

    def search(data: Any) -> bool:
        kind = str if isinstance(data, str) else bytes
        if len(data) <= SHORT_DATA:
            return short[kind].search(data) is not None
        return any(_led_search(data, led) for led in checks[kind])

    return search


def _rarity(char: Any) -> tuple[bool, int]:
    """How common `char` (a character, or a byte of UTF-8) is in text, rarest lowest: one that is not
    in COMMON_BYTES (an ASCII symbol, a control, anything past ASCII) is rarest."""
    place = COMMON_BYTES.find(char.encode() if isinstance(char, str) else char) if char.isascii() else -1
    return place != -1, -place


@functools.lru_cache(maxsize=1024)
def _anchors(needle: Any) -> tuple[tuple[int, Any], ...]:
    """(index, character) of each distinct character of `needle`, rarest first; among the equally rare
    (bytes past ASCII), the later first: the last byte of a UTF-8 sequence tells it from its neighbours.
    Made when first needed (a payload that defeats a lead), not with each Redactor."""
    seen = set()
    anchors = []
    for index in sorted(range(len(needle)), key=lambda i: (_rarity(needle[i:i + 1]), -i)):
        char = needle[index:index + 1]
        if char not in seen:
            seen.add(char)
            anchors.append((index, char))
    return tuple(anchors)


def _holds(text: Any, needle: Any) -> bool:
    """`needle in text`, at memchr speed when a character of `needle` is rare in `text`, and linear
    whatever `text` holds (`find` is Horspool: 1-3 ns a byte over 16 MiB for a short needle)."""
    return needle in text if len(text) <= SHORT_DATA else _needle_from(text, needle, 0)


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
            if _holds(text, value):
                text = text.replace(value, f"[redacted:{name}]")
        for label, prefix, pattern in self._patterns:
            if not prefix or _holds(text, prefix):
                text = pattern.sub(f"[redacted:{label}]", text)
        return text


def _without_invisible(text: str) -> str:
    return text if text.isascii() else INVISIBLE.sub(r"\1", text)


def _without_escapes(text: str) -> str:
    """Invisible characters go first: one between ESC and the rest of a sequence must not hide it.
    ASCII text without ESC has none (C1 controls are past ASCII): memchr says so."""
    text = _without_invisible(text)
    return text if text.isascii() and "\x1b" not in text else ANSI.sub("", text)


def clean_definition_text(text: str) -> str:
    """What the model may read of a definition: no escapes, no stray controls, nothing invisible."""
    if text.isascii() and not STRAY_CONTROL.search(text):
        return text
    return STRAY_CONTROLS.sub("", _without_escapes(text))


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
