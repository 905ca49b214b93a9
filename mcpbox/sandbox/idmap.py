"""Writable binds that behave when mcpbox runs as root: idmapped mounts (Linux >= 5.12).

As root the server runs as a fresh unprivileged uid (spawn), so a `read_write` bind of root's files would
be read-only to it, and a file it could write would belong to that uid on the host. An idmapped mount of
each writable bind maps host uid and gid 0 to the fresh ones on that mount only: there the server owns
root's files and what it makes is root's on the host, while it holds no right of root anywhere else (other
owners' files show as nobody's). The mounts are cloned detached here, while mcpbox is root, and attached
over their own paths in the pre-exec child's private mount namespace, where bwrap binds them: the host's
mount table never holds them, and they vanish with the sandbox.

ctypes is imported only when mcpbox is root and a profile has writable binds.
"""

import os
from typing import NamedTuple

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442  # the same numbers on x86_64 and arm64
OPEN_TREE_CLONE, AT_RECURSIVE, AT_EMPTY_PATH, AT_FDCWD = 0x1, 0x8000, 0x1000, -100
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
CLONE_NEWUSER = 0x10000000
FALLBACK = ("the server can write there only what others may write; run mcpbox as a normal user, or on Linux "
            ">= 5.12 with a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs >= 6.3)")


class Refused(Exception):
    """The host cannot make the idmapped mounts; the message says why, for one line on stderr."""


class Prepared(NamedTuple):
    trees: dict[str, int]  # bind source -> a detached, idmapped clone of it (O_CLOEXEC)
    problem: str | None  # why the writable binds are not idmapped, for one line on stderr


def prepare(sources: list[str], uid: int, gid: int) -> Prepared:
    """Idmapped clones of `sources` mapping host 0 to (uid, gid); none and the reason if the host cannot."""
    if not sources:
        return Prepared({}, None)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    trees: dict[str, int] = {}
    try:
        userns = _mapping_namespace(libc, uid, gid)
    except Refused as refused:
        return Prepared({}, str(refused))
    try:
        attr = _mount_attr(ctypes, userns)
        for source in sources:
            tree = libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(source),
                                OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE)
            if tree < 0:
                raise Refused(f"cannot clone the mount of {source}: {os.strerror(ctypes.get_errno())}")
            trees[source] = tree
            if libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr),
                            ctypes.sizeof(attr)) != 0:
                raise Refused(f"cannot idmap {source}: {os.strerror(ctypes.get_errno())}")
    except Refused as refused:
        release(trees)
        return Prepared({}, str(refused))
    finally:
        os.close(userns)
    return Prepared(trees, None)


def attach(libc, trees: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """In the pre-exec child's private mount namespace: each clone over the path it was cloned from."""
    import ctypes

    for source, tree in trees.items():
        if libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, os.fsencode(source), MOVE_MOUNT_F_EMPTY_PATH) != 0:
            raise OSError(ctypes.get_errno(), f"attach the idmapped {source}: {os.strerror(ctypes.get_errno())}")


def release(trees: dict[str, int]) -> None:
    for tree in trees.values():
        os.close(tree)


def _mapping_namespace(libc, uid: int, gid: int) -> int:  # type: ignore[no-untyped-def]
    """A user namespace whose id 0 is (uid, gid) outside, held by a forked child only until it is opened."""
    ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
    done_read, done_write = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: single-threaded, as unshare(CLONE_NEWUSER) needs
        try:
            os.close(ready_read)
            os.close(done_write)  # so that the parent closing its own copy ends the read below
            os.write(ready_write, b"1" if libc.unshare(CLONE_NEWUSER) == 0 else b"0")
            os.read(done_read, 1)
        finally:
            os._exit(0)
    try:
        os.close(ready_write)
        os.close(done_read)
        if os.read(ready_read, 1) != b"1":
            raise Refused("no user namespace to map ids with (unshare refused)")
        try:
            for name, outside in (("uid_map", uid), ("gid_map", gid)):
                with open(f"/proc/{pid}/{name}", "w") as handle:
                    handle.write(f"0 {outside} 1\n")
            return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise Refused(f"cannot map ids in a user namespace: {error.strerror}") from None
    finally:
        os.close(ready_read)
        os.close(done_write)
        os.waitpid(pid, 0)


def _mount_attr(ctypes, userns: int):  # type: ignore[no-untyped-def]
    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                    ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

    return MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns)
