"""The span-keeping JSON(C) parser: values as `json` reads them, spans exact, comments only where allowed."""

from __future__ import annotations

import json

import pytest

from mcpbox.clients import jsonc

TRICKY = '\ufeff{\r\n  // a "comment" with {braces}\r\n  "a//b": "x /* not a comment */ \\" y",\r\n' \
         '  "n": [1, -2.5e3, true, null, {},], /* block\r\n comment */\r\n  "a//b": "last wins",\r\n}\r\n'


def test_values_and_spans() -> None:
    root = jsonc.parse(TRICKY)
    assert root.value == {"a//b": "last wins", "n": [1, -2500.0, True, None, {}]}
    node = jsonc.find(root, "n")
    assert node is not None and TRICKY[node.start:node.end] == "[1, -2.5e3, true, null, {},]"
    assert TRICKY[root.start:root.end].startswith("{") and TRICKY[root.end:] == "\r\n"
    assert json.loads(TRICKY[jsonc.find(root, "a//b").start:jsonc.find(root, "a//b").end]) == "last wins"


@pytest.mark.parametrize("text", ['{"a": 1,}', '{"a": 1} // c', '[1, 2,]', '/* c */ {}'])
def test_strict_refuses_comments_and_trailing_commas(text: str) -> None:
    jsonc.parse(text)
    with pytest.raises(jsonc.JsonError):
        jsonc.parse(text, strict=True)


@pytest.mark.parametrize(("text", "where"), [('{"a" 1}', "line 1 column 6"), ('{\n  "a": tru}', "line 2 column 8"),
                                             ('{"a": "\x01"}', "line 1 column"), ('{"a": 1} x', "line 1 column 10")])
def test_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(jsonc.JsonError, match=where):
        jsonc.parse(text)


def test_a_multiline_value_is_laid_out_like_the_file() -> None:
    text = '{\r\n\t"args": [\r\n\t\t"a"\r\n\t]\r\n}'
    node = jsonc.find(jsonc.parse(text), "args")
    assert node is not None
    new = jsonc.dumps_like(["x", "y"], text[node.start:node.end], text, node.start)
    assert new == '[\r\n\t\t"x",\r\n\t\t"y"\r\n\t]'
