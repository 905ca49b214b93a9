"""The profile: what a server may touch and say, read from TOML.

The schema is plain frozen dataclasses so that a launch can rebuild a profile it
has validated before (cached by content hash) without importing pydantic, which
costs more than mcpbox's whole start-up budget. pydantic validates the TOML
strictly (unknown keys, wrong types) only when the profile's bytes are new.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from mcpbox import cache, paths
from mcpbox.errors import ProfileError


INJECTION_VARIABLES = frozenset({
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "PYTHONUSERBASE", "PYTHONINSPECT", "NODE_OPTIONS", "NODE_PATH", "BASH_ENV", "ENV", "PERL5OPT",
    "PERL5LIB", "RUBYOPT", "RUBYLIB", "GCONV_PATH", "MALLOC_CONF",
})


class _Strict:
    """pydantic reads this from every schema dataclass: no unknown keys, no coercion."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid", "strict": True}


@dataclass(frozen=True)
class Server(_Strict):
    command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sandbox(_Strict):
    network: bool = False
    read_only: list[str] = field(default_factory=list)
    read_write: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Limits(_Strict):
    memory_mb: int = 1024
    processes: int = 64
    open_files: int = 1024
    cpu_seconds: int = 3600
    file_size_mb: int = 64
    tmp_mb: int = 256
    message_mb: int = 16


@dataclass(frozen=True)
class Tools(_Strict):
    allow: list[str] = field(default_factory=lambda: ["*"])
    deny: list[str] = field(default_factory=list)
    arguments: dict[str, dict[str, str]] = field(default_factory=dict)
    rate: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog(_Strict):
    """Resources (by URI glob) or prompts (by name glob)."""

    allow: list[str] = field(default_factory=lambda: ["*"])
    deny: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Client(_Strict):
    sampling: bool = False
    elicitation: bool = True
    roots: bool = True


@dataclass(frozen=True)
class Verify(_Strict):
    artifact: str
    bundle: str
    identity: str | None = None
    issuer: str | None = None
    repository: str | None = None
    workflow: str | None = None
    ref: str | None = None
    trusted_root: str | None = None


@dataclass(frozen=True)
class Audit(_Strict):
    arguments: Literal["hash", "full", "none"] = "hash"
    path: str | None = None


@dataclass(frozen=True)
class Profile(_Strict):
    description: str = ""
    server: Server = field(default_factory=Server)
    sandbox: Sandbox = field(default_factory=Sandbox)
    limits: Limits = field(default_factory=Limits)
    tools: Tools = field(default_factory=Tools)
    resources: Catalog = field(default_factory=Catalog)
    prompts: Catalog = field(default_factory=Catalog)
    client: Client = field(default_factory=Client)
    verify: Verify | None = None
    audit: Audit = field(default_factory=Audit)


@dataclass(frozen=True)
class LoadedProfile:
    path: Path
    profile: Profile


def find(name_or_path: str) -> Path:
    """A path is used as given; a bare name is looked up in the user's then the shipped profiles."""
    candidate = Path(name_or_path).expanduser()
    if os.sep in name_or_path or name_or_path.endswith(".toml"):
        if candidate.is_file():
            return candidate
        raise ProfileError(f"profile {candidate}: no such file")
    searched = [paths.user_profiles_dir(), paths.shipped_profiles_dir()]
    for directory in searched:
        path = directory / f"{name_or_path}.toml"
        if path.is_file():
            return path
    where = " or ".join(str(d) for d in searched)
    raise ProfileError(f"no profile named {name_or_path!r} in {where}; give a path or run 'mcpbox profiles'")


def load(name_or_path: str) -> LoadedProfile:
    path = find(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ProfileError(f"profile {path}: cannot read it: {error.strerror}") from None
    return LoadedProfile(path, parse(raw, str(path)))


def parse(raw: bytes, origin: str) -> Profile:
    entry_key = cache.key(raw, cache.source_of(__file__))
    cached = cache.read("profiles", entry_key)
    if cached is not None:
        try:
            return _build(Profile, json.loads(cached))
        except (ValueError, TypeError, KeyError):
            pass
    profile = _validate(raw, origin)
    cache.write("profiles", entry_key, json.dumps(dataclasses.asdict(profile)).encode())
    return profile


def _validate(raw: bytes, origin: str) -> Profile:
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileError(f"profile {origin}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"profile {origin}: invalid TOML: {error}") from None
    from pydantic import TypeAdapter, ValidationError

    try:
        # JSON mode: strict types, yet tables may populate dataclasses and arrays lists.
        profile = TypeAdapter(Profile).validate_json(json.dumps(document, default=str))
    except ValidationError as error:
        raise ProfileError(f"profile {origin}: {_first_problem(error)}") from None
    for problem in _semantic_problems(profile):
        raise ProfileError(f"profile {origin}: {problem}")
    return profile


def _first_problem(error: Any) -> str:
    problems = error.errors()
    first = problems[0]
    location = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    kind = first["type"]
    if kind == "unexpected_keyword_argument":
        message = "unknown key (check its spelling and section)"
    elif kind in ("missing", "missing_argument"):
        message = "required key is missing"
    else:
        message = f"{first['msg'].lower()}, got {first.get('input')!r}"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{location}: {message}{more}"


def _semantic_problems(profile: Profile) -> list[str]:
    problems: list[str] = []
    for key in ("read_only", "read_write"):
        for entry in getattr(profile.sandbox, key):
            if not (entry == "." or entry.startswith(("/", "~"))):
                problems.append(
                    f"sandbox.{key}: {entry!r} is relative; write an absolute path, "
                    "a ~/ path, or '.' for the directory mcpbox is started in"
                )
    for name in profile.sandbox.env:
        if not name or "=" in name:
            problems.append(f"sandbox.env: {name!r} is not a variable name")
        elif name in INJECTION_VARIABLES:
            problems.append(f"sandbox.env: {name} injects code into the server's runtime; mcpbox never passes it")
    for key, value in dataclasses.asdict(profile.limits).items():
        if value <= 0:
            problems.append(f"limits.{key}: must be a positive number, got {value}")
    return problems


def _build(kind: Any, data: Any) -> Any:
    """Rebuild validated, cached data into the schema's dataclasses (no validation)."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _build(hints[f.name], data[f.name]) for f in dataclasses.fields(kind)})
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        return _build(next(a for a in typing.get_args(kind) if a is not type(None)), data)
    if origin is list:
        return [_build(typing.get_args(kind)[0], item) for item in data]
    if origin is dict:
        value_kind = typing.get_args(kind)[1]
        return {str(k): _build(value_kind, v) for k, v in data.items()}
    return data


def expand_path(entry: str, cwd: str) -> str:
    """A profile path as the host sees it: '~' expanded, '.' the start directory, normalized."""
    if entry == ".":
        return cwd
    return os.path.normpath(os.path.expanduser(entry))
