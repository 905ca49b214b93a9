"""The backstop: watches the sandbox's process tree and names the limit it crossed.

The kernel enforces what it can (rlimits, the memory and pids cgroups); this counts what it cannot see
(processes, as against threads; the tree's CPU time; its memory where no cgroup holds it) and gives the user
a reason instead of a silent death. Memory is the cgroup's own charge where one exists (the kernel enforces
it, and its kills are reported at exit), else the tree's PSS: shared copy-on-write pages are counted once
over all the processes sharing them, never once per process as summed RSS would. A fork or thread the
kernel refused is said once, with the limit that refused it. psutil is imported at the first check, after
the server has started, to keep it off the start-up path.
"""

from __future__ import annotations


from mcpbox.errors import say
from mcpbox.profile import Limits
from mcpbox.sandbox.cgroup import Cgroups
from mcpbox.sandbox.limits import BWRAP_PROCESSES, MIB


class Watchdog:
    def __init__(self, root_pid: int, limits: Limits, cgroups: Cgroups) -> None:
        self._root_pid = root_pid
        self._limits = limits
        self._cgroups = cgroups
        self._root = None
        self._refused_said = False
        self.peak_memory = 0  # bytes: the cgroup's charge or the tree's PSS, the most seen at a check
        self.peak_processes = 0

    def check(self) -> str | None:
        import psutil

        self._say_refusals()
        try:
            if self._root is None:
                self._root = psutil.Process(self._root_pid)
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return None
        memory = cpu = 0.0
        for process in tree:
            try:
                if not self._cgroups.memory:
                    memory += _pss(process)
                times = process.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue
        charged = self._cgroups.memory_usage() if self._cgroups.memory else None
        self.peak_memory = max(self.peak_memory, int(memory if charged is None else charged))
        self.peak_processes = max(self.peak_processes, len(tree) - BWRAP_PROCESSES)
        limits = self._limits
        if memory > limits.memory_mb * MIB:
            return f"the server used {memory / MIB:.0f} MB of memory (PSS), over its limit of {limits.memory_mb} MB"
        if len(tree) > limits.processes + BWRAP_PROCESSES:
            return (f"the server ran {len(tree) - BWRAP_PROCESSES} processes, over its limit of {limits.processes} "
                    "([limits] processes)")
        if cpu > limits.cpu_seconds:
            return f"the server used {cpu:.0f} s of CPU time, over its limit of {limits.cpu_seconds} s"
        return None

    def memory_limit_hits(self) -> int:
        return self._cgroups.memory_events()

    def _say_refusals(self) -> None:
        """One line, the first time the pids cgroup refuses a fork or thread: the server may go on, failing
        in a way its own messages rarely explain ("can't start new thread", EAGAIN)."""
        if self._refused_said or not self._cgroups.pids:
            return
        refused = self._cgroups.refused_tasks()
        if refused:
            self._refused_said = True
            say(f"the kernel refused the server a new thread or process ({refused}x so far): "
                f"it reached its limit of {self._limits.threads} threads ([limits] threads)")


def _pss(process) -> float:  # type: ignore[no-untyped-def]
    """The process's proportional set size: its private pages plus its share of each shared one. Where its
    smaps cannot be read (a host that restricts ptrace), its RSS: an overcount, never an undercount."""
    import psutil

    try:
        return float(process.memory_full_info().pss)
    except psutil.AccessDenied:
        return float(process.memory_info().rss)
