"""The profile each wrapped entry gets: the shipped one that fits its server, adapted to the entry.

The shipped profiles name their server in `[server] command`, so the one that fits an entry is found by
the server's name (its executable, or the package an `npx`/`uvx`/`python -m` entry runs), and no table
of servers is kept here. The entry adds what only it knows: the names of the variables it sets (their
values stay in the client's config) and the paths it gives the server, bound read-only unless the fitting
profile binds its own example path writable (the filesystem server's folders).
"""

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from mcpbox import paths
from mcpbox.clients.formats import Stdio
from mcpbox.profile import INJECTION_VARIABLES, Profile, load
from mcpbox.store.spec import is_runner

# Variables the sandbox sets itself: passing the client's would point the server at host paths.
SANDBOX_SET = frozenset({"PATH", "HOME", "USER", "LOGNAME", "TMPDIR"})
OFFLINE_RUNNERS = ("bunx", "pnpx")


class EntryProfile(NamedTuple):
    fitting: str  # the shipped profile it was made from
    document: dict[str, Any]  # the profile as TOML data
    notes: tuple[str, ...]  # what the user should know (dropped variables, a runner needing the network)


def shipped() -> dict[str, Profile]:
    return {path.stem: load(str(path)).profile
            for path in sorted(Path(paths.shipped_profiles_dir()).glob("*.toml"))}


def fitting(stdio: Stdio, profiles: dict[str, Profile]) -> str:
    """The shipped profile whose server this entry runs, else `default`."""
    words = {_server_name(stdio.command)}
    for arg in stdio.args:  # the package or module a runner starts is its first word that is no option
        if not arg.startswith("-"):
            words.add(_server_name(arg))
            if arg.startswith("@") and "/" in arg:  # `@playwright/mcp@latest` is also `playwright-mcp`
                scope, _, package = arg[1:].partition("/")
                words.add(f"{scope}-{_server_name(package)}".lower())
            break
    for name, profile in profiles.items():
        if profile.server.command:
            own = _server_name(profile.server.command[0])
            if own in words or own.removeprefix("mcp-") in words:
                return name
    return "default"


def _server_name(word: str) -> str:
    """`@scope/server-x@1.2` -> `server-x`; `mcp_server_time==1.0` -> `mcp-server-time`; a path's last part."""
    name = word.rsplit("/", 1)[-1]
    name = re.split(r"@|==|>=|~=", name, maxsplit=1)[0] if not name.startswith("@") else name
    return name.lower().replace("_", "-").removesuffix(".js").removesuffix(".py")


def path_arguments(stdio: Stdio, command: str) -> list[str]:
    """The absolute or `~/` paths among the arguments (or `--opt=PATH`) that exist on this host."""
    found: list[str] = []
    for arg in stdio.args:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if not (value.startswith("/") or value == "~" or value.startswith("~/")):
            continue
        host = os.path.normpath(os.path.expanduser(value))
        written = value if value.startswith("~") else host
        if host != command and os.path.exists(host) and written not in found:
            found.append(written)
    return found


def make(label: str, entry: str, stdio: Stdio, command: str, profiles: dict[str, Profile]) -> EntryProfile:
    name = fitting(stdio, profiles)
    base = profiles[name]
    document = _document(base)
    document["description"] = f"{label} entry {entry!r}, made by 'mcpbox wrap' from the shipped {name!r} profile"
    sandbox = document.setdefault("sandbox", {})
    notes: list[str] = []
    env = list(base.sandbox.env)
    for variable in (*stdio.env, *stdio.env_names):
        if variable in INJECTION_VARIABLES or variable in SANDBOX_SET:
            notes.append(f"{variable} not passed (the sandbox sets or refuses it)")
        elif variable not in env:
            env.append(variable)
    sandbox["env"] = env
    found = path_arguments(stdio, command)
    examples = [arg for arg in base.server.command[1:] if arg.startswith(("/", "~"))]
    writable = any(example in base.sandbox.read_write for example in examples)
    for key in ("read_only", "read_write"):
        sandbox[key] = [bound for bound in sandbox.get(key, []) if bound not in examples]
    if not base.sandbox.writable_args:  # else the run binds them writable itself (a file by its folder)
        sandbox["read_write" if writable else "read_only"] += found
    if examples:
        notes += _adapt_argument_rules(document, examples, found)
    runner = os.path.basename(command)
    if is_runner(command):
        notes.append(f"runs the copy of its package that mcpbox installs and pins in its store, not {runner}")
    elif runner in OFFLINE_RUNNERS:
        notes.append(f"{runner} fetches the server at start, and the sandbox has no network: "
                     "install the package and point the entry at it")
    return EntryProfile(name, document, tuple(notes))


def _adapt_argument_rules(document: dict[str, Any], examples: list[str], found: list[str]) -> list[str]:
    """A shipped rule names the shipped example folder: it now names the entry's folder, or goes when there
    is more than one folder (one glob per argument cannot name two; the binds still hold the boundary)."""
    rules = document.get("tools", {}).get("arguments", {})
    dropped = False
    for tool in list(rules):
        for argument, glob in list(rules[tool].items()):
            example = next((e for e in examples if glob == e or glob.startswith(e + "/")), None)
            if example is None:
                continue
            if len(found) == 1:
                rules[tool][argument] = found[0] + glob[len(example):]
            else:
                del rules[tool][argument]
                dropped = True
        if not rules[tool]:
            del rules[tool]
    return ["argument rules left out (not exactly one folder); the binds still confine the server"] \
        if dropped else []


def _document(profile: Profile) -> dict[str, Any]:
    """The profile as TOML data, without `[server]` (the entry's command line wins) or an empty `[verify]`."""
    return {key: _plain(value) for key, value in profile._asdict().items()
            if key != "server" and value is not None}


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items() if item is not None}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def render(document: dict[str, Any], header: str) -> str:
    import tomli_w

    return f"# {header}\n# Edit it freely: 'mcpbox wrap' never overwrites it.\n" + tomli_w.dumps(document)


def grants(document: dict[str, Any]) -> str:
    """What the profile grants, in a few words, for the table `wrap` prints: as `mcpbox profiles` says it."""
    import tomli_w

    from mcpbox import explain
    from mcpbox import profile as profiles

    return explain.grants(profiles.parse(tomli_w.dumps(document).encode(), "the profile made for the entry"))