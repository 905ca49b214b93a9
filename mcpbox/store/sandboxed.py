"""Run an installer (npm, pip, venv) to completion in mcpbox's own sandbox.

An install runs code from the registry's answers and reads whatever config lies in reach: it gets the
network and nothing else of the host. Its home is the private tmpfs (no `~/.npmrc` tokens, no pip config),
its environment is fresh, and the only writable host path is the store entry being filled. As root the
sandbox runs as a uid of its own: the entry is an idmapped bind, or, where the host cannot make one, handed
to that uid for the install and taken back after.
"""

import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from mcpbox import profile as profiles
from mcpbox.errors import SandboxError
from mcpbox.store.errors import InstallError

# Generous: an install unpacks hundreds of packages, and npm's and pip's caches live in the private home.
LIMITS = profiles.Limits(memory_mb=4096, processes=512, threads=4096, open_files=8192, cpu_seconds=1800, file_size_mb=512,
                         tmp_mb=2048)
# The host's extra CA certificates (a proxy that inspects TLS): names of files, passed with the files bound.
CA_VARIABLES = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR")
TIMEOUT = 1800.0  # against an installer that hangs on a dead connection
_runs = itertools.count()


class Finished(NamedTuple):
    status: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], writable: str, readable: Sequence[str] = (), network: bool = True) -> Finished:
    """Run `argv` with only `writable` (a directory that exists) writable, and return how it ended."""
    from mcpbox import launch
    from mcpbox.sandbox import spawn

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) "
                           "and run 'mcpbox doctor'")
    authorities = [os.environ[name] for name in CA_VARIABLES if os.path.isabs(os.environ.get(name, ""))
                   and os.path.exists(os.environ[name])] if network else []
    profile = profiles.Profile(
        description="mcpbox's installer",
        sandbox=profiles.Sandbox(network=network, read_only=(*readable, *authorities), read_write=(writable,),
                                 env=CA_VARIABLES if network else ()),
        limits=LIMITS)
    user = spawn.sandbox_user()
    with _handed_to(writable, user.uid if user.fresh and not _idmappable(writable, user.uid) else None):
        cgroup_name = f"mcpbox-{os.getpid()}-install-{next(_runs)}"  # the sweep's mcpbox-PID-... form
        with launch.start_sandbox(profile, list(argv), bwrap, cgroup_name) as starting:
            sandbox = starting.release()
            try:
                out, err = sandbox.process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                raise InstallError(f"{os.path.basename(argv[0])} did not finish in {TIMEOUT:.0f} s; stopped") from None
            status = sandbox.process.returncode
    return Finished(status, out.decode(errors="replace"), err.decode(errors="replace"))


def _idmappable(path: str, uid: int) -> bool:
    """Whether the writable bind will be an idmapped mount (mcpbox.sandbox.idmap): then the entry stays root's."""
    from mcpbox.sandbox import idmap

    prepared = idmap.prepare([path], uid, uid)
    idmap.release(prepared.trees)
    return prepared.problem is None


@contextlib.contextmanager
def _handed_to(path: str, uid: int | None) -> Iterator[None]:
    """The sandbox's own uid (mcpbox runs as root) owns `path` while it runs; mcpbox's owns it after."""
    if uid is None:
        yield
        return
    _chown_tree(path, uid, uid)
    try:
        yield
    finally:
        _chown_tree(path, os.getuid(), os.getgid())


def _chown_tree(top: str, uid: int, gid: int) -> None:
    os.lchown(top, uid, gid)
    for directory, subdirs, files in os.walk(top):
        for name in (*subdirs, *files):
            os.lchown(os.path.join(directory, name), uid, gid)
