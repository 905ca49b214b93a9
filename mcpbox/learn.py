"""`mcpbox learn`: a least-privilege profile written from what a real session used.

The session runs exactly as under `mcpbox run`, in the sandbox and firewall of the base profile, so nothing
is granted while learning that the base does not grant. The learner is told every decision the firewall
took (mcpbox.relay.interface.Decision) and, at the end, what the firewall listed and the watchdog's peaks.
The profile it writes keeps the base's sandbox and narrows the rest to what was used: the tools called, an
argument glob per path argument (the common folder of the paths seen, never wider than the base's binds),
the resources read and prompts fetched, the client capabilities the server asked for and got, the limits'
peaks with headroom. A comment above each entry says what was observed. Call arguments are never written
into the profile but as the folders they lie in.

A base with a network list runs the session through mcpbox's egress proxy, which hands the learner the
audit record of every connection it judged: the hosts used are kept (with what went through them), the ones
the base refused are named in comments only. A base with the host's whole network (`true`) is kept as it is:
those connections never pass the proxy, so there is nothing to narrow it from.
"""

import datetime as dt
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcpbox import profile as profiles
from mcpbox.egress import rules
from mcpbox.errors import UsageError
from mcpbox.relay.interface import Decision

ASKS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
MIB = 1024 * 1024


class Learner:
    def __init__(self, loaded: profiles.LoadedProfile, out: str) -> None:
        if os.path.lexists(out):
            raise UsageError(f"{out} exists: mcpbox learn does not overwrite a file; give another --out")
        self.loaded = loaded
        self.out = out
        self.calls: Counter[str] = Counter()
        self.paths: dict[tuple[str, str], list[str]] = {}
        self.resources: set[str] = set()
        self.prompts: set[str] = set()
        self.asked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.connections: list[dict[str, object]] = []
        self.relay: Any = None
        self.watchdog: Any = None
        self.command: list[str] = []

    def watch(self, relay: Any, watchdog: Any, command: list[str]) -> None:
        self.relay, self.watchdog, self.command = relay, watchdog, command

    def connected(self, record: dict[str, object]) -> None:
        """The egress proxy's audit record of one connection, from its thread (list.append is atomic; the
        profile is rendered only after the proxy has joined them all)."""
        self.connections.append(record)

    def seen(self, decision: Decision) -> None:
        if decision.method in ASKS:
            self.asked[ASKS[decision.method]] += 1
        if decision.decision != "allow":
            if decision.decision == "deny" and decision.name is not None:
                self.refused[f"{decision.method} {decision.name}"] += 1
            return
        if decision.method == "tools/call" and isinstance(decision.name, str):
            self.calls[decision.name] += 1
            if isinstance(decision.arguments, dict):
                for argument, value in decision.arguments.items():
                    for text in value if isinstance(value, list) else [value]:
                        if isinstance(text, str) and text.startswith(("/", "~/")):
                            self.paths.setdefault((decision.name, argument), []).append(text)
        elif decision.method == "resources/read" and isinstance(decision.name, str):
            self.resources.add(decision.name)
        elif decision.method == "prompts/get" and isinstance(decision.name, str):
            self.prompts.add(decision.name)

    def write(self) -> str:
        """The learned profile, written to `out` (private to the user); its path."""
        text = render(self)
        profiles.parse(text.encode(), self.out)  # what learn writes must load as a profile
        fd = os.open(self.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return self.out


def argument_glob(paths: list[str], granted: list[str]) -> str | None:
    """`FOLDER/**` for the common folder of the paths a call named, if it lies within a bind; else None."""
    expanded = [os.path.normpath(os.path.expanduser(path)) for path in paths]
    common = os.path.commonpath(expanded)
    if len(expanded) == 1 or common in expanded and not os.path.isdir(common):
        common = os.path.dirname(common) if not os.path.isdir(common) else common
    inside = [top for top in granted if common == top or common.startswith(top.rstrip("/") + "/")]
    return f"{common.rstrip('/')}/**" if inside else None


def value(item: Any) -> str:
    """One TOML value as a profile writes it."""
    from tomli_w import dumps

    return dumps({"v": item})[4:].strip()


@dataclass
class Usage:
    """What went through one learned network entry, for the comment above it."""

    connections: int = 0
    sent: int = 0
    received: int = 0
    allowed_by: set[str] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, object]) -> None:
        self.connections += 1
        self.sent += _count(record, "sent")
        self.received += _count(record, "received")
        self.allowed_by.add(str(record["rule"]))
        if record.get("decision") != "allow":
            self.failures[str(record.get("reason"))] += 1

    def describe(self, entry: str) -> str:
        said = f"{self.connections} connection(s), {self.sent} bytes sent, {self.received} received"
        if self.allowed_by != {entry}:
            said += f"; allowed by the base's {', '.join(sorted(self.allowed_by))}"
        return said + "".join(f"; {count} failed: {reason}" for reason, count in sorted(self.failures.items()))


def _count(record: dict[str, object], key: str) -> int:
    number = record.get(key)
    return number if isinstance(number, int) else 0


def learned_entry(host: str, port: int, allowed_by: rules.Entry) -> str:
    """The narrowest entry that allows host:port as the base's entry did: the very host a wildcard matched,
    an address as the base named it, and the port only where the base's entry named one (a bare name keeps
    ports 443 and 80, as a link to http:// redirected to https:// needs both)."""
    name = rules.normal(host) if allowed_by.wildcard else allowed_by.host
    return name if allowed_by.ports == rules.DEFAULT_PORTS else rules.target(name, port)


def network_lines(network: bool | tuple[str, ...], connections: Sequence[dict[str, object]]) -> list[str]:
    """`network = ...` with what the egress proxy judged. Never wider than the base: `false` and `true` stay,
    a list keeps only the hosts connected to through its entries; the hosts it refused are named in comments,
    for the user to decide on, and granted nothing."""
    if network is False:
        return ["# as the base profile: no network", "network = false"]
    if network is True:
        return ["# as the base profile: the host's whole network. Its connections do not pass mcpbox's proxy, so",
                "# which hosts the server reached is not known. To narrow it, learn again within a base whose",
                "# network lists the hosts you expect: those used are kept, those it refuses named in comments.",
                "network = true"]
    entries = {entry.text: entry for entry in map(rules.parse, network)}
    used: dict[str, Usage] = {}
    refused: Counter[str] = Counter()
    for record in connections:
        host, port, rule = record.get("host"), record.get("port"), record.get("rule")
        if not isinstance(host, str) or not isinstance(port, int) or not isinstance(rule, str):
            continue  # not judged: a request the proxy could not read
        if record.get("decision") == "deny":  # then the rule says why
            refused[f"{rules.target(rules.normal(host), port)} ({rule})"] += 1
        else:  # allowed by the entry `rule`, and reached or not
            used.setdefault(learned_entry(host, port, entries[rule]), Usage()).add(record)
    lines = [f"# the base's list: {', '.join(network)}; the entries the session used are kept"]
    lines += [f"# tried, refused by the base profile: {what}, {count} time(s)"
              for what, count in sorted(refused.items())]
    if not used:
        return [*lines, f"# {'no connection was allowed' if refused else 'the server made no connection'}",
                "network = false"]
    lines.append("network = [")
    for entry, usage in sorted(used.items()):
        lines += [f"    # {usage.describe(entry)}", f"    {value(entry)},"]
    return [*lines, "]"]


def _description(command: list[str]) -> str:
    return f"learned from a session of {os.path.basename(command[0])}" if command else "learned"


def render(learner: Learner) -> str:
    base = learner.loaded.profile
    sandbox, limits = base.sandbox, base.limits
    granted = [path for path, _ in sandbox.granted(os.getcwd())]
    if learner.command:  # the folders its command line names are bound too
        from mcpbox.sandbox.resolve import argument_paths

        granted += argument_paths(learner.command[1:], os.path.expanduser("~"), sandbox.writable_args)[0]
    listed = learner.relay.listed if learner.relay is not None else {}
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Learned by 'mcpbox learn' on {when} from a session of:",
             f"#   {' '.join(learner.command)}",
             f"# under the profile {learner.loaded.path}. Everything below was granted there; what the session",
             "# did not use is left out. Review it before use.",
             f"description = {value(_description(learner.command))}",
             "", "[sandbox]", *network_lines(sandbox.network, learner.connections),
             "# as the base profile: learning grants nothing it does not"]
    lines += [f"read_only = {value(list(sandbox.read_only))}", f"read_write = {value(list(sandbox.read_write))}",
              f"writable_args = {value(sandbox.writable_args)}"]
    present = [name for name in sandbox.env if name in os.environ]
    lines += [f"# passed from the environment mcpbox ran in (of the base's {', '.join(sandbox.env) or 'none'})",
              f"env = {value(present)}"]
    if sandbox.set_env:
        lines += ["[sandbox.set_env]", *(f"{name} = {value(text)}" for name, text in sandbox.set_env.items())]
    peak_mb = math.ceil(learner.watchdog.peak_memory / MIB) if learner.watchdog is not None else 0
    peak_processes = learner.watchdog.peak_processes if learner.watchdog is not None else 0
    memory = min(limits.memory_mb, max(128, math.ceil(peak_mb * 1.5 / 64) * 64))
    processes = min(limits.processes, max(4, peak_processes * 2))
    lines += ["", "[limits]", f"# peak seen: {peak_mb} MB (the cgroup's charge, else PSS), with half again as headroom",
              f"memory_mb = {memory}", f"# peak seen: {peak_processes} process(es), doubled",
              f"processes = {processes}"]
    lines += [f"{key} = {getattr(limits, key)}" for key in ("threads", "open_files", "cpu_seconds", "file_size_mb",
                                                            "tmp_mb", "message_mb", "connections", "start_seconds")]
    tools = sorted(learner.calls)
    shown = sorted(listed.get("tool", set()))
    lines += ["", "[tools]", f"# listed: {', '.join(shown) or 'none'}",
              "# called: " + (", ".join(f"{name} ({count}x)" for name, count in sorted(learner.calls.items()))
                              or "none"), f"allow = {value(tools)}"]
    for (tool, argument), seen in sorted(learner.paths.items()):
        glob = argument_glob(seen, granted)
        if glob is None:
            lines.append(f"# {tool}.{argument}: {len(seen)} path(s) outside the binds; no rule written")
            continue
        lines += [f"[tools.arguments.{value(tool)}]",
                  f"# {len(seen)} path(s) seen, all in {glob[:-3]}", f"{value(argument)} = {value(glob)}"]
    lines += ["", "[resources]", f"# listed: {len(listed.get('resource', set()))}; read: {len(learner.resources)}",
              f"allow = {value(sorted(learner.resources))}", "", "[prompts]",
              f"# listed: {', '.join(sorted(listed.get('prompt', set()))) or 'none'}",
              f"allow = {value(sorted(learner.prompts))}", "", "[client]"]
    for ask in ("sampling", "elicitation", "roots"):
        granted_ask = bool(getattr(base.client, ask)) and learner.asked[ask] > 0
        lines += [f"# the server asked for {ask} {learner.asked[ask]} time(s)"
                  + ("" if getattr(base.client, ask) else " (the base refused it)"), f"{ask} = {value(granted_ask)}"]
    if learner.refused:
        lines += ["", "# refused during the session (not granted here): "
                  + ", ".join(f"{what} ({count}x)" for what, count in sorted(learner.refused.items()))]
    return "\n".join(lines) + "\n"
