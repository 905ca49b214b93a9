"""The profile's rules as pure functions: which names pass, which arguments, how often.

No I/O: every function takes values (and the time, where it matters) and
returns a decision, so each rule can be tested without a process.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from mcpbox.profile import parse_rate

class NameRule:
    """allow/deny globs over names (tools, prompts) or URIs (resources); deny wins."""

    def __init__(self, allow: Iterable[str], deny: Iterable[str], paths: bool = False) -> None:
        self._allow = [_matcher(p, paths) for p in allow]
        self._deny = [_matcher(p, paths) for p in deny]
        self._everything = "*" in allow and not self._deny
        self._paths = paths

    def allows(self, name: str) -> bool:
        if self._everything:
            return True
        if self._paths:
            return all(self._allows(form) for form in _uri_forms(name))
        return self._allows(name)

    def _allows(self, name: str) -> bool:
        return any(m(name) for m in self._allow) and not any(m(name) for m in self._deny)

    def refusing_list(self, name: str) -> str:
        """Which list refuses `name` (for the audit): "deny" when a deny glob matches, else "allow"."""
        forms = _uri_forms(name) if self._paths else (name,)
        return "deny" if any(m(form) for m in self._deny for form in forms) else "allow"


def _uri_forms(uri: str) -> set[str]:
    """The URI as it points, and as it points once percent-decoded: a glob must judge both."""
    normal = normalize_uri(uri)
    return {normal, normalize_uri(unquote(uri))} if "%" in uri else {normal}


def normalize_uri(uri: str) -> str:
    """`scheme://authority/path` with `.`, `..` and `//` resolved in the path, so no URI glob is fooled."""
    scheme, separator, rest = uri.partition("://")
    authority, slash, path = rest.partition("/")
    if not separator or not slash:
        return uri
    normal = posixpath.normpath("/" + path)
    return f"{scheme}://{authority}/{normal.lstrip('/')}"


def _matcher(pattern: str, paths: bool) -> Callable[[str], object]:
    if pattern == "*":
        return lambda name: True
    if paths:
        return glob_regex(pattern).fullmatch
    return lambda name: fnmatch.fnmatchcase(name, pattern)


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: `**` crosses '/', `*` and `?` stay within one segment; `dir/**` includes `dir`."""
    if pattern.endswith("/**"):
        return re.compile(glob_regex(pattern[:-3]).pattern + "(?:/.*)?", re.S)
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):  # "**/" also matches no directory at all
                out.append("(?:.*/)?")
                index += 1
            else:
                out.append(".*")
            continue
        char = pattern[index]
        out.append("[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.S)


def normalize_path(value: str, home: str) -> str:
    """What a path argument points at: `~` expanded, `//` and `..` resolved, file:// unwrapped."""
    if value.startswith("file://"):
        value = unquote(value[len("file://"):])  # a URI spells ".." as %2e%2e too
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    if not value.startswith("/"):
        return value  # relative: no absolute glob can match it, so it is refused
    normal = os.path.normpath(value)
    return "/" + normal.lstrip("/")


def argument_problem(tool: str, arguments: Any, rules: dict[str, str], home: str) -> str | None:
    """Why a call's arguments break a `[tools.arguments.TOOL]` rule, or None when they pass."""
    if not rules:
        return None
    if not isinstance(arguments, dict):
        return f"mcpbox: the arguments of {tool} are not an object"
    for name, pattern in rules.items():
        if name not in arguments:
            continue
        values = arguments[name] if isinstance(arguments[name], list) else [arguments[name]]
        matcher = glob_regex(normalize_path(pattern, home))
        for value in values:
            if not isinstance(value, str):
                return f"mcpbox: argument {name} of {tool} must be a string matching {pattern}"
            if not matcher.fullmatch(normalize_path(value, home)):
                return f"mcpbox: argument {name}={value!r} of {tool} is outside {pattern}"
    return None


class RateLimiter:
    """Calls per tool in a sliding window; the most specific `[tools.rate]` entry applies."""

    def __init__(self, rates: dict[str, str]) -> None:
        self._rules = [(pattern, *parse_rate(rate)) for pattern, rate in rates.items()]
        self._rules.sort(key=lambda rule: ("*" in rule[0] or "?" in rule[0], rule[0] == "*"))
        self._calls: dict[str, deque[float]] = {}

    def retry_after(self, tool: str, now: float) -> float | None:
        """Seconds until the call may be made, or None (and the call is counted) when it may now."""
        for pattern, limit, window in self._rules:
            if fnmatch.fnmatchcase(tool, pattern):
                calls = self._calls.setdefault(tool, deque())
                while calls and calls[0] <= now - window:
                    calls.popleft()
                if len(calls) >= limit:
                    return calls[0] + window - now
                calls.append(now)
                return None
        return None
