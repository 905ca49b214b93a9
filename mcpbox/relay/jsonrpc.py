"""Strict JSON-RPC 2.0: parse and classify one frame, and build the replies mcpbox writes itself.

Strict means: valid UTF-8, no duplicate keys (two parsers could read two
different messages), no NaN or Infinity, nesting within MAX_DEPTH, "jsonrpc":
"2.0", and exactly the members each kind of message may have.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603

REQUEST, NOTIFICATION, RESPONSE = "request", "notification", "response"

_ID_IN_HEAD = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){0,256}"|-?\d{1,32}(?:\.\d+)?(?:[eE][+-]?\d+)?|null)\s*[,}]')


class Invalid(Exception):
    """A frame that is not a valid JSON-RPC message; `id` is set when it could still be read."""

    def __init__(self, code: int, reason: str, id: Any = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.id = id


class Message:
    """One JSON-RPC message, with the exact bytes it arrived as (a `Later` for a large one) and their length."""

    __slots__ = ("kind", "body", "raw", "size", "id", "method")

    def __init__(self, kind: str, body: dict[str, Any], raw: bytes) -> None:
        self.kind = kind
        self.body = body
        self.raw = raw
        self.size = raw.size if isinstance(raw, Later) else len(raw)
        self.id = body.get("id")
        self.method: str | None = body.get("method")

    @property
    def params(self) -> dict[str, Any]:
        params = self.body.get("params")
        return params if isinstance(params, dict) else {}

    @property
    def id_key(self) -> str:
        return id_key(self.id)


class Later(bytes):
    """Stands in for a large message's bytes, let go while it is parsed so that the bytes, their text and the
    parsed message are never held at once (three times its size). The bytes are made again from the text once
    the parsed message is gone: exactly, as the text was decoded from strict UTF-8. Empty itself; each is a
    distinct object, so `forward is message.raw` still says "unchanged"."""

    text: str
    size: int
    scan: tuple[bool, bool]  # what the prefilters said of the bytes (`Cleaner.scan`), before they went

    def __new__(cls, text: str, size: int, scan: tuple[bool, bool]) -> Later:
        later = super().__new__(cls)
        later.text, later.size, later.scan = text, size, scan
        return later


def id_key(value: Any) -> str:
    """The id exactly as JSON writes it: 1 and "1" are different ids."""
    if type(value) is int:
        return str(value)
    return json.dumps(value)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # the key is not named: a server's text must not reach the client unredacted
        raise Invalid(INVALID_REQUEST, "duplicate key")
    return result


def _no_constant(name: str) -> Any:
    raise Invalid(PARSE_ERROR, f"{name} is not JSON")


def _finite(text: str) -> float:
    """1e999 would become inf, which is written back as `Infinity`: not JSON."""
    if math.isinf(value := float(text)):
        raise ValueError(f"{text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite)


def loads(raw: bytes) -> Any:
    """Parse strictly; raises Invalid."""
    return parse(decode(raw), raw)


def decode(raw: bytes) -> str:
    """The text of a frame; strict: json.loads(bytes) would take UTF-16/32 and encoded surrogates."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(PARSE_ERROR, "not valid UTF-8", id_from_head(raw)) from None


def parse(text: str, head: bytes) -> Any:
    """Parse a frame's text strictly; raises Invalid, with the id read from `head` (the frame's first bytes)."""
    try:
        body = _DECODER.decode(text)
    except Invalid as error:
        error.id = id_from_head(head)
        raise
    except (ValueError, RecursionError) as error:
        raise Invalid(PARSE_ERROR, f"not valid JSON ({error})", id_from_head(head)) from None
    if (len(text) > 4096 or text.count("[") + text.count("{") > MAX_DEPTH) and _too_deep(body):
        raise Invalid(INVALID_REQUEST, f"nested deeper than {MAX_DEPTH}", id_from_head(head))
    return body


def _too_deep(body: Any) -> bool:
    """Nesting past MAX_DEPTH, walking the parsed containers only (never the text of a string)."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def classify(body: Any, raw: bytes) -> Message:
    if not isinstance(body, dict):
        raise Invalid(INVALID_REQUEST, "not a JSON-RPC object")
    if body.get("jsonrpc") != "2.0":
        raise Invalid(INVALID_REQUEST, 'missing "jsonrpc": "2.0"', _valid_id(body))
    if "method" in body:
        if not isinstance(body["method"], str) or "result" in body or "error" in body:
            raise Invalid(INVALID_REQUEST, "a request has a string method and no result or error", _valid_id(body))
        if "params" in body and not isinstance(body["params"], (dict, list)):
            raise Invalid(INVALID_REQUEST, "params must be an object or an array", _valid_id(body))
        if "id" not in body:
            return Message(NOTIFICATION, body, raw)
        if not _is_id(body["id"]) or body["id"] is None:
            raise Invalid(INVALID_REQUEST, "a request id is a string or a number")
        return Message(REQUEST, body, raw)
    if ("result" in body) == ("error" in body) or "id" not in body or not _is_id(body["id"]):
        raise Invalid(INVALID_REQUEST, "a response has an id and exactly one of result or error", _valid_id(body))
    if "error" in body and not (isinstance(body["error"], dict) and isinstance(body["error"].get("code"), int)):
        raise Invalid(INVALID_REQUEST, "an error has an integer code", _valid_id(body))
    return Message(RESPONSE, body, raw)


def _is_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _valid_id(body: dict[str, Any]) -> Any:
    value = body.get("id")
    return value if _is_id(value) else None


def id_from_head(raw: bytes) -> Any:
    """The id of a line that cannot be parsed, read from its first bytes (a bounded scan)."""
    match = _ID_IN_HEAD.search(raw[:4096])
    if not match:
        return None
    try:
        value = json.loads(match.group(1), parse_float=_finite)
    except ValueError:
        return None
    return value if _is_id(value) else None


def dumps(body: Any) -> bytes:
    # A lone surrogate (JSON allows a "\ud800" escape) is no UTF-8: it is written back as that escape.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


def error(id: Any, code: int, message: str) -> bytes:
    return dumps({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})


def result(id: Any, value: dict[str, Any]) -> bytes:
    return dumps({"jsonrpc": "2.0", "id": id, "result": value})


def tool_error(id: Any, text: str) -> bytes:
    """A refused tools/call: a normal result the model can read, not a protocol error.

    `resultType` is required in 2026-07-28 (a strict client rejects the result
    without it) and an ignored extra key before, so it is always written.
    """
    return result(id, {"content": [{"type": "text", "text": text}], "isError": True, "resultType": "complete"})
