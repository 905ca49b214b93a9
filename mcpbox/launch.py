"""`mcpbox run`: profile -> command -> sandbox -> relay -> the server's exit status.

Ordered for start-up time: only what spawning needs runs before bwrap starts
(the profile and the seccomp filter come from content-keyed caches); the relay
and the watchdog are set up while the server boots.
"""

from __future__ import annotations

import os
import shutil
import signal

from mcpbox import profile as profiles
from mcpbox.errors import McpboxError, SandboxError, UsageError
from mcpbox.sandbox import cgroup, layout, limits, resolve, seccomp, spawn

PR_SET_CHILD_SUBREAPER = 36


class VerificationUnavailable(McpboxError):
    pass


def run(profile_name: str, command: list[str]) -> int:
    loaded = profiles.load(profile_name)
    profile = loaded.profile
    if profile.verify is not None:
        raise VerificationUnavailable(
            f"profile {loaded.path} asks for signature verification ([verify]), which this mcpbox "
            "cannot do yet; it will not run the server unverified"
        )
    argv = command or [os.path.expanduser(word) for word in profile.server.command]
    if not argv:
        raise UsageError(f"no command: give one after '--', or set [server] command in {loaded.path}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) "
                           "and run 'mcpbox doctor'")
    starting = start_sandbox(profile, argv, bwrap, f"mcpbox-{os.getpid()}")
    # While bwrap builds the namespaces: what only the relay needs.
    from mcpbox.relay.passthrough import PassThrough
    from mcpbox.relay.pump import Pump
    from mcpbox.sandbox.watchdog import Watchdog

    _become_subreaper()
    sandbox = starting.release()
    watchdog = Watchdog(sandbox.process.pid, profile.limits, sandbox.cgroups)
    status = Pump(sandbox, PassThrough(), watchdog.check, b"[server] ").run()
    if status == 128 + signal.SIGKILL and watchdog.memory_limit_hits():
        os.write(2, f"mcpbox: the server reached its memory limit ({profile.limits.memory_mb} MB) "
                    "and the kernel stopped it\n".encode())
    return status


def start_sandbox(profile: profiles.Profile, argv: list[str], bwrap: str, cgroup_name: str) -> spawn.Starting:
    """Everything from a profile and a command to bwrap waiting at its block fd (`mcpbox doctor`'s trial too)."""
    command = resolve.resolve(argv, os.path.expanduser("~"), os.environ.get("PATH"))
    user = spawn.sandbox_user()
    facts = layout.host_facts(profile.sandbox.network)
    _check_binds(profile, facts.cwd)
    groups = cgroup.create(cgroup_name, profile.limits.memory_mb * limits.MIB,
                           profile.limits.processes + limits.BWRAP_PROCESSES)
    try:
        plan = layout.plan(profile, command, facts, user)
        bpf = seccomp.compile_bpf(profile.sandbox.network)
        values = limits.rlimits(profile.limits, memory_in_cgroup=groups.memory)
    except BaseException:
        groups.remove()
        raise
    return spawn.start(plan, user, bwrap, bpf, values, groups)


def _check_binds(profile: profiles.Profile, cwd: str) -> None:
    for key in ("read_only", "read_write"):
        for entry in getattr(profile.sandbox, key):
            path = profiles.expand_path(entry, cwd)
            if not os.path.exists(path):
                raise profiles.ProfileError(f"sandbox.{key}: {entry} ({path}) does not exist")


def _become_subreaper() -> None:
    """Orphans of the sandbox (bwrap can leave one) are re-parented to mcpbox, which reaps them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SandboxError(f"cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")
