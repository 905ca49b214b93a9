"""`mcpbox wrap`, `unwrap` and `clients`: put mcpbox in front of a client's stdio servers, and take it away.

A plan is made first from the file's text alone (what the new text is, which profiles and records to
write, what to tell the user), so that a file that does not parse, a `--dry-run` or an unknown entry
name writes nothing. Then: new profiles, the record of the replaced entries, a backup, the config.

What unwrap puts back is the exact text wrap took out, kept in mcpbox's state (not in the entry: clients
reject keys they do not know, and mcpbox's argv is not the entry's). An entry someone edited since is
left as it is, and said so.
"""

import difflib
import os
import re
import shutil
import sys
from typing import NamedTuple

from mcpbox import paths
from mcpbox.clients import files, profiles
from mcpbox.clients.documents import Entry, entry_id, open_document
from mcpbox.clients.formats import CLIENTS, Client, Stdio, default_path, stdio, with_command
from mcpbox.errors import McpboxError, UsageError
from mcpbox.store.spec import is_runner


class Row(NamedTuple):
    entry: str
    profile: str
    detail: str


class Plan(NamedTuple):
    path: str
    old: str
    new: str
    profiles: dict[str, str]  # path -> text, for profiles that do not exist yet
    records: dict[str, files.Record]  # entry id -> record to add (wrap) or to forget (unwrap)
    rows: list[Row]
    installs: tuple[tuple[str, list[str]], ...] = ()  # (profile path, npx/uvx argv) to fill the store for


def client_named(name: str) -> Client:
    if name not in CLIENTS:
        raise UsageError(f"unknown client {name!r}; mcpbox knows {', '.join(CLIENTS)} (see 'mcpbox clients')")
    return CLIENTS[name]


def mcpbox_argv() -> list[str]:
    """mcpbox by absolute path: clients start servers with a minimal PATH (Claude Desktop)."""
    script = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "mcpbox")
    if os.access(script, os.X_OK):
        return [script]
    return [os.path.abspath(sys.executable), "-m", "mcpbox"]


def is_mcpbox(server: Stdio) -> bool:
    return os.path.basename(server.command) == "mcpbox" or server.args[:2] == ("-m", "mcpbox")


def resolve(command: str, env: dict[str, str]) -> str | None:
    """The command's absolute path, found on the entry's PATH if it sets one, else on mcpbox's."""
    if "$" in command:  # ${VAR} interpolation: only the client knows what it becomes
        return None
    expanded = os.path.expanduser(command)
    if os.sep in expanded and not os.path.isabs(expanded):  # relative to the client's directory
        return None
    found = shutil.which(expanded, path=env.get("PATH") or os.environ.get("PATH", os.defpath))
    return os.path.abspath(found) if found else None


def plan_wrap(client: Client, path: str, text: str, only: list[str]) -> Plan:
    document = open_document(client, path, text)
    entries = _selected(document.entries, only, path)
    shipped = profiles.shipped()
    records: dict[str, files.Record] = {}
    new_profiles: dict[str, str] = {}
    rows: list[Row] = []
    installs: list[tuple[str, list[str]]] = []
    taken: set[str] = set()
    launcher = mcpbox_argv()
    for entry in entries:
        label = _label(entry)
        server = stdio(entry.value)
        if isinstance(server, str):
            rows.append(Row(label, "-", server))
            continue
        if is_mcpbox(server):
            rows.append(Row(label, _profile_of(server), "already wrapped"))
            continue
        command = resolve(server.command, server.env)
        if command is None and is_runner(server.command):  # mcpbox runs its store's copy, not the runner
            command = os.path.basename(server.command)
        if command is None:
            rows.append(Row(label, "-", f"NOT wrapped: cannot find {server.command!r} on the PATH "
                                        "(write its absolute path in the entry, then wrap again)"))
            continue
        name = _profile_name(client, entry, taken)
        made = profiles.make(client.label, label, server, command, shipped)
        profile_path = os.path.join(paths.user_profiles_dir(), f"{name}.toml")
        state = "kept" if os.path.exists(profile_path) else "new"
        if state == "new":
            new_profiles[profile_path] = profiles.render(
                made.document, f"{client.label}: {label} ({server.command}); from the shipped {made.fitting!r} profile")
        args = [*launcher[1:], "run", "--profile", name, "--", command, *server.args]
        if is_runner(command):
            installs.append((profile_path, [command, *server.args]))
        snippet = document.replace(entry, with_command(entry.value, launcher[0], args))
        records[entry_id(entry)] = {"name": entry.keys[-1], "scope": entry.scope, "profile": name,
                                    "original": snippet.original, "wrapped": snippet.wrapped}
        detail = profiles.grants(made.document) if state == "new" else f"see 'mcpbox check {name}'"
        rows.append(Row(label, f"{name} ({state})", "; ".join((detail, *made.notes))))
    new = document.result()
    if new != text:
        open_document(client, path, new)  # what mcpbox writes must parse as the client reads it
    return Plan(path, text, new, new_profiles, records, rows, tuple(installs))


def plan_unwrap(client: Client, path: str, text: str, only: list[str]) -> Plan:
    document = open_document(client, path, text)
    entries = _selected(document.entries, only, path)
    records = files.load_records(path)
    new, restored, rows = text, {}, []
    for entry in entries:
        label = _label(entry)
        record = records.get(entry_id(entry))
        server = stdio(entry.value)
        if record is None:
            if not isinstance(server, str) and is_mcpbox(server):
                rows.append(Row(label, _profile_of(server), "NOT unwrapped: mcpbox has no record of its original "
                                                            "(edit it by hand, or restore a backup)"))
            continue
        if new.count(record["wrapped"]) != 1:
            rows.append(Row(label, record["profile"], "NOT unwrapped: edited since it was wrapped; left as it is"))
            continue
        new = new.replace(record["wrapped"], record["original"])
        restored[entry_id(entry)] = record
        rows.append(Row(label, record["profile"], "restored (the profile stays, for a later wrap)"))
    if new != text:
        open_document(client, path, new)
    return Plan(path, text, new, {}, restored, rows)


def _selected(entries: list[Entry], only: list[str], path: str) -> list[Entry]:
    if not only:
        return entries
    missing = sorted(set(only) - {entry.keys[-1] for entry in entries})
    if missing:
        raise UsageError(f"{path} has no server entry named {', '.join(map(repr, missing))}; nothing was changed")
    return [entry for entry in entries if entry.keys[-1] in only]


def _label(entry: Entry) -> str:
    name = entry.keys[-1]
    return f"{name} (project {_short(entry.scope)})" if entry.scope else name


def _short(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if paths.within(path, home) and home != "/" else path


def _profile_of(server: Stdio) -> str:
    args = list(server.args)
    return args[args.index("--profile") + 1] if "--profile" in args[:-1] else "-"


def _profile_name(client: Client, entry: Entry, taken: set[str]) -> str:
    """CLIENT-NAME (CLIENT-PROJECT-NAME in a project scope), in [a-z0-9-]; unique within one wrap."""
    parts = [client.name, os.path.basename(entry.scope.rstrip("/")) if entry.scope else "", entry.keys[-1]]
    base = re.sub(r"[^a-z0-9]+", "-", "-".join(part for part in parts if part).lower()).strip("-")
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    taken.add(name)
    return name


def apply_wrap(plan: Plan) -> str:
    """Profiles, then the records, then the config (with its backup); return the backup's path ('' if none)."""
    if plan.new == plan.old:
        return ""
    for path, text in plan.profiles.items():
        files.write_private(path, text)
    files.save_records(plan.path, {**files.load_records(plan.path), **plan.records})
    return files.replace(plan.path, plan.new, plan.old)


def apply_unwrap(plan: Plan) -> str:
    if plan.new == plan.old:
        return ""
    backup = files.replace(plan.path, plan.new, plan.old)
    records = files.load_records(plan.path)
    files.save_records(plan.path, {key: value for key, value in records.items() if key not in plan.records})
    return backup


def run(action: str, client_name: str, config: str | None, only: list[str], dry_run: bool) -> int:
    """The `wrap` and `unwrap` subcommands: plan, show, and (unless --dry-run) write."""
    client = client_named(client_name)
    path = os.path.realpath(os.path.expanduser(config)) if config else os.path.realpath(default_path(client))
    text = files.read(path)
    plan = (plan_wrap if action == "wrap" else plan_unwrap)(client, path, text, only)
    shown = _short(path)
    if dry_run:
        sys.stdout.writelines(difflib.unified_diff(
            plan.old.splitlines(keepends=True), plan.new.splitlines(keepends=True), shown, f"{shown} ({action}ped)"))
        if plan.new != plan.old and not plan.new.endswith("\n"):
            print()
        print(f"{shown}: --dry-run, nothing written" + "".join(f"; would write {_short(p)}" for p in plan.profiles))
    else:
        apply = apply_wrap if action == "wrap" else apply_unwrap
        backup = apply(plan)
        done = len(plan.records)
        print(f"{shown}: {done} {'entry' if done == 1 else 'entries'} {action}ped"
              + (f", the previous file kept as {_short(backup)}" if backup else ", nothing to change"))
        if action == "wrap":
            _fill_store(plan.installs)
    print(_table(plan.rows))
    if plan.records and not dry_run:
        print(f"Restart {client.label} to use {'them' if action == 'wrap' else 'the original entries'}."
              + (f" 'mcpbox unwrap {client.name}' puts the entries back." if action == "wrap" else ""))
    return 0


def _fill_store(installs: tuple[tuple[str, list[str]], ...]) -> None:
    """Install and pin what each npx/uvx entry runs now, so that the client's first start needs no network;
    one that fails here is installed on its first run instead."""
    if not installs:
        return
    from mcpbox.store import commands
    from mcpbox.store.spec import parse

    for profile_path, argv in installs:
        try:
            spec = parse(argv)
            entry = commands.ensure(profile_path, spec, print, "")
        except McpboxError as error:
            print(f"{' '.join(argv[:3])}: not installed now ({error}); mcpbox tries again on its first run")
        else:
            print(f"{spec.requirement}: {entry.package}@{entry.version} pinned for "
                  f"{os.path.basename(profile_path).removesuffix('.toml')}")


def _table(rows: list[Row]) -> str:
    if not rows:
        return "(no server entries)"
    rows = [Row("entry", "profile", "grants / what happened"), *rows]
    first = max(len(row.entry) for row in rows)
    second = max(len(row.profile) for row in rows)
    return "\n".join(f"{row.entry:<{first}}  {row.profile:<{second}}  {row.detail}".rstrip() for row in rows)


def clients() -> int:
    """`mcpbox clients`: each known client's config on this machine, its stdio entries and how many are wrapped."""
    width = max(len(name) for name in CLIENTS)
    for client in CLIENTS.values():
        path = default_path(client)
        if not os.path.exists(path):
            status = "not found"
        else:
            try:
                document = open_document(client, path, files.read(path))
            except McpboxError as error:
                status = f"unreadable: {error}"
            else:
                servers = [s for s in (stdio(entry.value) for entry in document.entries) if not isinstance(s, str)]
                wrapped = sum(is_mcpbox(server) for server in servers)
                status = f"{len(servers)} stdio {'entry' if len(servers) == 1 else 'entries'}, {wrapped} wrapped"
        print(f"{client.name:<{width}}  {_short(path)}  {status}")
    return 0
