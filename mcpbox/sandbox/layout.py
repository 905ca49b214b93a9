"""What the sandbox looks like: mounts, environment, user. Pure: values in, bwrap argv out.

The host facts it needs (which /etc entries exist, where the runtime lives) are
gathered by `host_facts()`; everything else here is a function of values, so
the layout can be tested and reasoned about without a process.
"""

import os
from typing import Callable, NamedTuple, Sequence

from mcpbox.paths import within
from mcpbox.profile import Profile
from mcpbox.sandbox.limits import MIB
from mcpbox.sandbox.resolve import Command

SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_ALWAYS = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "alternatives", "os-release",
    "mime.types", "protocols", "services", "nsswitch.conf", "locale.alias", "locale.conf",
)
ETC_NETWORK = ("resolv.conf", "hosts", "gai.conf", "ssl", "ca-certificates", "ca-certificates.conf",
               "pki", "host.conf")
ETC_CERTIFICATES = ("ssl", "ca-certificates", "ca-certificates.conf", "pki")  # TLS through the egress proxy
EGRESS_DIR = "/run/mcpbox-egress"  # where the proxy's Unix socket is bound in the sandbox
EGRESS_PORT = 3128  # the in-sandbox forwarder's port on the sandbox's own loopback
FORWARDER_PYTHON = "/usr/bin/python3"
BASE_PATH = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin")


class SandboxUser(NamedTuple):
    uid: int
    gid: int
    name: str
    home: str  # the host user's home path; in the sandbox a private tmpfs
    fresh: bool  # a uid of its own (mcpbox runs as root) rather than the caller's


class HostFacts(NamedTuple):
    """The few host details the layout depends on, gathered once per launch."""

    cwd: str
    environ: dict[str, str]
    system_dirs: dict[str, str | None]  # /bin etc.: symlink target, or None for a real directory
    etc: dict[str, str | None]  # /etc entries present: symlink target, or None to bind


class Bind(NamedTuple):
    source: str
    dest: str
    writable: bool = False


class Layout(NamedTuple):
    binds: list[Bind]
    tmpfs: list[tuple[str, int]]  # (mount point, size in bytes)
    symlinks: list[tuple[str, str]]  # (target, link)
    files: list[tuple[str, bytes]]  # (path, content) generated for the sandbox
    env: dict[str, str]
    cwd: str
    network: bool
    command: list[str]  # what bwrap runs: the server, or the egress forwarder that execs it
    server: list[str]  # the server's own command, its executable resolved


def host_facts(network: bool | tuple[str, ...]) -> HostFacts:
    """The host's files a sandbox gets: name service and certificates with the host's network, certificates
    only with a list of hosts (the proxy resolves names, the server checks TLS itself)."""
    extra = ETC_NETWORK if network is True else ETC_CERTIFICATES if network else ()
    etc = _present("/etc/", ETC_ALWAYS + extra, os.path.exists)
    return HostFacts(os.getcwd(), dict(os.environ), system_dirs(), etc)


def system_dirs() -> dict[str, str | None]:
    """/bin, /lib...: symlink target (a merged-/usr host), or None for a real directory; absent ones left out."""
    return _present("/", SYSTEM_DIRS, os.path.isdir)


def _present(parent: str, names: Sequence[str], exists: Callable[[str], bool]) -> dict[str, str | None]:
    """Each name under `parent` that is a symlink (-> its target) or passes `exists` (-> None)."""
    found: dict[str, str | None] = {}
    for name in names:
        path = parent + name
        if os.path.islink(path):
            found[name] = os.readlink(path)
        elif exists(path):
            found[name] = None
    return found


def plan(profile: Profile, command: Command, facts: HostFacts, user: SandboxUser,
         verified: Sequence[Bind] = (), egress: str | None = None) -> Layout:
    """`verified`: staged, signature-checked copies, each bound read-only at its original path. `egress`: the
    folder of the egress proxy's socket (a network list), bound in and reached through the forwarder."""
    sandbox, limits = profile.sandbox, profile.limits
    binds = [Bind("/usr", "/usr")]
    symlinks: list[tuple[str, str]] = []
    for name, target in facts.system_dirs.items():
        if target is None:
            binds.append(Bind("/" + name, "/" + name))
        else:
            symlinks.append((target, "/" + name))
    for name, target in facts.etc.items():
        if target is None:
            binds.append(Bind("/etc/" + name, "/etc/" + name))
        else:
            symlinks.append((target, "/etc/" + name))
    binds += [Bind(path, path) for path in command.needs.binds]
    granted = [Bind(path, path, writable) for path, writable in sandbox.granted(facts.cwd)]
    binds += granted
    binds += [Bind(path, path, sandbox.writable_args) for path in command.arguments
              if not any(within(path, bind.source) for bind in granted)]  # a profile's bind decides inside it
    binds = _verified_over(binds, verified)
    argv = command.argv
    if egress is not None:
        from mcpbox.egress.forwarder import SOURCE

        binds.append(Bind(egress, EGRESS_DIR))
        argv = [FORWARDER_PYTHON, "-I", "-S", "-c", SOURCE, f"{EGRESS_DIR}/egress.sock", str(EGRESS_PORT), "--",
                *argv]
    files = [
        ("/etc/passwd", f"{user.name}:x:{user.uid}:{user.gid}::{user.home}:/bin/sh\n".encode()),
        ("/etc/group", f"{user.name}:x:{user.gid}:\n".encode()),
        ("/etc/hostname", b"mcpbox\n"),
    ]
    if not sandbox.host_network():
        files.append(("/etc/hosts", b"127.0.0.1 localhost mcpbox\n::1 localhost\n"))
    tmp_size = limits.tmp_mb * MIB
    return Layout(
        binds=_merge(binds),
        tmpfs=[("/tmp", tmp_size), (user.home, tmp_size)],
        symlinks=symlinks,
        files=files,
        env=_environment(profile, command, facts, user),
        cwd=_working_directory(binds, facts.cwd, user.home),
        network=sandbox.host_network(),
        command=argv,
        server=command.argv,
    )


def _verified_over(binds: list[Bind], verified: Sequence[Bind]) -> list[Bind]:
    """Drop every bind at or inside a verified path: from the original, it would hide the verified copy."""
    kept = [b for b in binds if not any(within(b.dest, v.dest) for v in verified)]
    return kept + [Bind(v.source, v.dest, writable=False) for v in verified]


def _merge(binds: list[Bind]) -> list[Bind]:
    """One bind per destination (writable wins), parents before children so none is hidden."""
    by_dest: dict[str, Bind] = {}
    for bind in binds:
        known = by_dest.get(bind.dest)
        if known is None or (bind.writable and not known.writable):
            by_dest[bind.dest] = bind
    return sorted(by_dest.values(), key=lambda b: (b.dest.count("/"), b.dest))


def _environment(profile: Profile, command: Command, facts: HostFacts, user: SandboxUser) -> dict[str, str]:
    """A fresh environment: the runtime's needs, caches in the private home, the profile's names and values."""
    home = user.home
    env = {
        "PATH": ":".join([*command.needs.path_dirs, *BASE_PATH]),
        "HOME": home,
        "USER": user.name,
        "LOGNAME": user.name,
        "TMPDIR": "/tmp",
        "XDG_CACHE_HOME": f"{home}/.cache",
        "XDG_CONFIG_HOME": f"{home}/.config",
        "XDG_DATA_HOME": f"{home}/.local/share",
        "npm_config_cache": f"{home}/.npm",
        "UV_CACHE_DIR": f"{home}/.cache/uv",
        "PIP_CACHE_DIR": f"{home}/.cache/pip",
    }
    for name in profile.sandbox.env:
        if name in facts.environ:
            env[name] = facts.environ[name]
    if profile.sandbox.allowlist():
        proxy = f"http://127.0.0.1:{EGRESS_PORT}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            env[name] = env[name.lower()] = proxy
        env["ALL_PROXY"] = env["all_proxy"] = f"socks5h://127.0.0.1:{EGRESS_PORT}"
        env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
        env["NODE_USE_ENV_PROXY"] = "1"
    env.update(profile.sandbox.set_values())
    return env


def _working_directory(binds: list[Bind], cwd: str, home: str) -> str:
    """The host working directory when the profile grants it, else the private home."""
    granted = any(within(cwd, b.dest) for b in binds
                  if b.dest not in ("/usr",) and not b.dest.startswith("/etc/"))
    return cwd if granted else home


def bwrap_args(layout: Layout, fds: "BwrapFds") -> list[str]:
    """bwrap's options (the command follows them); every fd they name is opened by the caller.

    The environment is not among them: bwrap is started with exactly the server's (`layout.env`), since
    its init stays inside the sandbox and its own environ is as readable there as its argv."""
    argv = [
        "--unshare-all", "--unshare-user", "--unshare-cgroup", "--disable-userns",
        "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--hostname", "mcpbox",
    ]
    if layout.network:
        argv.append("--share-net")
    # bwrap mounts in order: parents first, and on one path a tmpfs before what goes into it.
    mounts: list[tuple[int, str, int, list[str]]] = []
    for path, size in layout.tmpfs:
        mounts.append((path.count("/"), path, 0, ["--size", str(size), "--tmpfs", path]))
    for bind in layout.binds:
        option = "--bind" if bind.writable else "--ro-bind"
        mounts.append((bind.dest.count("/"), bind.dest, 1, [option, bind.source, bind.dest]))
    for (path, _), fd in zip(layout.files, fds.files, strict=True):
        mounts.append((path.count("/"), path, 2, ["--ro-bind-data", str(fd), path]))
    for target, link in layout.symlinks:
        mounts.append((link.count("/"), link, 3, ["--symlink", target, link]))
    for *_, words in sorted(mounts, key=lambda m: m[:3]):
        argv += words
    argv += [
        "--proc", "/proc", "--dev", "/dev",
        "--chdir", layout.cwd,
        "--seccomp", str(fds.seccomp),
        "--info-fd", str(fds.info),
        "--block-fd", str(fds.block),
    ]
    return argv


class BwrapFds(NamedTuple):
    seccomp: int
    info: int
    block: int
    files: list[int]
