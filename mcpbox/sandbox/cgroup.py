"""A memory and pids cgroup for the sandbox, where this host lets mcpbox make one.

Root on cgroup v1 (or a host that delegates v2 with the controllers enabled
below mcpbox's own cgroup) gets a child group per sandbox; everyone else falls
back to rlimits, and `mcpbox doctor` says which holds.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable

ROOT = "/sys/fs/cgroup"
EMPTYING_SECONDS = 2.0  # how long a group may stay busy after its processes were killed


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: str, value: object) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


class Cgroups:
    def __init__(self) -> None:
        self.directories: list[str] = []
        self.memory = False
        self.pids = False
        self._memory_events_at_removal: int | None = None  # the count survives the group's removal
        self.sweeping: threading.Thread | None = None  # started by `create`, joined by `remove`

    def join(self, pid: int) -> None:
        for directory in self.directories:
            _write(os.path.join(directory, "cgroup.procs"), pid)

    def memory_events(self) -> int:
        """How often the memory limit made the kernel kill: `oom_kill` of v1 memory.oom_control or
        v2 memory.events (v1 memory.failcnt stays 0 on 6.x kernels even then; it is the fallback)."""
        if self._memory_events_at_removal is not None:
            return self._memory_events_at_removal
        for directory in self.directories:
            for name in ("memory.oom_control", "memory.events"):
                try:
                    for line in _read(os.path.join(directory, name)).splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
                except (OSError, ValueError):
                    continue
            try:
                return int(_read(os.path.join(directory, "memory.failcnt")))
            except (OSError, ValueError):
                pass
        return 0

    def memory_usage(self) -> int | None:
        """The group's memory charge now (v1 memory.usage_in_bytes, v2 memory.current); None without one."""
        for directory in self.directories:
            for name in ("memory.usage_in_bytes", "memory.current"):
                try:
                    return int(_read(os.path.join(directory, name)))
                except (OSError, ValueError):
                    continue
        return None

    def refused_tasks(self) -> int:
        """How often the pids limit refused a fork or a new thread (`max` of pids.events, v1 and v2)."""
        for directory in self.directories:
            try:
                for line in _read(os.path.join(directory, "pids.events")).splitlines():
                    key, _, value = line.partition(" ")
                    if key == "max":
                        return int(value)
            except (OSError, ValueError):
                continue
        return 0

    def remove(self) -> None:
        """Remove the groups once their processes are gone; also the end of the sweep `create` started.

        A process killed a moment ago may not have left its group yet (or, when it is not mcpbox's child,
        not been reaped), and rmdir says EBUSY until it has: retried for a bounded while, not given up at once.
        """
        if self.sweeping is not None:
            self.sweeping.join()
            self.sweeping = None
        if self._memory_events_at_removal is None:  # read before the files go: the caller reports it after
            self._memory_events_at_removal = self.memory_events()
        deadline = time.monotonic() + EMPTYING_SECONDS
        for directory in self.directories:
            while True:
                try:
                    os.rmdir(directory)
                except OSError as error:
                    if error.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
                break


def own_paths() -> dict[str, str]:
    """Controller name (or '' for v2) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    try:
        lines = _read("/proc/self/cgroup").splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def create(name: str, memory_bytes: int, processes: int) -> Cgroups:
    groups = Cgroups()
    own = own_paths()
    for controller, setting, value in (("memory", "memory.limit_in_bytes", memory_bytes),
                                       ("pids", "pids.max", processes)):
        if controller in own and os.path.isdir(os.path.join(ROOT, controller)):
            directory = os.path.join(ROOT, controller, own[controller].lstrip("/"), name)
            if _make(directory, {setting: value}):
                groups.directories.append(directory)
                setattr(groups, controller, True)
    if groups.directories:
        groups.sweeping = _prime(own)
    if not groups.directories and "" in own and os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
        parent = os.path.join(ROOT, own[""].lstrip("/"))
        enabled = subtree_controllers(parent)
        settings = {}
        if "memory" in enabled:
            settings["memory.max"] = memory_bytes
            settings["memory.swap.max"] = 0
        if "pids" in enabled:
            settings["pids.max"] = processes
        if settings and _make(os.path.join(parent, name), settings):
            groups.directories.append(os.path.join(parent, name))
            groups.memory = "memory.max" in settings
            groups.pids = "pids.max" in settings
            groups.sweeping = _start(_sweep, [parent])
    return groups


def subtree_controllers(parent: str) -> list[str]:
    """The controllers a v2 cgroup passes on to groups made below it; none when that cannot be read."""
    try:
        return _read(os.path.join(parent, "cgroup.subtree_control")).split()
    except OSError:
        return []


def _prime(own: dict[str, str]) -> threading.Thread | None:
    """Start the kernel's wait for an RCU grace period now, off mcpbox's critical path.

    The first cgroup v1 migration after a quiet spell waits out a grace period
    (~13 ms here); moves made while that state lasts are fast. Re-joining the
    cgroup mcpbox is already in changes nothing but starts that wait while
    mcpbox still prepares the sandbox, so moving bwrap in later costs little.
    """
    parents = [os.path.join(ROOT, c, own[c].lstrip("/")) for c in ("memory", "pids") if c in own]
    return _start(_rejoin_and_sweep, parents) if parents else None


def _start(target: Callable[[list[str]], None], parents: list[str]) -> threading.Thread:
    """A thread owned by the Cgroups it is stored in (joined by `remove`), not a daemon left to die with mcpbox."""
    thread = threading.Thread(target=target, args=(parents,))
    thread.start()
    return thread


def _rejoin_and_sweep(parents: list[str]) -> None:
    try:
        _write(os.path.join(parents[0], "cgroup.procs"), os.getpid())
    except OSError:
        pass
    _sweep(parents)


def _sweep(parents: list[str]) -> None:
    """Remove groups left by an mcpbox that was killed (SIGKILL skips its clean-up)."""
    for parent in parents:
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            pid = name.removeprefix("mcpbox-").split("-")[0]  # mcpbox-PID, or mcpbox-PID-N for a retry
            if name.startswith("mcpbox-") and pid.isdigit() and not _alive(int(pid)):
                try:
                    os.rmdir(os.path.join(parent, name))  # fails, harmlessly, if it still holds a process
                except OSError:
                    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _make(directory: str, settings: dict[str, int]) -> bool:
    try:
        os.mkdir(directory)
    except OSError:
        return False
    try:
        for setting, value in settings.items():
            target = os.path.join(directory, setting)
            if os.path.exists(target):
                _write(target, value)
        swap = os.path.join(directory, "memory.memsw.limit_in_bytes")
        if "memory.limit_in_bytes" in settings and os.path.exists(swap):
            _write(swap, settings["memory.limit_in_bytes"])
        return True
    except OSError:
        try:
            os.rmdir(directory)
        except OSError:
            pass
        return False
