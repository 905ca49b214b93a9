"""Resource limits the kernel enforces, so that no burst outruns a polling watchdog.

Both RLIMIT_NPROC and a pids cgroup count tasks, threads included, so they hold
the profile's `threads`; `processes` is counted by the watchdog, which sees the
tree. RLIMIT_NPROC is counted per user in each user namespace and charged up the
chain: set before the sandbox's user namespace exists, it would count every
process of the caller's uid. So it is set before exec only when the sandbox
has a uid of its own (mcpbox runs as root), and otherwise applied with
prlimit to the sandbox's first process while bwrap waits on its block fd.
Memory goes to a memory cgroup where one can be made, else RLIMIT_DATA;
never RLIMIT_AS, which breaks Node's WebAssembly reservations.
"""

from __future__ import annotations

import resource

from mcpbox.profile import Limits

MIB = 1024 * 1024
BWRAP_PROCESSES = 2  # bwrap's own monitor and the sandbox's init share the sandbox's uid


def rlimits(limits: Limits, memory_in_cgroup: bool, tasks_in_cgroup: bool = False) -> list[tuple[int, int]]:
    """The rlimits for the sandbox. Where a cgroup holds memory or tasks, the rlimit is left out: the cgroup
    counts the whole tree, and its events tell mcpbox when it refused something (RLIMIT_NPROC, checked first,
    would refuse unseen)."""
    values = [(resource.RLIMIT_NPROC, limits.threads + BWRAP_PROCESSES)] if not tasks_in_cgroup else []
    values += [
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * MIB),
        (resource.RLIMIT_CORE, 0),
    ]
    if not memory_in_cgroup:
        values.append((resource.RLIMIT_DATA, limits.memory_mb * MIB))
    return values


def apply_here(values: list[tuple[int, int]]) -> None:
    for kind, value in values:
        value = _within(value, resource.getrlimit(kind)[1])
        resource.setrlimit(kind, (value, value))


def apply_to(pid: int, values: list[tuple[int, int]]) -> None:
    for kind, value in values:
        value = _within(value, resource.prlimit(pid, kind)[1])
        resource.prlimit(pid, kind, (value, value))


def _within(value: int, hard: int) -> int:
    """A limit the host already holds lower stays lower: the sandbox may only get stricter."""
    return value if hard == resource.RLIM_INFINITY else min(value, hard)
