"""`mcpbox schema`: the profile's JSON Schema, generated from the validator, shipped beside the profiles and
named on their first line; the schema and mcpbox's own validation agree on what is a profile."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import MCPBOX, ROOT
from mcpbox import profile, schema
from mcpbox.errors import ProfileError

SHIPPED = sorted((ROOT / "profiles").glob("*.toml"))
SCHEMA_FILE = ROOT / "profiles" / schema.SCHEMA_FILE

BROKEN = {
    "unknown top-level key": "descripton = 'typo'\n",
    "unknown key in a table": "[sandbox]\nnetwrok = true\n",
    "unknown section": "[sandbx]\nnetwork = true\n",
    "wrong type": "[limits]\nmemory_mb = '1G'\n",
    "a bool that is a string": "[client]\nsampling = 'no'\n",
    "network neither bool nor list": "[sandbox]\nnetwork = 'yes'\n",
    "value outside an enum": "[audit]\narguments = 'some'\n",
    "provenance outside its enum": "[verify]\nprovenance = 'maybe'\nrepository = 'o/r'\nissuer = 'https://i'\n",
    "an array for a table": "sandbox = ['/srv']\n",
    "a table for a list": "[tools.allow]\nname = 'x'\n",
    "an argument rule not a table": "[tools.arguments]\nread_file = '~/x/**'\n",
    "a list of numbers": "[sandbox]\nread_only = [1, 2]\n",
}


def printed_schema() -> str:
    result = subprocess.run([*MCPBOX, "schema"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def test_the_shipped_schema_file_is_what_mcpbox_schema_prints() -> None:
    assert SCHEMA_FILE.read_text() == printed_schema(), (
        "profiles/profile.schema.json is stale: run `python -m mcpbox schema > profiles/profile.schema.json`")


def test_every_shipped_profile_names_the_schema_on_its_first_line_and_still_loads() -> None:
    assert SHIPPED
    for path in SHIPPED:
        assert path.read_text().splitlines()[0] == schema.DIRECTIVE == "#:schema ./profile.schema.json", path
        assert (path.parent / schema.DIRECTIVE.split("./", 1)[1]).is_file()
        profile.parse(path.read_bytes(), str(path))  # a comment to TOML: mcpbox's own loading is unaffected


def objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema (one with properties) in a schema."""
    if isinstance(node, list):
        return [found for item in node for found in objects(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if "properties" in node else []
    return own + [found for value in node.values() for found in objects(value)]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    reference = node.get("$ref")
    return document["$defs"][reference.rsplit("/", 1)[1]] if reference else node


def test_tables_are_closed_objects_with_the_models_fields_and_defaults() -> None:
    document = schema.profile_schema()
    assert document["$schema"] == schema.DIALECT
    tables = objects(document)
    assert tables and all(table["type"] == "object" and table["additionalProperties"] is False for table in tables)

    def check(kind: Any, node: dict[str, Any]) -> None:
        node = resolve(document, node)
        assert list(node["properties"]) == list(kind._fields)
        for name, default in kind._field_defaults.items():
            field = node["properties"][name]
            if profile._is_table(type(default)):
                assert field["default"] == json.loads(json.dumps(schema._as_table(default)))
                check(type(default), field)
            elif default is None:
                assert "default" not in field  # TOML has no null: an absent key
            else:
                assert field["default"] == json.loads(json.dumps(default)), name

    check(profile.Profile, document)
    check(profile.Verify, document["properties"]["verify"])
    limits = resolve(document, document["properties"]["limits"])["properties"]
    assert limits["memory_mb"] == {"default": 1024, "title": "Memory Mb", "type": "integer"}


def test_literals_are_enums_and_unions_list_their_forms_without_null() -> None:
    document = schema.profile_schema()
    audit = resolve(document, document["properties"]["audit"])["properties"]
    assert audit["arguments"]["enum"] == ["hash", "full", "none"] and audit["arguments"]["default"] == "hash"
    assert audit["path"]["type"] == "string"
    verify = resolve(document, document["properties"]["verify"])["properties"]
    assert verify["provenance"]["enum"] == ["required", "if-present"] and verify["provenance"]["type"] == "string"
    network = resolve(document, document["properties"]["sandbox"])["properties"]["network"]
    assert network["anyOf"] == [{"type": "boolean"}, {"items": {"type": "string"}, "type": "array"}]
    assert "null" not in json.dumps(document)


def test_field_comments_and_class_docstrings_become_descriptions() -> None:
    document = schema.profile_schema()
    sandbox = resolve(document, document["properties"]["sandbox"])
    assert sandbox["properties"]["env"]["description"] == "host variables passed through by name"
    assert "counted by the watchdog" in resolve(document, document["properties"]["limits"])["properties"][
        "processes"]["description"]
    assert resolve(document, document["properties"]["resources"])["description"].startswith("Resources (by URI")


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (a test dependency of mcp) is not installed")
    document = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_every_shipped_profile_validates_against_the_schema(validator: Any, path: Path) -> None:
    problems = [error.message for error in validator.iter_errors(tomllib.loads(path.read_text()))]
    assert problems == []


@pytest.mark.parametrize("text", BROKEN.values(), ids=list(BROKEN))
def test_a_broken_profile_fails_the_schema_and_mcpbox_alike(validator: Any, text: str) -> None:
    assert list(validator.iter_errors(tomllib.loads(text))), "the schema let it pass"
    with pytest.raises(ProfileError):
        profile.parse(text.encode(), "broken.toml")


def test_a_profile_using_every_section_validates(validator: Any) -> None:
    text = """#:schema ./profile.schema.json
description = "all of it"
[server]
command = ["/opt/srv/bin/server"]
[sandbox]
network = ["api.github.com", "*.githubusercontent.com:443"]
read_only = ["~/projects"]
read_write = ["."]
writable_args = true
env = ["LANG"]
[sandbox.set_env]
MEMORY_FILE_PATH = "~/.local/share/mcp/memory.jsonl"
[limits]
memory_mb = 512
connections = 8
[tools]
allow = ["read_*"]
deny = ["read_secret"]
[tools.arguments.read_file]
path = "~/projects/**"
[tools.rate]
"*" = "60/min"
[resources]
allow = ["file:///*"]
[prompts]
deny = ["*"]
[client]
sampling = true
[verify]
provenance = "required"
repository = "modelcontextprotocol/servers"
issuer = "https://token.actions.githubusercontent.com"
[redact]
patterns = ["sk-[a-z]+"]
keep_ansi = true
[audit]
arguments = "none"
path = "~/audit.jsonl"
"""
    assert [error.message for error in validator.iter_errors(tomllib.loads(text))] == []
    profile.parse(text.encode(), "all.toml")
