"""A client's config as entries that can be replaced one by one, leaving every other byte as it was.

JSON files are edited by span: an entry's value text is replaced with new JSON laid out like it, and
nothing else moves. Codex's TOML goes through tomlkit, which keeps comments and layout (tomli-w, which
writes mcpbox's profiles, keeps neither); the text an entry's change touched is found by comparing the
file before and after, line by line. Either way each replacement reports the exact text it took out and
the text it put in, which is all `unwrap` needs to put the entry back byte for byte.
"""

import difflib
import json
from typing import Any, NamedTuple

from mcpbox.clients import jsonc
from mcpbox.clients.formats import Client
from mcpbox.errors import ConfigFileError


class Entry(NamedTuple):
    keys: tuple[str, ...]  # the key path of the entry in the document, its name last
    scope: str  # "" or the project directory (Claude Code's local scope)
    value: Any  # the entry as plain data


class Snippet(NamedTuple):
    original: str
    wrapped: str


class JsonDocument:
    def __init__(self, client: Client, path: str, text: str) -> None:
        self.text = text
        try:
            self.root = jsonc.parse(text, strict=client.syntax == "json")
        except jsonc.JsonError as error:
            kind = "JSON" if client.syntax == "json" else "JSON with comments"
            raise ConfigFileError(f"{path}: not valid {kind} ({error}); nothing was changed") from None
        self.entries: list[Entry] = []
        for keys, scope in client.scopes(self.root.value):
            servers = jsonc.find(self.root, *keys)
            if servers is not None and isinstance(servers.value, dict):
                self.entries += [Entry((*keys, name), scope, node.value) for name, node in servers.members.items()]
        self._edits: list[tuple[int, int, str]] = []

    def replace(self, entry: Entry, value: dict[str, Any]) -> Snippet:
        node = jsonc.find(self.root, *entry.keys)
        assert node is not None
        edits = _member_edits(self.text, node, value)
        self._edits += edits
        new = self.text[node.start:node.end]
        for start, end, text in sorted(edits, reverse=True):
            new = new[:start - node.start] + text + new[end - node.start:]
        return Snippet(self.text[node.start:node.end], new)

    def result(self) -> str:
        text = self.text
        for start, end, new in sorted(self._edits, reverse=True):
            text = text[:start] + new + text[end:]
        return text


class TomlDocument:
    def __init__(self, client: Client, path: str, text: str) -> None:
        import tomllib

        import tomlkit

        try:
            plain = tomllib.loads(text)
            self.document = tomlkit.parse(text)
        except (tomllib.TOMLDecodeError, tomlkit.exceptions.ParseError) as error:
            raise ConfigFileError(f"{path}: not valid TOML ({error}); nothing was changed") from None
        self.entries = []
        for keys, scope in client.scopes(plain):
            servers: Any = plain
            for key in keys:
                servers = servers.get(key) if isinstance(servers, dict) else None
            if isinstance(servers, dict):
                self.entries += [Entry((*keys, name), scope, value) for name, value in servers.items()]

    def replace(self, entry: Entry, value: dict[str, Any]) -> Snippet:
        import tomlkit

        table: Any = self.document
        for key in entry.keys:
            table = table[key]
        before = tomlkit.dumps(self.document)
        for key, item in value.items():
            if key not in entry.value or item != entry.value[key]:
                table[key] = item
        after = tomlkit.dumps(self.document)
        return _changed_lines(before, after)

    def result(self) -> str:
        import tomlkit

        return tomlkit.dumps(self.document)


def _member_edits(text: str, node: jsonc.Node, value: Any) -> list[tuple[int, int, str]]:
    """The smallest edits that turn `node` into `value`: the values of changed members, a new member after
    the one it follows; members that keep their value keep their text (comments, layout) too."""
    if not (isinstance(value, dict) and isinstance(node.value, dict) and node.members.keys() <= value.keys()):
        return [(node.start, node.end, jsonc.dumps_like(value, text[node.start:node.end], text, node.start))]
    edits: list[tuple[int, int, str]] = []
    previous: jsonc.Node | None = None
    for key, item in value.items():
        member = node.members.get(key)
        if member is None:
            assert previous is not None, "a new member follows an existing one"
            multiline = "\n" in text[node.start:node.end]
            lead = ("\r\n" if "\r\n" in text[node.start:node.end] else "\n") + jsonc.line_indent(text, previous.start) \
                if multiline else " "
            edits.append((previous.end, previous.end,
                          f",{lead}{json.dumps(key)}: {json.dumps(item, ensure_ascii=False)}"))
            continue
        if member.value != item:
            edits += _member_edits(text, member, item)
        previous = member
    return edits


def _changed_lines(before: str, after: str) -> Snippet:
    """The whole lines that differ between two texts (one change), as they were and as they are."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    blocks = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    changed = [block for block in blocks if block[0] != "equal"]
    first, last = changed[0], changed[-1]
    return Snippet("".join(old[first[1]:last[2]]), "".join(new[first[3]:last[4]]))


def open_document(client: Client, path: str, text: str) -> JsonDocument | TomlDocument:
    return TomlDocument(client, path, text) if client.syntax == "toml" else JsonDocument(client, path, text)


def entry_id(entry: Entry) -> str:
    return json.dumps(entry.keys)
