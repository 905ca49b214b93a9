"""Start bwrap with a layout, hold it at its block fd, apply limits, release it.

The server never runs as host root: as root, bwrap would map the sandbox to
uid 0, so root-only files in any bind would be readable and RLIMIT_NPROC would
not apply. mcpbox therefore gives the sandbox a uid of its own and drops to it
before exec. Paths that uid cannot reach (a runtime under /root) are handed
over first: in a private mount namespace of the child, each untraversable
ancestor gets a tmpfs and the needed paths are bound back at the same place
from descriptors opened while still root, so bwrap sees the same layout.
"""

import os
import pwd
import signal
import stat
import subprocess
import threading
from typing import NamedTuple

from mcpbox.errors import SandboxError, say
from mcpbox.sandbox import limits as rlimit
from mcpbox.sandbox.cgroup import Cgroups
from mcpbox.sandbox.layout import BwrapFds, Layout, SandboxUser, bwrap_args

FRESH_UID_BASE = 1_800_000_000  # + mcpbox's pid: unique while it runs, far from real accounts
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000


class Sandbox(NamedTuple):
    process: subprocess.Popen[bytes]
    init_pid: int  # the sandbox's PID 1 (bwrap's init) as the host sees it; its death ends them all
    cgroups: Cgroups


def sandbox_user() -> SandboxUser:
    home = os.path.expanduser("~")
    uid = os.getuid()
    if uid == 0:
        fresh = FRESH_UID_BASE + os.getpid()
        return SandboxUser(fresh, fresh, "mcpbox", home, fresh=True)
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "mcpbox"
    return SandboxUser(uid, os.getgid(), name, home, fresh=False)


def start(layout: Layout, user: SandboxUser, bwrap: str, bpf: bytes,
          limits: list[tuple[int, int]], cgroups: Cgroups) -> "Starting":
    """Start bwrap; it builds the namespaces and then waits until `Starting.release`."""
    seccomp_fd = _memfd("mcpbox-seccomp", bpf)
    file_fds = [_memfd("mcpbox-file", content) for _, content in layout.files]
    info_read, info_write = os.pipe2(os.O_CLOEXEC)
    block_read, block_write = os.pipe2(os.O_CLOEXEC)
    fds = BwrapFds(seccomp_fd, info_write, block_read, file_fds)
    # Options through --args and the server's own environment: bwrap's init lives on inside the sandbox,
    # where its cmdline and environ are readable, so they must hold nothing the server may not know.
    args_fd = _memfd("mcpbox-args", b"".join(word.encode() + b"\0" for word in bwrap_args(layout, fds)))
    idmapped = _idmapped(layout, user)
    try:
        process = subprocess.Popen(
            [bwrap, "--args", str(args_fd), "--", *layout.command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=[args_fd, seccomp_fd, info_write, block_read, *file_fds],
            env=layout.env,
            process_group=0,
            preexec_fn=_become(user, _untraversable(layout, user), idmapped, limits) if user.fresh else None,
        )
    except (OSError, subprocess.SubprocessError) as error:  # the latter: the pre-exec hand-over failed
        for fd in (info_read, block_write):
            os.close(fd)
        cgroups.remove()
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise SandboxError(f"cannot start bwrap ({bwrap}): {reason}; run 'mcpbox doctor'") from None
    finally:
        for fd in (args_fd, seccomp_fd, info_write, block_read, *file_fds, *idmapped.values()):
            os.close(fd)
    # The first cgroup v1 migration waits out an RCU grace period (~13 ms here): start it now,
    # beside bwrap's own set-up, so that it is not paid after it.
    joining = threading.Thread(target=cgroups.join, args=(process.pid,), daemon=True)
    joining.start()
    return Starting(process, info_read, block_write, user, limits, cgroups, joining, layout.server)


class Starting:
    """bwrap between building the sandbox and running the server (the moment to apply limits), and the owner
    of that sandbox to its end: leaving its `with` block, normally or by any exception, abandons bwrap if it
    was never released, else kills what is left of the sandbox, reaps it and removes its cgroups."""

    def __init__(self, process: subprocess.Popen[bytes], info_fd: int, block_fd: int, user: SandboxUser,
                 limits: list[tuple[int, int]], cgroups: Cgroups, joining: threading.Thread,
                 command: list[str]) -> None:
        self.process = process
        self.info_fd = info_fd
        self.block_fd = block_fd
        self.user = user
        self.limits = limits
        self.cgroups = cgroups
        self.joining = joining
        self.command = command  # what runs in the sandbox, its executable resolved
        self.init_pid: int | None = None  # once bwrap said it
        self.held = True  # the info and block fds are open: bwrap is neither released nor abandoned

    def __enter__(self) -> "Starting":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.held:
            self.abandon()
        else:  # released (or dropped already: then this finds nothing left to do)
            stop(self.process, self.cgroups, self.init_pid)

    def release(self) -> Sandbox:
        process = self.process
        try:
            info = _read_info(self.info_fd)  # first: its json import fits in the cgroup move's wait
            self.joining.join()
            if info is None:
                raise self._failed()
            init_pid = self.init_pid = int(info["child-pid"])
            try:
                self.cgroups.join(init_pid)  # in case bwrap forked it before its own move landed
                if not self.user.fresh:
                    rlimit.apply_to(init_pid, self.limits)
                os.write(self.block_fd, b"go")
            except (ProcessLookupError, BrokenPipeError):  # bwrap gave up after forking (a bind it could not make)
                raise self._failed() from None
        except BaseException:
            self._drop()
            raise
        finally:
            self._let_go()
        return Sandbox(process, init_pid, self.cgroups)

    def _failed(self) -> SandboxError:
        """bwrap ended before the server ran: its own message says why."""
        self.process.wait()
        stderr = self.process.stderr
        message = stderr.read(4096).decode(errors="replace").strip() if stderr else ""
        return SandboxError(f"the sandbox could not start: {message or 'bwrap exited'}; run 'mcpbox doctor'")

    def abandon(self) -> None:
        """Stop bwrap before the server ever ran, and remove what was made for it. The block fd is closed only
        after bwrap is gone: bwrap takes its end of file as the release."""
        try:
            self._drop()
        finally:
            self._let_go()

    def _drop(self) -> None:
        _kill_group(self.process)  # first: an interrupted wait must not let the block fd close on a live bwrap
        self.joining.join()
        stop(self.process, self.cgroups, self.init_pid)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):  # no relay took them
            if stream is not None:
                stream.close()

    def _let_go(self) -> None:
        if self.held:
            self.held = False
            os.close(self.info_fd)
            os.close(self.block_fd)


def stop(process: subprocess.Popen[bytes], cgroups: Cgroups, init_pid: int | None) -> None:
    """End a sandbox however far it got, reap it and remove its cgroups; what already ended is left be.

    Killing bwrap's group kills bwrap; its init, in a session of its own, dies with it (--die-with-parent).
    Once bwrap is reaped the init is mcpbox's child (mcpbox becomes a subreaper before the release), so it
    is killed again here, in case, and reaped: the kernel has then ended everything in its PID namespace, and
    the groups are empty when removed.
    """
    _kill_group(process)
    process.wait()
    if init_pid is not None:
        try:
            if os.waitpid(init_pid, os.WNOHANG)[0] == 0:  # an unreaped child of ours: its pid is not reused
                os.kill(init_pid, signal.SIGKILL)
                os.waitpid(init_pid, 0)
        except ChildProcessError:
            pass  # reaped already (by the relay), or not ours to reap (before mcpbox became a subreaper)
    cgroups.remove()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.returncode is not None:  # reaped: its pid may be someone else's now
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # bwrap leads a group of its own (process_group=0)
    except ProcessLookupError:
        pass


def _memfd(name: str, content: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_info(fd: int) -> dict[str, int] | None:
    """bwrap's --info-fd JSON, or None when bwrap died before writing it."""
    import json  # not before bwrap starts: only this and what follows need it

    data = b""
    while not data.rstrip().endswith(b"}"):
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def _idmapped(layout: Layout, user: SandboxUser) -> dict[str, int]:
    """As root, the writable binds as idmapped clones (the sandbox's uid owns root's files there); one line on
    stderr when the host cannot, saying what happens instead."""
    writable = [bind.source for bind in layout.binds if bind.writable] if user.fresh else []
    if not writable:
        return {}
    from mcpbox.sandbox import idmap

    prepared = idmap.prepare(writable, user.uid, user.gid)
    if prepared.problem is not None:
        say(f"read_write binds are not mapped to root ({prepared.problem}); {idmap.FALLBACK}")
    return prepared.trees


def _untraversable(layout: Layout, user: SandboxUser) -> dict[str, list[str]]:
    """Topmost ancestors the sandbox uid cannot search -> the bind sources below each."""
    handover: dict[str, list[str]] = {}
    for bind in layout.binds:
        parts = bind.source.split("/")[1:-1]
        ancestor = ""
        for part in parts:
            ancestor += "/" + part
            info = os.stat(ancestor)
            if not _may_search(info, user):
                handover.setdefault(ancestor, []).append(bind.source)
                break
    return handover


def _may_search(info: os.stat_result, user: SandboxUser) -> bool:
    if info.st_uid == user.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == user.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _become(user: SandboxUser, handover: dict[str, list[str]], trees: dict[str, int],
            limits: list[tuple[int, int]]):
    """The pre-exec step when mcpbox runs as root (runs in the forked child only)."""
    mounts = _private_mounts(handover, trees) if handover or trees else None

    def child() -> None:
        if mounts is not None:
            mounts()
        rlimit.apply_here(limits)
        os.setgroups([])
        os.setgid(user.gid)
        os.setuid(user.uid)

    return child


def _private_mounts(handover: dict[str, list[str]], trees: dict[str, int]):
    """In a mount namespace of the child: bind the paths below each untraversable ancestor back over a tmpfs,
    then attach the writable binds' idmapped clones over their paths (mcpbox.sandbox.idmap).

    ctypes is loaded here, in the parent (the child only calls it), and only when
    there is something to do: its import would otherwise hold up every start.
    """
    import ctypes

    from mcpbox.sandbox import idmap

    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")

    def step() -> None:
        check(libc.unshare(CLONE_NEWNS), "unshare")
        check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount private")
        # Opened in the new namespace (a bind needs its source there), before the tmpfs hides them.
        sources = {source: os.open(source, os.O_PATH | os.O_CLOEXEC)
                   for below in handover.values() for source in below}
        for ancestor, below in handover.items():
            check(libc.mount(b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                             b"mode=0755,size=1m"), f"tmpfs on {ancestor}")
            for source in below:
                if stat.S_ISDIR(os.fstat(sources[source]).st_mode):
                    os.makedirs(source, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(source), exist_ok=True)
                    os.close(os.open(source, os.O_CREAT | os.O_WRONLY, 0o644))
                check(libc.mount(f"/proc/self/fd/{sources[source]}".encode(), source.encode(), None,
                                 MS_BIND | MS_REC, None), f"bind {source}")
        idmap.attach(libc, trees)

    return step
