"""The profile: what a server may touch and say, read from TOML.

The schema is typed NamedTuples: immutable, cheap to define (a frozen
dataclass costs four times as much at import, plus `inspect`), and rebuilt
from the cache of validated profiles without pydantic, which alone costs more
than mcpbox's start-up budget. pydantic validates the TOML strictly (unknown
keys, wrong types, no coercion) only when the profile's bytes are new.

No `from __future__ import annotations` here: a NamedTuple compiles every
string annotation into a ForwardRef as its class is made (~1 ms at import for
this schema), while real types cost nothing and are what `_build` reads back.
The cache holds marshal data, which the interpreter has loaded already: json
costs 1 ms to import, and nothing else before the sandbox starts needs it.
"""

import marshal
import os
import types
import typing
from typing import Any, Literal, NamedTuple

from mcpbox import cache, paths
from mcpbox.errors import ProfileError


INJECTION_VARIABLES = frozenset({
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "PYTHONUSERBASE", "PYTHONINSPECT", "NODE_OPTIONS", "NODE_PATH", "BASH_ENV", "ENV", "PERL5OPT",
    "PERL5LIB", "RUBYOPT", "RUBYLIB", "GCONV_PATH", "MALLOC_CONF",
})
REPOSITORY_FORMS = (r"https://[^/\s]+/[^/\s]+/[^/\s]+", r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class Server(NamedTuple):
    command: tuple[str, ...] = ()


class Sandbox(NamedTuple):
    network: bool | tuple[str, ...] = False  # a list: only those hosts, through mcpbox's proxy (mcpbox.egress)
    read_only: tuple[str, ...] = ()
    read_write: tuple[str, ...] = ()
    writable_args: bool = False  # the paths the command line names are bound writable, not read-only
    env: tuple[str, ...] = ()  # host variables passed through by name
    set_env: dict[str, str] = {}  # variables the profile sets: [sandbox.set_env] NAME = "value" ('~/' expanded)

    def granted(self, cwd: str) -> list[tuple[str, bool]]:
        """The profile's binds as the host sees them ('~' expanded, '.' the start folder): (path, writable)."""
        return [(expand_path(entry, cwd), writable)
                for entries, writable in ((self.read_only, False), (self.read_write, True)) for entry in entries]

    def host_network(self) -> bool:
        """The host's whole network is shared (`network = true`): not for a list of hosts."""
        return self.network is True

    def allowlist(self) -> tuple[str, ...]:
        return self.network if isinstance(self.network, tuple) else ()

    def set_values(self) -> dict[str, str]:
        """`set_env` as the server gets it: a value starting with '~/' is below the user's home."""
        return {name: os.path.expanduser(value) if value == "~" or value.startswith("~/") else value
                for name, value in self.set_env.items()}


class Limits(NamedTuple):
    memory_mb: int = 1024
    processes: int = 64  # processes in the sandbox, counted by the watchdog
    threads: int = 1024  # tasks (threads of all processes): the kernel's pids cgroup and RLIMIT_NPROC
    connections: int = 32  # open connections through the egress proxy at once (a network list)
    start_seconds: int = 30  # how long a server may leave its first request unanswered before it is stopped
    open_files: int = 1024
    cpu_seconds: int = 3600
    file_size_mb: int = 64
    tmp_mb: int = 256
    message_mb: int = 16


class Tools(NamedTuple):
    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()
    arguments: dict[str, dict[str, str]] = {}  # [tools.arguments.TOOL] ARGUMENT = "glob" its paths must match
    rate: dict[str, str] = {}  # TOOL (a glob) = "N/UNIT" (s, min, h, day): at most N calls per UNIT


class Catalog(NamedTuple):
    """Resources (by URI glob) or prompts (by name glob)."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()


class Client(NamedTuple):
    sampling: bool = False
    elicitation: bool = True
    roots: bool = True


class Verify(NamedTuple):
    """Who must have signed the server: an exact identity, or a repository (any matching ref).

    What is signed is a file or tree the profile names with its bundle (`artifact`, `bundle`), or, for an
    npx/uvx server, the package in mcpbox's store, by the provenance its registry publishes (`provenance`)."""

    artifact: str | None = None  # the file or directory tree that runs
    bundle: str | None = None  # its sigstore bundle
    identity: str | None = None
    issuer: str | None = None
    repository: str | None = None
    workflow: str | None = None
    ref: str | None = None
    trusted_root: str | None = None
    provenance: Literal["required", "if-present"] | None = None


class Redact(NamedTuple):
    """What is replaced by `[redacted:NAME]` in everything sent to the client."""

    builtin: bool = True  # the built-in token shapes (GitHub, AWS, OpenAI, Anthropic, Slack, keys...)
    patterns: tuple[str, ...] = ()  # more regular expressions
    env: tuple[str, ...] = ()  # variables whose values are secrets, besides names that say so
    keep_ansi: bool = False  # keep ANSI escapes in results (never in definitions)


class Audit(NamedTuple):
    arguments: Literal["hash", "full", "none"] = "hash"
    path: str | None = None


class Profile(NamedTuple):
    description: str = ""
    server: Server = Server()
    sandbox: Sandbox = Sandbox()
    limits: Limits = Limits()
    tools: Tools = Tools()
    resources: Catalog = Catalog()
    prompts: Catalog = Catalog()
    client: Client = Client()
    verify: Verify | None = None
    redact: Redact = Redact()
    audit: Audit = Audit()


class LoadedProfile(NamedTuple):
    path: str
    profile: Profile


def find(name_or_path: str) -> str:
    """A path is used as given; a bare name is looked up in the user's then the shipped profiles."""
    if os.sep in name_or_path or name_or_path.endswith(".toml"):
        candidate = os.path.expanduser(name_or_path)
        if os.path.isfile(candidate):
            return candidate
        raise ProfileError(f"profile {candidate}: no such file")
    searched = [paths.user_profiles_dir(), paths.shipped_profiles_dir()]
    for directory in searched:
        path = os.path.join(directory, f"{name_or_path}.toml")
        if os.path.isfile(path):
            return path
    where = " or ".join(searched)
    raise ProfileError(f"no profile named {name_or_path!r} in {where}; give a path or run 'mcpbox profiles'")


def load(name_or_path: str) -> LoadedProfile:
    path = find(name_or_path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ProfileError(f"profile {path}: cannot read it: {error.strerror}") from None
    return LoadedProfile(path, parse(raw, path))


def parse(raw: bytes, origin: str) -> Profile:
    entry_key = cache.source_of(__file__) + b"\0" + raw
    cached = cache.read("profiles", entry_key)
    if cached is not None:
        try:
            return _build(Profile, marshal.loads(cached))
        except (ValueError, TypeError, EOFError):
            pass
    profile = _validate(raw, origin)
    cache.write("profiles", entry_key, marshal.dumps(_plain(profile)))
    return profile


def _validate(raw: bytes, origin: str) -> Profile:
    import json
    import tomllib

    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileError(f"profile {origin}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"profile {origin}: invalid TOML: {error}") from None
    table_problem = _array_for_table(Profile, document, ())
    if table_problem:
        raise ProfileError(f"profile {origin}: {table_problem}")
    from pydantic import ValidationError

    try:
        profile = adapter().validate_json(json.dumps(document, default=str))
    except ValidationError as error:
        raise ProfileError(f"profile {origin}: {_first_problem(error)}") from None
    for problem in _semantic_problems(profile):
        raise ProfileError(f"profile {origin}: {problem}")
    return profile


def adapter() -> Any:
    """pydantic's validator of a profile, in JSON mode: strict types, yet tables may fill NamedTuples and arrays
    tuples. `mcpbox schema` is generated from it (mcpbox.schema)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Profile, config={"strict": True})


UNION_MEMBERS = {"bool": "true or false", "tuple[str, ...]": "a list of strings"}


def _first_problem(error: Any) -> str:
    problems = error.errors()
    first = problems[0]
    parts = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    kind = first["type"]
    if parts and parts[-1] in UNION_MEMBERS:  # a value fitting none of a union's forms: one problem, all forms
        members = [p for p in problems if [str(part) for part in p["loc"]][:-1] == parts[:-1]
                   and str(p["loc"][-1]) in UNION_MEMBERS]
        forms = " or ".join(UNION_MEMBERS[str(p["loc"][-1])] for p in members)
        more = f" (and {len(problems) - len(members)} more problem(s))" if len(problems) > len(members) else ""
        return f"{'.'.join(parts[:-1])}: must be {forms}, got {first.get('input')!r}{more}"
    location = ".".join(parts)
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        message = "unknown key (check its spelling and section)"
    elif kind in ("missing", "missing_argument"):
        message = "required key is missing"
    else:
        message = f"{first['msg'].lower()}, got {first.get('input')!r}"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{location}: {message}{more}"


RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0,
              "day": 86400.0}




def parse_rate(text: str) -> tuple[int, float]:
    """'60/min' -> (60, 60.0): at most that many calls per that many seconds."""
    count, _, unit = text.partition("/")
    if not count.strip().isdigit() or unit.strip() not in RATE_UNITS:
        raise ValueError(f"{text!r} is not a rate like '60/min' (units: {', '.join(sorted(RATE_UNITS))})")
    return int(count), RATE_UNITS[unit.strip()]


def _semantic_problems(profile: Profile) -> list[str]:
    import re

    problems: list[str] = []
    for key in ("read_only", "read_write"):
        for entry in getattr(profile.sandbox, key):
            if not (entry == "." or entry.startswith(("/", "~"))):
                problems.append(
                    f"sandbox.{key}: {entry!r} is relative; write an absolute path, "
                    "a ~/ path, or '.' for the directory mcpbox is started in"
                )
    for key, names in (("env", profile.sandbox.env), ("set_env", tuple(profile.sandbox.set_env))):
        for name in names:
            if not name or "=" in name or "\0" in name:
                problems.append(f"sandbox.{key}: {name!r} is not a variable name")
            elif name in INJECTION_VARIABLES:
                problems.append(f"sandbox.{key}: {name} injects code into the server's runtime; mcpbox never "
                                "passes it")
    for name in sorted(set(profile.sandbox.env) & set(profile.sandbox.set_env)):
        problems.append(f"sandbox.set_env.{name}: also passed from the host by sandbox.env; keep one of them")
    for name, value in profile.sandbox.set_env.items():
        if "\0" in value:
            problems.append(f"sandbox.set_env.{name}: a value cannot hold a NUL character")
    if isinstance(profile.sandbox.network, tuple):
        from mcpbox.egress import rules

        if not profile.sandbox.network:
            problems.append("sandbox.network: an empty list grants nothing; write network = false")
        for entry in profile.sandbox.network:
            try:
                rules.parse(entry)
            except ValueError as error:
                problems.append(f"sandbox.network: {error}")
    for expression in profile.redact.patterns:
        try:
            re.compile(expression)
        except re.error as error:
            problems.append(f"redact.patterns: {expression!r} is not a regular expression ({error})")
    for tool, rate in profile.tools.rate.items():
        try:
            parse_rate(rate)
        except ValueError as error:
            problems.append(f"tools.rate.{tool}: {error}")
    for key, value in profile.limits._asdict().items():
        if value <= 0:
            problems.append(f"limits.{key}: must be a positive number, got {value}")
    if 0 < profile.limits.threads < profile.limits.processes:
        problems.append(f"limits.threads: {profile.limits.threads} is below limits.processes "
                        f"({profile.limits.processes}); every process is at least one thread")
    if profile.verify is not None:
        problems += _verify_problems(profile.verify)
    return problems


def _verify_problems(verify: Verify) -> list[str]:
    """One policy form or the other, never a mix: a half-written policy must not verify anything."""
    import re

    problems: list[str] = []
    if (verify.artifact is None) != (verify.bundle is None):
        problems.append("verify: 'artifact' and 'bundle' go together (the signed file or tree and its sigstore "
                        "bundle)")
    elif (verify.artifact is None) == (verify.provenance is None):
        problems.append("verify: give 'artifact' and 'bundle' (a signed file or tree), or 'provenance' (an npx/uvx "
                        "server's package, by its registry's attestations), not both")
    for key in ("artifact", "bundle", "trusted_root"):
        value = getattr(verify, key)
        if value is not None and not value.startswith(("/", "~")):
            problems.append(f"verify.{key}: {value!r} is relative; write an absolute path or a ~/ path")
    if (verify.identity is None) == (verify.repository is None):
        problems.append("verify: give exactly one of 'identity' (an exact signer) or 'repository' "
                        "(any signature from a repository's workflows)")
    if not verify.issuer:
        problems.append("verify.issuer: required key is missing (the OIDC issuer that vouched for the signer, "
                        "e.g. https://token.actions.githubusercontent.com)")
    for key in ("workflow", "ref"):
        if getattr(verify, key) is not None and verify.repository is None:
            problems.append(f"verify.{key}: only applies with 'repository'")
    for key in ("identity", "repository", "workflow", "ref"):
        if getattr(verify, key) == "":
            problems.append(f"verify.{key}: must not be empty")
    repository = verify.repository
    if repository and not any(re.fullmatch(form, repository) for form in REPOSITORY_FORMS):
        problems.append(f"verify.repository: {repository!r} is neither https://HOST/ORG/REPO nor ORG/REPO")
    if verify.ref and not verify.ref.startswith("refs/"):
        problems.append(f"verify.ref: {verify.ref!r} is not a git ref glob like 'refs/tags/*'")
    return problems


def _is_table(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


def _array_for_table(kind: Any, data: Any, location: tuple[str, ...]) -> str | None:
    """pydantic would fill a NamedTuple from an array by position; a profile section must be a table."""
    if not _is_table(kind) or not isinstance(data, dict):
        return None
    for name, value in data.items():
        hint = kind.__annotations__.get(name)
        options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        for option in options:
            if _is_table(option):
                where = ".".join((*location, name))
                if not isinstance(value, dict):
                    return f"{where}: must be a table ([{where}]), got {value!r}"
                problem = _array_for_table(option, value, (*location, name))
                if problem:
                    return problem
    return None


def _plain(value: Any) -> Any:
    """A profile as plain tuples, since marshal takes no NamedTuple (its other values are plain already)."""
    return tuple(_plain(item) for item in value) if isinstance(value, tuple) else value


def _build(kind: Any, data: Any) -> Any:
    """Rebuild validated, cached data into the schema's NamedTuples (no validation). Only tables need it:
    marshal gives back every other value (strings, numbers, tuples and dicts of strings) as it was dumped."""
    if data is None:
        return None
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if _is_table(kind):  # cached as a plain tuple, in field order
        return kind(*(_build(hint, value) for hint, value in zip(kind.__annotations__.values(), data, strict=True)))
    return data


def expand_path(entry: str, cwd: str) -> str:
    """A profile path as the host sees it: '~' expanded, '.' the start directory, normalized."""
    return cwd if entry == "." else expand(entry)


def expand(path: str) -> str:
    """An absolute or '~' profile path as the host sees it."""
    return os.path.normpath(os.path.expanduser(path))
