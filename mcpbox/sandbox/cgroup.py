"""A memory and pids cgroup for the sandbox, where this host lets mcpbox make one.

Root on cgroup v1 (or a host that delegates v2 with the controllers enabled
below mcpbox's own cgroup) gets a child group per sandbox; everyone else falls
back to rlimits, and `mcpbox doctor` says which holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass
class Cgroups:
    directories: list[Path] = field(default_factory=list)
    memory: bool = False
    pids: bool = False

    def join(self, pid: int) -> None:
        for directory in self.directories:
            (directory / "cgroup.procs").write_text(str(pid))

    def memory_events(self) -> int:
        """How often the memory limit was hit (v1 failcnt or v2 max events)."""
        for directory in self.directories:
            for name in ("memory.failcnt",):
                try:
                    return int((directory / name).read_text())
                except (OSError, ValueError):
                    continue
            try:
                for line in (directory / "memory.events").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except (OSError, ValueError):
                continue
        return 0

    def remove(self) -> None:
        for directory in self.directories:
            try:
                directory.rmdir()
            except OSError:
                pass


def _own_paths() -> dict[str, str]:
    """Controller name (or '' for v2) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def create(name: str, memory_bytes: int, processes: int) -> Cgroups:
    groups = Cgroups()
    own = _own_paths()
    for controller, setting, value in (("memory", "memory.limit_in_bytes", memory_bytes),
                                       ("pids", "pids.max", processes)):
        if controller in own and (ROOT / controller).is_dir():
            directory = ROOT / controller / own[controller].lstrip("/") / name
            if _make(directory, {setting: value}):
                groups.directories.append(directory)
                setattr(groups, controller, True)
    if not groups.directories and "" in own and (ROOT / "cgroup.controllers").exists():
        parent = ROOT / own[""].lstrip("/")
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        settings = {}
        if "memory" in enabled:
            settings["memory.max"] = memory_bytes
            settings["memory.swap.max"] = 0
        if "pids" in enabled:
            settings["pids.max"] = processes
        if settings and _make(parent / name, settings):
            groups.directories.append(parent / name)
            groups.memory = "memory.max" in settings
            groups.pids = "pids.max" in settings
    return groups


def _make(directory: Path, settings: dict[str, int]) -> bool:
    try:
        directory.mkdir()
    except OSError:
        return False
    try:
        for setting, value in settings.items():
            target = directory / setting
            if target.exists():
                target.write_text(str(value))
        swap = directory / "memory.memsw.limit_in_bytes"
        if "memory.limit_in_bytes" in settings and swap.exists():
            swap.write_text(str(settings["memory.limit_in_bytes"]))
        return True
    except OSError:
        try:
            os.rmdir(directory)
        except OSError:
            pass
        return False
