"""`mcpbox run`: profile -> command -> sandbox -> relay -> the server's exit status.

Ordered for start-up time: only what spawning needs runs before bwrap starts
(the profile and the seccomp filter come from content-keyed caches, an earlier
verification from a cache entry that is confirmed by lstat while bwrap builds
the sandbox); the relay and the watchdog are set up while the server boots.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mcpbox import paths
from mcpbox import profile as profiles
from mcpbox.errors import SandboxError, UsageError, say
from mcpbox.sandbox import cgroup, layout, limits, resolve, seccomp, spawn

PR_SET_CHILD_SUBREAPER = 36
XDG_ROOTS = frozenset({".local", ".config"})  # where state folders belong, though each holds secrets elsewhere


def run(profile_name: str, command: list[str], learner: Any = None) -> int:
    """`learner` (mcpbox learn): told the session's decisions, the egress proxy's connections, the firewall and
    the watchdog, to write a profile from them after the session."""
    loaded = profiles.load(profile_name)
    profile = loaded.profile
    argv = _argv(loaded, command)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) "
                           "and run 'mcpbox doctor'")
    cgroup_name = f"mcpbox-{os.getpid()}"
    # The one owner of the sandbox: whatever ends this block (the server, a stop signal, the client's stdout
    # failing, a bug) leaves nothing of the sandbox and no cgroup behind before an error reaches the CLI.
    signed = profile.verify if profile.verify is not None and profile.verify.artifact is not None else None
    with _egress(loaded, learner.connected if learner is not None else None) as egress, \
            (start_sandbox(profile, argv, bwrap, cgroup_name, egress=egress) if signed is None
             else _start_verified(profile, signed, argv, bwrap, cgroup_name, egress)) as starting:
        _become_subreaper()
        sandbox = starting.release()
        # while the server boots: what only the relay needs
        from mcpbox.audit import AuditLog
        from mcpbox.relay.pump import Pump
        from mcpbox.sandbox.watchdog import Watchdog

        relay = _firewall(loaded, starting.command)
        watchdog = Watchdog(sandbox.process.pid, profile.limits, sandbox.cgroups)
        if learner is not None:
            learner.watch(relay, watchdog, starting.command)
        status = Pump(sandbox, relay, watchdog.check, b"[server] ", explain=_explainer(loaded, starting.command),
                      start_seconds=profile.limits.start_seconds,
                      audit=AuditLog(profile.audit.path, deferred=True, server=_server_label(loaded)),
                      pins=relay.pins, observe=learner.seen if learner is not None else None).run()
    if status == 128 + signal.SIGKILL and watchdog.memory_limit_hits():
        say(f"the server reached its memory limit ({profile.limits.memory_mb} MB) and the kernel stopped it")
    return status


def _argv(loaded: profiles.LoadedProfile, command: list[str]) -> list[str]:
    """The command line wins over the profile's [server] command. `npx`/`uvx` would fetch the server at every
    start (the sandbox has no network): they run the copy pinned in mcpbox's store, installed on first use."""
    argv = command or [os.path.expanduser(word) for word in loaded.profile.server.command]
    if not argv:
        raise UsageError(f"no command: give one after '--', or set [server] command in {loaded.path}")
    if os.path.basename(argv[0]) in ("npx", "uvx"):
        from mcpbox.store import commands

        return commands.command(loaded, argv)
    if loaded.profile.verify is not None and loaded.profile.verify.provenance is not None:
        raise UsageError(f"{loaded.path}: [verify] provenance applies to npx/uvx servers (a package from a "
                         f"registry), not to {argv[0]}; sign it and name 'artifact' and 'bundle' instead")
    return argv


def _server_label(loaded: profiles.LoadedProfile) -> str:
    """Which server an audit line is about, as `mcpbox log --server` names it: its profile's name."""
    return os.path.basename(loaded.path).removesuffix(".toml")


def _explainer(loaded: profiles.LoadedProfile, command: list[str]):
    """What the pump calls when the server ends or stalls before answering: mcpbox.relay.diagnose, imported
    only then."""
    def explain(tail: list[str], status: int | None, stalled_after: float | None):
        from mcpbox.relay import diagnose

        return diagnose.explain(tail, status, diagnose.gather(loaded.profile, loaded.path, command), stalled_after)

    return explain


def _firewall(loaded: profiles.LoadedProfile, command: list[str]):
    from mcpbox.relay import filters
    from mcpbox.relay.firewall import Firewall

    profile = loaded.profile
    secret_names = [n for n in profile.sandbox.env if filters.says_secret(n)]
    secrets = {name: os.environ[name] for name in (*secret_names, *profile.redact.env) if os.environ.get(name)}
    secrets.update({name: value for name, value in profile.sandbox.set_values().items()
                    if value and (filters.says_secret(name) or name in profile.redact.env)})
    granted = [path for path, _ in profile.sandbox.granted(os.getcwd())]
    pins = pins_for(loaded.path, command)
    return Firewall(profile, pins=pins, secrets=secrets, home=os.path.expanduser("~"), granted_paths=granted,
                    server_name=pins.name)


def pins_for(profile_path: str, command: list[str]):
    """The pin store of one server identity: the profile and the resolved command it runs."""
    from mcpbox.relay.pins import PinStore, identity_key, store_path

    profile = os.path.abspath(profile_path)
    return PinStore(store_path(identity_key(profile, command)), {"profile": profile, "command": command})


def reset_pins(profile_name: str, command: list[str]) -> int:
    loaded = profiles.load(profile_name)
    argv = _argv(loaded, command)
    resolved = [resolve.find_executable(argv[0], os.environ.get("PATH")), *argv[1:]]
    store = pins_for(loaded.path, resolved)
    try:
        os.remove(store.path)
    except FileNotFoundError:
        print(f"no pins stored for {' '.join(resolved)} under {loaded.path}")
        return 0
    print(f"forgot the pinned definitions of {' '.join(resolved)} under {loaded.path}; "
          "the next run pins what the server says then")
    return 0


@contextlib.contextmanager
def _egress(loaded: profiles.LoadedProfile,
            observe: Callable[[dict[str, object]], None] | None = None) -> Iterator[str | None]:
    """A network list: mcpbox's proxy for the session (its socket's folder, bound into the sandbox), ended
    with it. Nothing of it is imported otherwise. `observe` gets each connection's audit record (learn)."""
    listed = loaded.profile.sandbox.allowlist()
    if not listed:
        yield None
        return
    from mcpbox.egress import rules
    from mcpbox.egress.proxy import Proxy

    user = spawn.sandbox_user()
    with Proxy([rules.parse(entry) for entry in listed], loaded.path, loaded.profile.audit.path,
               loaded.profile.limits.connections, owner=user.uid if user.fresh else None, observe=observe) as proxy:
        yield proxy.directory


def _start_verified(profile: profiles.Profile, signed: profiles.Verify, argv: list[str], bwrap: str,
                    cgroup_name: str, egress: str | None = None) -> spawn.Starting:
    """[verify]: the staged copy its publisher signed, bound read-only at the original path, is what runs.

    bwrap holds the server until its release, so an earlier verification is checked while bwrap builds the
    sandbox with it; if it no longer holds, that sandbox is dropped unreleased and the artifact verified
    afresh before a new one starts."""
    from mcpbox.trust import verify

    def start(result: verify.Verified, name: str) -> spawn.Starting:
        return start_sandbox(profile, argv, bwrap, name, [layout.Bind(result.staged, result.artifact)], egress)

    found = verify.earlier(signed)
    if found is not None:
        starting = start(found.result, cgroup_name)
        try:
            if verify.served(found, profile.audit.path) is not None:
                return starting
        except BaseException:
            starting.abandon()
            raise
        starting.abandon()
        cgroup_name += "-2"  # the dropped sandbox's group may still be draining
    return start(verify.afresh(signed, profile.audit.path), cgroup_name)


def start_sandbox(profile: profiles.Profile, argv: list[str], bwrap: str, cgroup_name: str,
                  verified: Sequence[layout.Bind] = (), egress: str | None = None) -> spawn.Starting:
    """Everything from a profile and a command to bwrap waiting at its block fd (`mcpbox doctor`'s trial too)."""
    command = resolve.resolve(argv, os.path.expanduser("~"), os.environ.get("PATH"),
                              {bind.dest: bind.source for bind in verified}, profile.sandbox.writable_args)
    granted = [path for path, _ in profile.sandbox.granted(os.getcwd())]
    for path, note in command.notes:  # an argument inside a profile's bind needs no word
        if not any(paths.within(path, top) for top in granted):
            say(note)
    user = spawn.sandbox_user()
    facts = layout.host_facts(profile.sandbox.network)
    _check_binds(profile, facts.cwd)
    groups = cgroup.create(cgroup_name, profile.limits.memory_mb * limits.MIB,
                           profile.limits.threads + limits.BWRAP_PROCESSES)
    try:
        plan = layout.plan(profile, command, facts, user, verified, egress)
        bpf = seccomp.compile_bpf(bool(profile.sandbox.network))  # a list: inet sockets, to its own loopback
        values = limits.rlimits(profile.limits, memory_in_cgroup=groups.memory, tasks_in_cgroup=groups.pids)
    except BaseException:
        groups.remove()
        raise
    return spawn.start(plan, user, bwrap, bpf, values, groups)


def _check_binds(profile: profiles.Profile, cwd: str) -> None:
    """Every bind must exist, but a server's own state folder in the home (a shipped profile's
    `read_write = ["~/.local/share/mcp-memory"]`) is made on first use, private to the user."""
    home = os.path.expanduser("~")
    for key in ("read_only", "read_write"):
        for entry in getattr(profile.sandbox, key):
            path = profiles.expand_path(entry, cwd)
            if os.path.exists(path):
                continue
            if key == "read_write" and entry.startswith("~/") and paths.within(path, home) and home != "/" \
                    and not (resolve.SECRET_NAMES - XDG_ROOTS) & set(path[len(home) + 1:].split("/")):
                os.makedirs(path, mode=0o700)
                say(f"made {path} for [sandbox] read_write (a folder the server keeps its state in)")
                continue
            raise profiles.ProfileError(f"sandbox.{key}: {entry} ({path}) does not exist")


def _become_subreaper() -> None:
    """Orphans of the sandbox (bwrap can leave one) are re-parented to mcpbox, which reaps them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SandboxError(f"cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")
