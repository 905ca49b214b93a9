"""Profiles: strict validation with one-line errors, the search path, and the content-keyed cache."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import typing
from pathlib import Path

import pytest

import mcpbox
from conftest import MCPBOX, ROOT
from mcpbox import cache, profile
from mcpbox.errors import ProfileError


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sandbox]\nnetwrk = true\n", "sandbox.netwrk: unknown key"),
        ("[sandbox]\nnetwork = 'yes'\n", "sandbox.network: must be true or false or a list of strings, got 'yes'"),
        ("[limits]\nprocesses = 1.5\n", "limits.processes: input should be a valid integer"),
        ("[limits]\nprocesses = true\n", "limits.processes: input should be a valid integer"),
        ("[limits]\nmemory_mb = 0\n", "limits.memory_mb: must be a positive number"),
        ("[audit]\narguments = 'all'\n", "audit.arguments: input should be 'hash', 'full' or 'none'"),
        ("[verify]\nartifact = '/x'\n", "verify: 'artifact' and 'bundle' go together"),
        ("[verify]\nrepository = 'a/b'\nissuer = 'https://i'\n", "verify: give 'artifact' and 'bundle' (a signed"),
        ("[verify]\nprovenance = 'always'\n", "verify.provenance: input should be 'required' or 'if-present'"),
        ("[sandbox]\nread_only = ['projects']\n", "sandbox.read_only: 'projects' is relative"),
        ("[sandbox]\nenv = ['LD_PRELOAD']\n", "sandbox.env: LD_PRELOAD injects code"),
        ("[sandbox\n", "invalid TOML: Expected ']'"),
        ("surprise = 1\n", "surprise: unknown key"),
        ("sandbox = [true]\n", "sandbox: must be a table ([sandbox]), got [True]"),
        ("[tools]\nallow = 'x'\n", "tools.allow: input should be a valid array, got 'x'"),
    ],
)
def test_broken_profile_names_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        profile.load(str(path))
    message = str(caught.value)
    assert message.startswith(f"profile {path}: ")
    assert expected in message
    assert "\n" not in message


def test_cli_reports_a_broken_profile_in_one_line_with_status_125(tmp_path: Path) -> None:
    path = write(tmp_path, "[tools]\nalow = ['*']\n")
    result = subprocess.run([*MCPBOX, "run", "--profile", str(path), "--", "/bin/true"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 125
    assert result.stderr == f"mcpbox: profile {path}: tools.alow: unknown key (check its spelling and section)\n"


def test_full_profile_from_the_architecture_validates(tmp_path: Path) -> None:
    path = write(tmp_path, """
description = "Filesystem server confined to one project"
[server]
command = ["~/mcp/node_modules/.bin/mcp-server-filesystem", "~/projects"]
[sandbox]
network = false
read_only = ["~/projects"]
read_write = []
env = ["LANG"]
[limits]
memory_mb = 1024
processes = 64
open_files = 512
cpu_seconds = 600
file_size_mb = 64
message_mb = 16
[tools]
allow = ["read_file", "list_directory", "search_files"]
deny = []
[tools.arguments.read_file]
path = "~/projects/**"
[tools.rate]
"*" = "60/min"
[resources]
allow = []
[prompts]
allow = ["*"]
[client]
sampling = false
elicitation = true
roots = true
[verify]
artifact = "/opt/mcp/server-dir"
bundle = "/opt/mcp/server-dir.sigstore.json"
repository = "https://github.com/ORG/REPO"
ref = "refs/tags/*"
issuer = "https://token.actions.githubusercontent.com"
[audit]
arguments = "hash"
""")
    loaded = profile.load(str(path)).profile
    assert loaded.tools.arguments == {"read_file": {"path": "~/projects/**"}}
    assert loaded.tools.rate == {"*": "60/min"}
    assert loaded.limits.open_files == 512 and loaded.limits.tmp_mb == 256
    assert loaded.verify is not None and loaded.verify.ref == "refs/tags/*"


def test_cached_profile_equals_validated_one_and_skips_validation(tmp_path: Path, monkeypatch) -> None:
    raw = (b"[sandbox]\nread_only = ['~/a']\n[tools.arguments.t]\np = '/x/**'\n[verify]\nartifact='/a'\n"
           b"bundle='/b'\nidentity='https://github.com/o/r/.github/workflows/r.yml@refs/tags/v1'\n"
           b"issuer='https://token.actions.githubusercontent.com'\n")
    first = profile.parse(raw, "test")

    def no_validation(*_: object) -> None:
        raise AssertionError("a cached profile must not be validated again")

    monkeypatch.setattr(profile, "_validate", no_validation)
    assert profile.parse(raw, "test") == first


def test_changed_bytes_are_never_served_from_the_cache(tmp_path: Path) -> None:
    assert profile.parse(b"[limits]\nprocesses = 5\n", "a").limits.processes == 5
    assert profile.parse(b"[limits]\nprocesses = 6\n", "a").limits.processes == 6


def test_tampered_cache_entry_is_a_miss(tmp_path: Path) -> None:
    raw = b"[limits]\nprocesses = 9\n"
    profile.parse(raw, "a")
    [entry] = (Path(cache.paths.cache_dir()) / "profiles").iterdir()
    key, separator, _ = entry.read_bytes().partition(cache.SEPARATOR)
    entry.write_bytes(key + separator + b"{not json")
    assert profile.parse(raw, "a").limits.processes == 9


def test_name_lookup_prefers_the_users_profiles(tmp_path: Path, monkeypatch) -> None:
    users = Path(cache.paths.user_profiles_dir())
    users.mkdir(parents=True)
    (users / "default.toml").write_text("description = 'mine'\n")
    assert profile.load("default").profile.description == "mine"
    (users / "default.toml").unlink()
    assert "Default" in profile.load("default").profile.description


def test_unknown_name_says_where_it_looked() -> None:
    with pytest.raises(ProfileError, match="no profile named 'nope' in .*profiles"):
        profile.load("nope")


def test_every_shipped_profile_is_valid() -> None:
    shipped = sorted((ROOT / "profiles").glob("*.toml"))
    assert shipped, "profiles/ ships at least the default profile"
    for path in shipped:
        profile.load(str(path))


def check(path: Path) -> subprocess.CompletedProcess[str]:
    """`mcpbox check PATH`, which must succeed."""
    result = subprocess.run([*MCPBOX, "check", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def test_check_prints_what_the_profile_grants(tmp_path: Path) -> None:
    result = check(write(tmp_path, "[sandbox]\nnetwork = true\nread_write = ['/srv/data']\n[tools]\nallow = ['a']\n"
                               "deny = ['b']\n"))
    assert "network:     the host's network" in result.stdout
    assert "writes:      /srv/data" in result.stdout
    assert "tools:       only a, except b" in result.stdout


def test_check_says_which_passed_variables_are_treated_as_secrets(tmp_path: Path) -> None:
    result = check(write(tmp_path, "[sandbox]\nenv = ['LANG', 'DB_PASSPHRASE', 'MYSQL_PWD']\n[redact]\nenv = ['SIGNING']\n"))
    assert "secrets:     DB_PASSPHRASE, MYSQL_PWD, SIGNING (their values are redacted" in result.stdout
    assert "passed as plain values: LANG" in result.stdout


def test_no_named_tuple_of_mcpbox_is_made_from_string_annotations() -> None:
    """A NamedTuple compiles each string annotation into a ForwardRef as its class is made (~0.1 ms a field,
    on every launch that imports it), which `from __future__ import annotations` would bring back."""
    stringly = []
    modules = [m.name for m in pkgutil.walk_packages(mcpbox.__path__, "mcpbox.") if m.name != "mcpbox.__main__"]
    assert "mcpbox.trust.verify" in modules
    for name in modules:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, type) and issubclass(value, tuple) and hasattr(value, "_fields"):
                stringly += [f"{value.__module__}.{value.__name__}.{field}"
                             for field, annotation in value.__annotations__.items()
                             if isinstance(annotation, (str, typing.ForwardRef))]
    assert stringly == []
