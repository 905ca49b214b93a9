"""mcpbox's private, content-addressed store: the copy that is verified is the copy that runs.

Verifying a path and then running that path leaves a window in which the
file can change. So the artifact is copied, regular files only, each opened
with O_NOFOLLOW and hashed while it is copied, into a store only the user can
reach (`~/.cache/mcpbox/store`, mode 0700). The copy is then compared with the
signed digests and bound read-only into the sandbox at the original path;
whatever happens to the original afterwards changes nothing that runs.

Entries are named by content (a file's sha256; a tree's sha256 over its
sorted listing of path, digest and executable bit), are read-only once
complete, and are never replaced: a sandbox may have one bound. Symlinks and
special files are refused, never followed, unless the signed statement
ignores their path (then they are not staged at all).
"""

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from typing import Callable, NamedTuple

from mcpbox import paths
from mcpbox.trust.errors import ArtifactError

CHUNK = 1024 * 1024
STALE_SECONDS = 3600
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Staged(NamedTuple):
    path: str  # the entry in the store: bound read-only at the artifact's path
    digest: str  # sha256 of the file, or of the tree's listing
    files: dict[str, str]  # relative path -> sha256 ({name: sha256} for a single file)
    watched: list[tuple[str, os.stat_result]]  # the original's files and directories as read, by relative
    # path ("" is the artifact itself)


def store_dir() -> str:
    return os.path.join(paths.cache_dir(), "store")


def stage_file(path: str) -> Staged:
    base = _prepare()
    fd, info = _open_regular(path, None, path)
    try:
        mode = _mode(info)
        temporary = os.path.join(base, "tmp", f"file-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            digest = _copy(fd, temporary, mode, path)
            final = os.path.join(base, "files", f"{digest}-{'x' if mode & 0o100 else 'r'}")
            if os.path.exists(final):
                os.unlink(temporary)
            else:
                os.rename(temporary, final)
        except BaseException:
            _discard(temporary)
            raise
    finally:
        os.close(fd)
    return Staged(final, digest, {os.path.basename(path): digest}, [("", info)])


def stage_tree(root: str, ignores: Callable[[str], bool]) -> Staged:
    """Copy every regular file of `root` except ignored paths; refuse anything else.

    The entry's root stays writable until it is renamed into place (a directory's rename rewrites its `..`);
    each directory below it is sealed read-only as soon as its walk is done."""
    base = _prepare()
    building = tempfile.mkdtemp(prefix="tree-", dir=os.path.join(base, "tmp"))
    files: dict[str, str] = {}
    watched: list[tuple[str, os.stat_result]] = []
    try:
        try:
            fd = os.open(root, DIRECTORY_FLAGS)
        except OSError as error:
            raise ArtifactError(f"cannot read the tree {root}: {error.strerror}") from None
        try:
            _walk(fd, root, "", building, ignores, files, watched)
        finally:
            os.close(fd)
        listing = json.dumps(sorted((rel, files[rel], bool(_mode(info) & 0o100))
                                    for rel, info in watched if rel in files)).encode()
        digest = hashlib.sha256(listing).hexdigest()
        final = os.path.join(base, "trees", digest)
        try:
            os.rename(building, final)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            _discard(building)  # the same content is already there (and perhaps bound): keep it
        else:
            os.chmod(final, 0o555)
    except BaseException:
        _discard(building)
        raise
    return Staged(final, digest, files, watched)


def _walk(dir_fd: int, directory: str, relative: str, out: str, ignores: Callable[[str], bool],
          files: dict[str, str], watched: list[tuple[str, os.stat_result]]) -> None:
    """Copy the directory open at `dir_fd` into `out`: each file's digest goes to `files`, what was read of
    every file and directory to `watched`."""
    watched.append((relative, os.fstat(dir_fd)))
    with os.scandir(dir_fd) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        rel = f"{relative}/{name}" if relative else name
        if ignores(rel):
            continue
        where = os.path.join(directory, name)
        try:
            kind = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError as error:
            raise ArtifactError(f"cannot read {where}: {error.strerror}") from None
        if stat.S_ISDIR(kind):
            try:
                child = os.open(name, DIRECTORY_FLAGS, dir_fd=dir_fd)
            except OSError as error:
                raise ArtifactError(f"cannot read {where}: {error.strerror}") from None
            copy = os.path.join(out, rel)
            try:
                os.mkdir(copy, 0o700)
                _walk(child, where, rel, out, ignores, files, watched)
            finally:
                os.close(child)
            os.chmod(copy, 0o555)  # complete: read-only, and searchable by the sandbox's own uid
            continue
        fd, info = _open_regular(name, dir_fd, where, kind)
        try:
            files[rel] = _copy(fd, os.path.join(out, rel), _mode(info), where)
            watched.append((rel, info))
        finally:
            os.close(fd)


def _open_regular(name: str, dir_fd: int | None, where: str,
                  kind: int | None = None) -> tuple[int, os.stat_result]:
    """Open a regular file without following a symlink and without opening a device; its descriptor and
    the fstat that proved it regular."""
    if kind is None:
        try:
            kind = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError as error:
            raise ArtifactError(f"cannot read {where}: {error.strerror}") from None
    if not stat.S_ISREG(kind):
        raise ArtifactError(f"{where} is {_kind(kind)}; mcpbox verifies regular files only "
                            "(a signed tree may leave such a path out with its ignore list)")
    try:
        fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ArtifactError(f"{where} became a symlink while being read; mcpbox verifies regular files only") \
                from None
        raise ArtifactError(f"cannot read {where}: {error.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # swapped between the look and the open
        os.close(fd)
        raise ArtifactError(f"{where} changed while being read; mcpbox verifies regular files only")
    return fd, info


def _copy(source: int, target: str, mode: int, where: str) -> str:
    """Copy and hash in one pass: the digest is of exactly the bytes the store holds."""
    digest = hashlib.sha256()
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        while True:
            try:
                chunk = os.read(source, CHUNK)
            except OSError as error:
                raise ArtifactError(f"cannot read {where}: {error.strerror}") from None
            if not chunk:
                break
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
        os.fchmod(out, mode)
    finally:
        os.close(out)
    return digest.hexdigest()


def _mode(info: os.stat_result) -> int:
    """Read-only in the store; executable if the original was (the mode is not signed, the bytes are)."""
    return 0o555 if info.st_mode & 0o111 else 0o444


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file (device, FIFO or socket)"


def _prepare() -> str:
    """The store and its parts, private to the user; refuse one that others could change."""
    base = store_dir()
    for part in ("", "tmp", "files", "trees"):
        directory = os.path.join(base, part) if part else base
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            info = os.lstat(directory)
        except OSError as error:
            raise ArtifactError(f"cannot create mcpbox's store {directory}: {error.strerror}") from None
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise ArtifactError(f"mcpbox's store {directory} is not a directory of this user; remove it")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(directory, 0o700)
    _sweep(os.path.join(base, "tmp"))
    return base


def _sweep(directory: str) -> None:
    """Half-built entries of copies that died (killed mid-copy) go after an hour."""
    now = time.time()
    try:
        with os.scandir(directory) as entries:
            stale = [e.path for e in entries if now - e.stat(follow_symlinks=False).st_mtime > STALE_SECONDS]
    except OSError:
        return
    for path in stale:
        _discard(path)


def _discard(path: str) -> None:
    """Remove a half-built entry, sealed directories included."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for directory, _, _ in os.walk(path):
            try:
                os.chmod(directory, 0o700)
            except OSError:
                pass
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass
