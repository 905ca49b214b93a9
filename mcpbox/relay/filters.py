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

ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]")
TAGS = "\U000e0000-\U000e007f"
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
FORMAT = "\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff\ufff9-\ufffb"
INVISIBLE_ALWAYS = re.compile(f"[{TAGS}{BIDI}]")
STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # what ANSI left: a lone ESC, a bare CSI
INVISIBLE_ALL = re.compile(f"[{TAGS}{BIDI}{FORMAT}]")
# Raw-byte hints that a message may hold something the result cleaner removes, each led by its first byte: a
# JSON \u escape (the only way an ASCII message can spell ESC or any character past ASCII), C1 CSI, or the
# exact UTF-8 of a tag or bidi character (a bare \xe2\x80 would match every em-dash and curly quote).
# Definitions are cleaned whatever these say.
U_ESCAPE = re.compile(rb"\\u")
SUSPECT_LED = [(b"\\", U_ESCAPE), (b"\xc2", re.compile(rb"\xc2\x9b")), (b"\xd8", re.compile(rb"\xd8\x9c")),
               (b"\xe2", re.compile(rb"\xe2(?:\x80[\x8e\x8f\xaa-\xae]|\x81[\xa6-\xa9])")),
               (b"\xf3", re.compile(rb"\xf3\xa0[\x80\x81]"))]
LEAD_TRIES = 16  # leads checked one by one before the regex scans the rest
SHORT_DATA = 512  # up to this length, one regex of all needles beats a memchr hop per lead (each hop is a call)
COMMON_BYTES = b' etaoinsrhldcu\n.,":mfpgwybv{}[]0123456789kETAOINSRHLDCUMFPGWYBVKxjqzXJQZ'


def suspect(raw: bytes) -> bool:
    """Whether the valid JSON `raw` may hold something `result_cleaner` removes.

    ESC and other C0 controls can only be spelled as escapes there (JSON allows them nowhere
    raw), so an ASCII message needs only the scan for \\u."""
    if raw.isascii():
        return U_ESCAPE.search(raw) is not None
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
SECRET_NAME_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "PASS", "CREDENTIAL", "AUTH", "PRIVATE",
                     "COOKIE", "SESSION", "PAT")
MIN_SECRET_LENGTH = 6
JSON_ESCAPABLE = re.compile(r'["\\/\x00-\x1f]')  # a JSON writer may spell these with a \ escape other than \u


def _literal_part(text: str) -> str:
    """The longest piece of `text` every JSON writer leaves literal (any other spelling uses \\u)."""
    return max(JSON_ESCAPABLE.split(text), key=len)


def says_secret(name: str) -> bool:
    """An environment variable whose name says its value is a secret."""
    words = re.split(r"[^A-Z0-9]+", name.upper())
    return any(word in SECRET_NAME_WORDS for word in words) or any(
        name.upper().endswith(word) for word in ("TOKEN", "KEY", "SECRET", "PASSWORD"))


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


def clean_definition_text(text: str) -> str:
    """What the model may read of a definition: no escapes, no stray controls, nothing invisible."""
    if text.isascii() and not STRAY_CONTROL.search(text):
        return text
    return STRAY_CONTROL.sub("", INVISIBLE_ALL.sub("", ANSI.sub("", text)))


def result_cleaner(keep_ansi: bool) -> Callable[[str], str]:
    def clean(text: str) -> str:
        if text.isascii() and (keep_ansi or "\x1b" not in text):
            return text
        if not keep_ansi and ("\x1b" in text or "\x9b" in text):
            text = ANSI.sub("", text)
        return INVISIBLE_ALWAYS.sub("", text)

    return clean


def walk(value: Any, change: Callable[[str], str], keys: bool = False) -> Any:
    """`value` with `change` applied to every string in it (and to object keys when `keys`)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [walk(item, change, keys) for item in value]
    if isinstance(value, dict):
        return {(change(k) if keys else k): walk(v, change, keys) for k, v in value.items()}
    return value


def fingerprints(definition: dict[str, Any], fields: Iterable[str]) -> dict[str, str]:
    """A hash per field of what the model is told about an item (key order does not matter),
    so that a change can be named by the fields it touched."""
    return {field: _digest(definition[field]) for field in fields if field in definition}


_PIN_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def _digest(value: Any) -> str:
    return hashlib.sha256(_utf8(_PIN_JSON(value))).hexdigest()[:32]


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """A server's line as safe to show on a terminal or in a log: no escapes, no invisible tricks."""
    return CONTROL.sub("\ufffd", INVISIBLE_ALL.sub("", ANSI.sub("", text)))
