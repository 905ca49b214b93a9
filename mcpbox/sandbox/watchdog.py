"""The backstop: sums the sandbox's process tree and names the limit it crossed.

The kernel enforces the limits (rlimits, cgroups); this catches what they
cannot see as a whole (the tree's total memory and CPU time) and gives the
user a reason instead of a silent death. psutil is imported at the first
check, after the server has started, to keep it off the start-up path.
"""

from __future__ import annotations

from mcpbox.profile import Limits
from mcpbox.sandbox.cgroup import Cgroups
from mcpbox.sandbox.limits import BWRAP_PROCESSES, MIB


class Watchdog:
    def __init__(self, root_pid: int, limits: Limits, cgroups: Cgroups) -> None:
        self._root_pid = root_pid
        self._limits = limits
        self._cgroups = cgroups
        self._root = None

    def check(self) -> str | None:
        import psutil

        try:
            if self._root is None:
                self._root = psutil.Process(self._root_pid)
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return None
        rss = cpu = 0.0
        for process in tree:
            try:
                rss += process.memory_info().rss
                times = process.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue
        limits = self._limits
        if rss > limits.memory_mb * MIB:
            return f"the server used {rss / MIB:.0f} MB of memory, over its limit of {limits.memory_mb} MB"
        if len(tree) > limits.processes + BWRAP_PROCESSES:
            return f"the server ran {len(tree)} processes, over its limit of {limits.processes}"
        if cpu > limits.cpu_seconds:
            return f"the server used {cpu:.0f} s of CPU time, over its limit of {limits.cpu_seconds} s"
        return None

    def memory_limit_hits(self) -> int:
        return self._cgroups.memory_events()
