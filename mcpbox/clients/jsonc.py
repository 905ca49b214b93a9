"""JSON and JSON-with-comments, parsed with the place of every value, so one value can be replaced in place.

`json` gives values but forgets where they were; re-encoding a whole file loses the comments, key order,
indentation and trailing commas its owner keeps (the complaint users have about tools that rewrite client
configs). This scanner keeps each value's character span, so an edit touches that span and nothing else.
`strict` is plain JSON (what Claude Desktop, Claude Code, Cursor and Windsurf read): a comment or a
trailing comma there is an error, as it is for the client.
"""

import json
import re
from typing import Any, NamedTuple

NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
LITERALS = {"true": True, "false": False, "null": None}


class Node(NamedTuple):
    """A value and where its text lies: `text[start:end]`. `members` holds an object's members (Nodes) by key.

    (No string annotations here, as nowhere in mcpbox: a NamedTuple compiles each into a ForwardRef.)"""

    start: int
    end: int
    value: Any
    members: dict[str, Any]


class JsonError(ValueError):
    """Where and why the text is not (JSON with comments)."""


def parse(text: str, strict: bool = False) -> Node:
    scanner = _Scanner(text, strict)
    scanner.skip()
    node = scanner.value()
    scanner.skip()
    if scanner.at < len(text):
        scanner.fail("unexpected text after the value")
    return node


def find(node: Node, *keys: str) -> Node | None:
    """The node at a path of object keys, or None when one of them is missing."""
    for key in keys:
        node = node.members.get(key)  # type: ignore[assignment]
        if node is None:
            return None
    return node


def line_indent(text: str, offset: int) -> str:
    """The whitespace that starts the line holding `offset`."""
    start = text.rfind("\n", 0, offset) + 1
    end = start
    while end < offset and text[end] in " \t":
        end += 1
    return text[start:end]


def dumps_like(value: Any, old: str, text: str, offset: int) -> str:
    """`value` as JSON text to put where `old` was (at `offset` of `text`), laid out as `old` was: on one line
    if it was, else indented like the file (its unit, the line's indent, its line ending)."""
    if "\n" not in old:
        return json.dumps(value, ensure_ascii=False)
    base = line_indent(text, offset)
    unit = "  "
    for line in old.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and line.startswith(base) and len(line) - len(stripped) > len(base):
            unit = line[len(base):len(line) - len(stripped)]
            break
    newline = "\r\n" if "\r\n" in old else "\n"
    return json.dumps(value, ensure_ascii=False, indent=unit).replace("\n", newline + base)


class _Scanner:
    def __init__(self, text: str, strict: bool) -> None:
        self.text = text
        self.strict = strict
        self.at = 1 if text.startswith("\ufeff") else 0

    def fail(self, problem: str) -> None:
        line = self.text.count("\n", 0, self.at) + 1
        column = self.at - (self.text.rfind("\n", 0, self.at) + 1) + 1
        raise JsonError(f"line {line} column {column}: {problem}")

    def skip(self) -> None:
        """Whitespace, and (unless strict) // and /* */ comments."""
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            if char in " \t\n\r":
                self.at += 1
            elif char == "/" and text.startswith(("//", "/*"), self.at):
                if self.strict:
                    self.fail("a comment, which this client's JSON does not allow")
                if text[self.at + 1] == "/":
                    end = text.find("\n", self.at)
                    self.at = len(text) if end < 0 else end
                else:
                    end = text.find("*/", self.at + 2)
                    if end < 0:
                        self.fail("unterminated /* comment")
                    self.at = end + 2
            else:
                return

    def value(self) -> Node:
        text = self.text
        if self.at >= len(text):
            self.fail("unexpected end of the text")
        char = text[self.at]
        if char == "{":
            return self.object()
        if char == "[":
            return self.array()
        if char == '"':
            return self.string()
        start = self.at
        match = NUMBER.match(text, start)
        if match:
            self.at = match.end()
            return Node(start, self.at, json.loads(match.group()), {})
        for word, literal in LITERALS.items():
            if text.startswith(word, start):
                self.at = start + len(word)
                return Node(start, self.at, literal, {})
        self.fail(f"unexpected {char!r}")
        raise AssertionError  # fail() raised

    def string(self) -> Node:
        text, start = self.text, self.at
        index = start + 1
        while True:
            quote = text.find('"', index)
            if quote < 0:
                self.fail("unterminated string")
            backslashes = 0
            while text[quote - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                break
            index = quote + 1
        self.at = quote + 1
        try:
            return Node(start, self.at, json.loads(text[start:self.at]), {})
        except json.JSONDecodeError as error:
            self.at = start + error.pos
            self.fail(f"bad string: {error.msg}")
            raise AssertionError from None

    def object(self) -> Node:
        start = self.at
        self.at += 1
        members: dict[str, Node] = {}
        value: dict[str, Any] = {}
        self.skip()
        while self.text[self.at:self.at + 1] != "}":
            if self.text[self.at:self.at + 1] != '"':
                self.fail("expected a key in double quotes")
            key = self.string().value
            self.skip()
            if self.text[self.at:self.at + 1] != ":":
                self.fail("expected ':' after the key")
            self.at += 1
            self.skip()
            member = self.value()
            members.pop(key, None)  # a repeated key: the last one counts, as in every JSON reader
            value.pop(key, None)
            members[key] = member
            value[key] = member.value
            if not self.separator("}"):
                break
        self.expect("}")
        return Node(start, self.at, value, members)

    def array(self) -> Node:
        start = self.at
        self.at += 1
        items: list[Any] = []
        self.skip()
        while self.text[self.at:self.at + 1] != "]":
            items.append(self.value().value)
            if not self.separator("]"):
                break
        self.expect("]")
        return Node(start, self.at, items, {})

    def separator(self, close: str) -> bool:
        """After a member or item: a comma (maybe trailing, unless strict) means another may follow."""
        self.skip()
        if self.text[self.at:self.at + 1] != ",":
            return False
        self.at += 1
        self.skip()
        if self.text[self.at:self.at + 1] == close and self.strict:
            self.fail("a trailing comma, which this client's JSON does not allow")
        return True

    def expect(self, close: str) -> None:
        if self.text[self.at:self.at + 1] != close:
            self.fail(f"expected ',' or {close!r}")
        self.at += 1
