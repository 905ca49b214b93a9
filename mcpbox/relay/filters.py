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
# Raw-byte hints that a message may hold something to remove: ESC, DEL or a C1 control, a JSON \u, \b or \f escape,
# or the exact UTF-8 of the characters above (a bare \xe2\x80 lead would match every em-dash and curly quote).
SUSPECT_BYTES = re.compile(rb"\x1b|\x7f|\\[bfu]|\xc2[\x80-\x9f\xad]|\xd8\x9c|\xe1\xa0\x8e|\xe2\x80[\x8b-\x8f\xaa-\xae]"
                           rb"|\xe2\x81[\xa0-\xa4\xa6-\xa9]|\xef\xbb\xbf|\xef\xbf[\xb9-\xbb]|\xf3\xa0[\x80\x81]")
SUSPECT_ASCII = re.compile(rb"\x1b|\x7f|\\[bfu]")
# Bytes most frequent in text, code and JSON, most frequent first: a needle is searched by its rarest byte.
COMMON_BYTES = b' etaoinsrhldcumfpgwybvk"\n:,.0123456789{}[]ETAOINSRHLDCUMFPGWYBVKxjqzXJQZ'


def suspect(raw: bytes) -> bool:
    """Whether a JSON message may hold something a cleaner removes (or a \\u escape that may spell it).

    Valid JSON holds no raw C0 control, so an ASCII message can only hold DEL or spell one with an escape."""
    if raw.isascii():
        return SUSPECT_ASCII.search(raw) is not None
    return SUSPECT_BYTES.search(raw) is not None


def needle_search(needles: Iterable[str]) -> Callable[[Any], bool]:
    """`any(needle in data ...)` for str data, or bytes holding their UTF-8, at close to memchr speed.

    One regex per lead character, each needle led by its rarest character: a regex that starts
    with a literal makes `re` skip to it in a tight loop, where `needle in data` (or one
    alternation of all the needles) examines nearly every position."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for needle in needles:
        if needle:
            rank = [COMMON_BYTES.find(ch.encode()) if ch.isascii() else -1 for ch in needle]
            pick = min(range(len(needle)), key=lambda i: (rank[i] != -1, -rank[i]))  # not common = rarest
            groups.setdefault(needle[pick], []).append((needle[:pick], needle[pick + 1:]))

    finders: dict[type, list[Callable[[Any], Any]]] = {str: [], bytes: []}
    for lead, parts in groups.items():
        for kind in (str, bytes):
            def form(text: str, kind: type = kind) -> Any:
                return text if kind is str else text.encode("utf-8", "surrogatepass")
            ahead, behind, open_, close = (("(?=", "(?<=", "(?:", ")") if kind is str
                                           else (b"(?=", b"(?<=", b"(?:", b")"))
            tails = [(behind + re.escape(form(before + lead)) + close if before else form(""))
                     + (ahead + re.escape(form(after)) + close if after else form("")) for before, after in parts]
            pattern = re.escape(form(lead)) + (open_ + form("|").join(tails) + close if all(tails) else form(""))
            finders[kind].append(re.compile(pattern, re.S).search)

    def search(data: Any) -> bool:
        return any(find(data) for find in finders[str if isinstance(data, str) else bytes])

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


def _literal_part(text: str) -> bytes:
    """The longest piece of `text` every JSON writer leaves literal (any other spelling uses \\u)."""
    return max(JSON_ESCAPABLE.split(text), key=len).encode()


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
        self._raw_needles = [_literal_part(value) for _, value in self._secrets] + [
            _literal_part(prefix) for _, prefix, _ in self._patterns if prefix]
        self._always_walk = any(not prefix for _, prefix, _ in self._patterns) or not all(self._raw_needles)
        self._has_needle = needle_search([needle.decode() for needle in self._raw_needles])

    def may_apply(self, raw: bytes) -> bool:
        """False only when no string in the JSON `raw` holds a secret or token, unless a \\u escape spells
        it: the caller walks every message with one (`SUSPECT_BYTES`)."""
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


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """A server's line as safe to show on a terminal or in a log: no escapes, no invisible tricks."""
    return CONTROL.sub("\ufffd", INVISIBLE_ALL.sub("", ANSI.sub("", text)))
