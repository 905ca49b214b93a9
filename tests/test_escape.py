"""Escape tests: a hostile MCP server (tests/hostile/hostile_server.py) attacks the sandbox from inside.

Each attack must fail *for the right reason*: the errno that the mechanism meant
to stop it produces (seccomp's EAFNOSUPPORT, a read-only mount's EROFS, an
absent path's ENOENT, ...), next to a control showing the thing attacked is
really there on the host (the canary exists, the listener accepts, the bind is
readable). An attack that fails for another reason would hide a missing layer.

The server runs under `python -m mcpbox run` exactly as a client would start
it. The non-destructive attacks share one sandbox under the built-in default
profile; the bind attacks share one with a profile granting two binds; each
bomb gets a sandbox of its own with small limits. The last test checks that no
sandbox process outlives its mcpbox.

These tests must run as root (mcpbox then gives the sandbox the uid
1800000000 + its own pid), since that is the setup they check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conftest import write_profile, xdg_dirs
from mcpbox.sandbox import resolve
from mcpbox_client import LineClient

HOSTILE = Path(__file__).resolve().parent / "hostile" / "hostile_server.py"
FRESH_UID_BASE = 1_800_000_000
PROTOCOL_VERSION = "2025-06-18"
RESPONSE_SECONDS = 15.0
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the escape tests check mcpbox run as root")


# -- a small JSON-RPC client around one `mcpbox run` ----------------------------


class Session(LineClient):
    """One `mcpbox run -- python hostile_server.py`, spoken to in newline-delimited JSON-RPC."""

    EXIT_SECONDS = 10.0

    def __init__(self, base: Path, script: Path, *, profile: Path | None = None, cwd: Path | None = None,
                 extra_env: dict[str, str] | None = None, tty: str | None = None) -> None:
        base.mkdir(parents=True, exist_ok=True)
        # XDG dirs shared by the module's sessions: the seccomp cache is reused.
        env = {**os.environ, **xdg_dirs(base.parent / "xdg"), **(extra_env or {})}
        super().__init__([sys.executable, str(script)], base / "mcpbox.stderr", profile=profile, cwd=cwd or base,
                         env=env, preexec_fn=_acquire_tty(tty) if tty else None)
        STARTED.append(self)
        self.uid = FRESH_UID_BASE + self.process.pid  # the sandbox's uid (mcpbox runs as root)
        self.descendants: set[tuple[int, float]] = set()
        self._next_id = 0

    def request(self, method: str, params: dict | None = None, timeout: float = RESPONSE_SECONDS) -> dict | None:
        """Send a request and return its response, or None if the server died before answering."""
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}})
        line = self.read_line(timeout)
        if line is None:
            return None
        response = json.loads(line)  # the server must write nothing but JSON-RPC on stdout
        assert response.get("jsonrpc") == "2.0" and response.get("id") == self._next_id, response
        return response

    # MCP

    def initialize(self) -> None:
        response = self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                               "clientInfo": {"name": "test_escape", "version": "0"}})
        if response is None:
            pytest.fail(f"the server died at initialize (mcpbox exit status {self.process.wait(10)}); "
                        f"mcpbox stderr:\n{self.stderr()}")
        assert response["result"]["protocolVersion"] == PROTOCOL_VERSION
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.descendants = {(p.pid, p.create_time()) for p in psutil.Process(self.process.pid).children(recursive=True)}

    def tools(self) -> list[str]:
        response = self.request("tools/list")
        assert response is not None
        return [tool["name"] for tool in response["result"]["tools"]]

    def call(self, attack: str, arguments: dict | None = None, timeout: float = RESPONSE_SECONDS) -> dict | None:
        """Run one attack; its JSON report, or None if the server died (was killed) first."""
        response = self.request("tools/call", {"name": attack, "arguments": arguments or {}}, timeout)
        if response is None or "server exited before answering" in response.get("error", {}).get("message", ""):
            return None  # mcpbox answers a request the dead server never will
        assert "result" in response, response
        outcome = json.loads(response["result"]["content"][0]["text"])
        assert response["result"]["isError"] is False, outcome["detail"]
        assert outcome["attack"] == attack
        return outcome

    # lifetime

    def server_process(self) -> psutil.Process:
        """The hostile server as the host sees it (below mcpbox and bwrap)."""
        found = [p for p in psutil.Process(self.process.pid).children(recursive=True)
                 if p.cmdline()[:1] == [sys.executable]]
        assert len(found) == 1, found
        return found[0]

    def leftovers(self, grace: float = 3.0) -> list[str]:
        """Processes of this sandbox still alive: the sandbox uid's, or ones seen below mcpbox."""
        deadline = time.monotonic() + grace
        while True:
            left = []
            for process in psutil.process_iter(["uids", "create_time", "cmdline"]):
                info = process.info
                mine = info["uids"] is not None and self.uid in (info["uids"].real, info["uids"].effective)
                if mine or (process.pid, info["create_time"]) in self.descendants:
                    left.append(f"pid {process.pid} uid {info['uids']} {info['cmdline']}")
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)


STARTED: list[Session] = []


def _acquire_tty(path: str) -> Callable[[], None]:
    """Pre-exec: the new session leader (start_new_session) opens a pty, which becomes its controlling tty."""
    def child() -> None:
        os.open(path, os.O_RDWR)
    return child


def copy_server(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "hostile_server.py"
    shutil.copyfile(HOSTILE, script)
    return script


# -- the shared sandbox under the default profile -------------------------------


class Context:
    """The default-profile session and everything the test planted on the host around it."""

    session: Session
    script: Path
    neighbour: Path
    cwd: Path
    cwd_canary: Path
    home_canary: Path
    env_name: str
    env_value: str
    tcp: socket.socket
    tcp6: socket.socket | None
    abstract_name: str
    abstract: socket.socket
    unix_path: Path
    unix: socket.socket


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("escape")
    c = Context()
    token = uuid.uuid4().hex
    c.script = copy_server(base / "server")
    c.neighbour = base / "server" / "neighbour-canary.txt"
    c.neighbour.write_text(f"neighbour {token}\n")
    c.cwd = base / "cwd"
    c.cwd.mkdir()
    c.cwd_canary = c.cwd / "cwd-canary.txt"
    c.cwd_canary.write_text(f"cwd {token}\n")
    c.home_canary = Path.home() / f".mcpbox-escape-canary-{token}"
    c.env_name, c.env_value = "MCPBOX_CANARY", f"canary-{token}"
    # Listeners only this test opened, on loopback and in its own tmp dir.
    c.tcp = socket.create_server(("127.0.0.1", 0))
    try:
        c.tcp6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        c.tcp6 = None
    c.abstract_name = f"mcpbox-escape-{token}"
    c.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.abstract.bind("\0" + c.abstract_name)
    c.abstract.listen()
    c.unix_path = base / "sock" / "host.sock"
    c.unix_path.parent.mkdir()
    c.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.unix.bind(str(c.unix_path))
    c.unix.listen()
    for listener in (c.tcp, c.tcp6, c.abstract, c.unix):
        if listener is not None:
            listener.setblocking(False)
    session = None
    tty_master, tty_slave = os.openpty()  # mcpbox gets a controlling terminal; the server must not
    try:
        c.home_canary.write_text(f"home {token}\n")
        session = c.session = Session(base / "run", c.script, cwd=c.cwd, extra_env={c.env_name: c.env_value},
                                      tty=os.ttyname(tty_slave))
        session.initialize()
        yield c
    finally:
        if session is not None:
            session.close()
        os.close(tty_slave)
        os.close(tty_master)
        c.home_canary.unlink(missing_ok=True)
        for listener in (c.tcp, c.tcp6, c.abstract, c.unix):
            if listener is not None:
                listener.close()


def no_connection_arrived(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


def host_can_connect(listener: socket.socket, address, family: int) -> None:
    """Control: the listener really accepts connections from the host (then drain that one)."""
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.connect(address)
        deadline = time.monotonic() + 2
        while True:
            try:
                connection, _ = listener.accept()
                connection.close()
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, "the test's own listener accepts nothing"
                time.sleep(0.01)


CASES: dict[str, Callable[[Context], None]] = {}


def case(function: Callable[[Context], None]) -> Callable[[Context], None]:
    CASES[function.__name__] = function
    return function


def assert_refused(c: Context, attack: str, errno: str, arguments: dict | None = None) -> dict:
    """The attack failed with `errno`, the mark of the layer meant to stop it; its report, for further checks."""
    outcome = c.session.call(attack, arguments)
    assert outcome["escaped"] is False
    assert outcome["errno"] == errno, outcome["detail"]
    return outcome


def refused(attack: str, errno: str) -> None:
    """A case for an attack with nothing to check but its errno (the comment at each call says why that one)."""
    def check(c: Context) -> None:
        assert_refused(c, attack, errno)
    CASES[attack] = check


# network

refused("socket_tcp", "EAFNOSUPPORT")  # AF_INET is refused by seccomp, not merely useless in an empty netns
refused("socket_udp", "EAFNOSUPPORT")  # UDP needs no connection to leak data (DNS exfiltration): refused outright
refused("socket_ipv6", "EAFNOSUPPORT")  # AF_INET6 is refused by the same rule as AF_INET
refused("socket_netlink", "EAFNOSUPPORT")  # netlink is kernel attack surface a tool server never needs
refused("socket_packet", "EAFNOSUPPORT")  # seccomp's answer, before the missing CAP_NET_RAW would answer EPERM


@case
def socket_unix(c: Context) -> None:
    """Control: AF_UNIX stays allowed (runtimes use socketpairs), so the refusals above are per family."""
    outcome = c.session.call("socket_unix")
    assert outcome["errno"] is None, outcome["detail"]


@case
def tcp_connect_host(c: Context) -> None:
    """A TCP listener on the host's loopback is unreachable: socket() is refused, and the
    sandbox's network namespace holds only its own `lo` with no listener of the host."""
    port = c.tcp.getsockname()[1]
    port6 = c.tcp6.getsockname()[1] if c.tcp6 else None
    host_can_connect(c.tcp, ("127.0.0.1", port), socket.AF_INET)
    outcome = c.session.call("tcp_connect_host", {"port": port, "port6": port6})
    assert outcome["escaped"] is False
    assert outcome["attempts"]["ipv4"] == {"step": "socket", "errno": "EAFNOSUPPORT"}
    if port6 is not None:
        assert outcome["attempts"]["ipv6"] == {"step": "socket", "errno": "EAFNOSUPPORT"}
    assert outcome["interfaces"] == ["lo"], "the sandbox sees the host's network interfaces"
    assert port not in outcome["listening"] and port6 not in outcome["listening"]
    assert outcome["listening"] == [], "the sandbox's netns shows listening sockets it did not open"
    assert no_connection_arrived(c.tcp)
    if c.tcp6 is not None:
        assert no_connection_arrived(c.tcp6)


@case
def abstract_unix_connect(c: Context) -> None:
    """Abstract unix sockets belong to a network namespace: the host's is ECONNREFUSED inside."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:  # control: it is live on the host
        probe.connect("\0" + c.abstract_name)
    assert not no_connection_arrived(c.abstract)
    assert_refused(c, "abstract_unix_connect", "ECONNREFUSED", {"name": c.abstract_name})
    assert no_connection_arrived(c.abstract)


@case
def pathname_unix_connect(c: Context) -> None:
    """A pathname socket is reachable only if mounted; the test's tmp dir is not: ENOENT."""
    host_can_connect(c.unix, str(c.unix_path), socket.AF_UNIX)
    assert_refused(c, "pathname_unix_connect", "ENOENT", {"path": str(c.unix_path)})
    assert no_connection_arrived(c.unix)


# files

@case
def read_home_canary(c: Context) -> None:
    """The host home is not mounted: the sandbox's home is a private tmpfs at the same path."""
    assert c.home_canary.is_file()
    assert_refused(c, "read_home_canary", "ENOENT", {"path": str(c.home_canary)})


@case
def read_cwd_canary(c: Context) -> None:
    """The directory mcpbox is started in is not mounted unless the profile grants it."""
    assert c.cwd_canary.is_file()
    assert_refused(c, "read_cwd_canary", "ENOENT", {"path": str(c.cwd_canary)})


@case
def read_script_neighbour(c: Context) -> None:
    """The server's script is bound as a single file: its host directory's other files are absent."""
    assert c.neighbour.is_file()
    outcome = assert_refused(c, "read_script_neighbour", "ENOENT", {"name": c.neighbour.name})
    assert outcome["listing"] == [c.script.name]


@case
def read_etc_shadow(c: Context) -> None:
    """Only a fixed list of /etc entries is bound, and never shadow: ENOENT, not a permission error."""
    assert Path("/etc/shadow").exists()
    assert_refused(c, "read_etc_shadow", "ENOENT")


@case
def list_root(c: Context) -> None:
    """/root inside shows none of the host home's entries except the path down to the runtime
    mcpbox binds automatically (a pyenv python lives under /root)."""
    home = Path.home()
    binds = [Path(b) for b in resolve.resolve([sys.executable, str(c.script)], str(home),
                                             os.environ.get("PATH")).needs.binds]
    tree = c.session.call("list_root")["tree"]
    assert isinstance(tree.get(str(home)), list), tree
    for directory, entries in tree.items():
        path = Path(directory)
        if any(path == b or b in path.parents for b in binds):
            continue  # inside a runtime bind: that tree is the runtime itself
        try:
            host_entries = set(os.listdir(path))
        except OSError:
            host_entries = set()
        toward_binds = {b.relative_to(path).parts[0] for b in binds if path in b.parents}
        leaked = (set(entries) & host_entries) - toward_binds
        assert not leaked, f"host entries of {path} visible in the sandbox: {sorted(leaked)}"
    assert set(tree[str(home)]) & set(os.listdir(home)) <= {b.relative_to(home).parts[0]
                                                             for b in binds if home in b.parents}
    assert len(os.listdir(home)) > len(set(tree[str(home)])), "control: the host home holds more"


refused("write_usr", "EROFS")  # /usr is a read-only bind: creating a file fails on the mount, not permissions


@case
def write_host_cwd(c: Context) -> None:
    """The host working directory is not mounted: the canary cannot be opened (ENOENT); a file
    created at that path lands in the sandbox's private /tmp, and the host directory is untouched."""
    before = {p.name: p.read_bytes() for p in c.cwd.iterdir()}
    assert_refused(c, "write_host_cwd", "ENOENT", {"dir": str(c.cwd), "file": c.cwd_canary.name})
    assert {p.name: p.read_bytes() for p in c.cwd.iterdir()} == before


# environment and processes

@case
def env_canary(c: Context) -> None:
    """The sandbox starts from a cleared environment: mcpbox's own variables never reach it."""
    outcome = c.session.call("env_canary", {"name": c.env_name, "value": c.env_value})
    assert outcome["escaped"] is False, outcome["detail"]
    assert c.env_name not in outcome["names"]
    assert "HOME" in outcome["names"] and "PATH" in outcome["names"]  # control: it does read the env


@case
def launcher_proc(c: Context) -> None:
    """Every process in the sandbox, bwrap's init included (same uid, same PID namespace), shows only what
    the server is given: mcpbox's own environment (the canary) is in no process's environ, cmdline, fds or
    maps; bwrap's init has exactly the server's environment; nothing names a host path the sandbox lacks."""
    outcome = c.session.call("launcher_proc")
    processes = outcome["processes"]
    own = processes[str(outcome["own_pid"])]
    init = processes["1"]
    assert init["exe"] == "/usr/bin/bwrap" or init["exe"].endswith("/bwrap"), "control: pid 1 is bwrap's init"
    assert isinstance(init["environ"], list) and isinstance(init["fd"], dict), "control: pid 1 is readable"
    assert c.env_value not in json.dumps(processes), "mcpbox's environment is readable inside the sandbox"
    assert sorted(w for w in init["environ"] if not w.startswith("PWD=")) == \
        sorted(w for w in own["environ"] if not w.startswith("PWD="))
    assert {pid: p["unseen_paths"] for pid, p in processes.items() if p["unseen_paths"]} == {}
    for pid, seen in processes.items():
        assert seen["root"] == "/", (pid, seen["root"])
        assert all(link.startswith(("pipe:", "anon_inode:", "/dev/", "/proc/")) for link in seen["fd"].values()), \
            (pid, seen["fd"])


@case
def see_host_pid(c: Context) -> None:
    """In its own PID namespace the sandbox sees only its own few processes: the test's pid is
    neither in /proc nor signalable (ESRCH, not EPERM, which would mean visible but protected)."""
    outcome = c.session.call("see_host_pid", {"pid": os.getpid()})
    assert outcome["escaped"] is False
    assert outcome["visible"] is False
    assert outcome["kill_errno"] == "ESRCH", outcome["detail"]
    assert str(os.getpid()) not in outcome["processes"]
    assert str(outcome["own_pid"]) in outcome["processes"]
    assert len(outcome["processes"]) <= 4, outcome["processes"]  # bwrap's init, the server, a child at most


# Refused by seccomp:
refused("ptrace_attach", "EPERM")  # even for a process of the same uid
refused("mount", "EPERM")  # whatever the capabilities
refused("unshare_user", "EPERM")  # a nested user namespace would give back capabilities
refused("unshare_mount", "EPERM")  # unshare(CLONE_NEWNS)
refused("keyctl", "EPERM")  # the kernel keyring is not namespaced
refused("bpf", "EPERM")  # kernel attack surface
refused("io_uring_setup", "ENOSYS")  # io_uring bypasses syscall filtering; ENOSYS, so runtimes fall back
refused("perf_event_open", "EPERM")  # not left to perf_event_paranoid


@case
def open_dev_tty(c: Context) -> None:
    """mcpbox here has a controlling terminal (a pty the test made), yet bwrap --new-session
    leaves the server without one: /dev/tty gives ENXIO (and TIOCSTI has no terminal to push into)."""
    assert psutil.Process(c.session.process.pid).terminal() is not None, "control: mcpbox has a tty"
    assert_refused(c, "open_dev_tty", "ENXIO")


def _proc_sys(c: Context, attack: str) -> None:
    outcome = c.session.call(attack)
    assert outcome["escaped"] is False
    assert outcome["read"] is True, "control: the value is readable, so the write is what is refused"
    assert outcome["errno"] in ("EACCES", "EROFS", "EPERM"), outcome["detail"]


@case
def write_proc_sys_ns_last_pid(c: Context) -> None:
    """ns_last_pid is mode 0666, so file permissions do not stop the write: the kernel's
    CAP_SYS_ADMIN check does (EPERM; the file opens, the write fails). bwrap does not remount
    /proc/sys read-only here (it only covers what it can itself write), so EROFS would come only
    from a future read-only /proc/sys, which is accepted too."""
    _proc_sys(c, "write_proc_sys_ns_last_pid")


@case
def write_proc_sys_swappiness(c: Context) -> None:
    """A host-wide VM knob cannot be written: it belongs to host root, unmapped in the sandbox (EACCES)."""
    _proc_sys(c, "write_proc_sys_swappiness")


ABSENT_PATHS = ["/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg",
                "/dev/kvm", "/dev/fuse", "/run/user", "/run/dbus/system_bus_socket", "/var/run/docker.sock",
                "/run/docker.sock", "/run/containerd/containerd.sock", "/sys/fs/cgroup"]


@case
def host_devices_and_sockets(c: Context) -> None:
    """bwrap's minimal /dev has no disks or kernel memory, and /run, /var, /sys are not mounted."""
    extra = [os.environ[v] for v in ("XDG_RUNTIME_DIR", "SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS")
             if os.environ.get(v, "").startswith("/")]
    outcome = c.session.call("host_devices_and_sockets", {"paths": [*ABSENT_PATHS, *extra, "/dev/null"]})
    paths = outcome["paths"]
    assert paths.pop("/dev/null") is None, "control: the sandbox's own /dev exists"
    assert paths == {p: "ENOENT" for p in [*ABSENT_PATHS, *extra]}


@case
def proc_status(c: Context) -> None:
    """No capabilities at all, no_new_privs, a seccomp filter (mode 2), and the fresh uid
    1800000000 + mcpbox's pid, the only uid mapped: seen from the host the server runs as that
    uid, never as root. (Inside, uid_map names bwrap's intermediate user namespace, made for
    --disable-userns, as the parent, where the uid is 0; the host's view is what counts.)"""
    outcome = c.session.call("proc_status")
    status = outcome["status"]
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[key] == "0000000000000000", (key, status[key])
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    uid = c.session.uid
    assert outcome["uid"] == uid
    assert status["Uid"].split() == [str(uid)] * 4
    assert len(outcome["uid_map"]) == 1 and outcome["uid_map"][0][::2] == [str(uid), "1"]
    server = c.session.server_process()
    assert server.uids() == (uid, uid, uid)
    host_view = Path(f"/proc/{server.pid}/uid_map").read_text().split()
    assert host_view == [str(uid), str(uid), "1"]


@pytest.mark.parametrize("attack", list(CASES))
def test_attack(ctx: Context, attack: str) -> None:
    """Each attack from the shared default-profile sandbox fails, for its expected reason."""
    CASES[attack](ctx)


# -- binds granted by a profile -----------------------------------------------------


BIND_ATTACKS = ("write_ro_bind", "write_through_symlink")


@pytest.fixture(scope="module")
def binds(tmp_path_factory: pytest.TempPathFactory):
    """A sandbox whose profile grants a read-only and a read-write bind, both world-writable on
    the host (the sandbox uid owns neither), so only the mounts decide what may be written."""
    base = tmp_path_factory.mktemp("binds")
    ro, rw, outside = base / "ro", base / "rw", base / "outside"
    for directory in (ro, rw, outside):
        directory.mkdir()
        directory.chmod(0o777)
    (ro / "file.txt").write_text("read-only bind content\n")
    (ro / "file.txt").chmod(0o666)
    (outside / "secret.txt").write_text("host file outside every bind\n")
    (outside / "secret.txt").chmod(0o666)
    (rw / "link-absolute").symlink_to(outside / "secret.txt")
    (rw / "link-relative").symlink_to(Path("..") / "outside" / "secret.txt")
    (rw / "link-into-ro").symlink_to(ro / "file.txt")
    profile = write_profile(base / "binds.toml", f"""
description = "escape tests: one read-only and one read-write bind"
[sandbox]
read_only = ["{ro}"]
read_write = ["{rw}"]
""")
    session = Session(base / "run", copy_server(base / "server"), profile=profile)
    try:
        session.initialize()
        yield session, ro, rw, outside
    finally:
        session.close()


def test_write_ro_bind(binds) -> None:
    """A read-only bind refuses writes with EROFS, though the directory is 0777 and the file 0666
    on the host; the control read shows the bind is really there."""
    session, ro, _, _ = binds
    before = {p.name: p.read_bytes() for p in ro.iterdir()}
    outcome = session.call("write_ro_bind", {"dir": str(ro), "file": "file.txt"})
    assert outcome["read_errno"] is None and outcome["read_content"] == "read-only bind content\n"
    assert outcome["escaped"] is False
    assert outcome["create_errno"] == "EROFS", outcome["detail"]
    assert outcome["append_errno"] == "EROFS", outcome["detail"]
    assert {p.name: p.read_bytes() for p in ro.iterdir()} == before


def test_write_through_symlink(binds) -> None:
    """Symlinks in a writable bind resolve inside the sandbox's own tree: one pointing out of the
    binds finds nothing (ENOENT), one into the read-only bind hits EROFS, and the host files are
    unchanged. The control write shows the read-write bind itself does write through to the host."""
    session, ro, rw, outside = binds
    secret_before = (outside / "secret.txt").read_bytes()
    ro_before = (ro / "file.txt").read_bytes()
    control = rw / "control.txt"
    links = [rw / "link-absolute", rw / "link-relative", rw / "link-into-ro"]
    try:
        outcome = session.call("write_through_symlink", {"links": [str(p) for p in links],
                                                         "control": str(control)})
        assert outcome["control_errno"] is None
        assert control.read_bytes() == b"written from the sandbox\n"
        assert control.stat().st_uid == os.getuid()  # the user's on the host (as root: through the idmapped bind)
    finally:
        control.unlink(missing_ok=True)
    assert outcome["escaped"] is False
    errnos = {Path(k).name: v["errno"] for k, v in outcome["links"].items()}
    assert errnos == {"link-absolute": "ENOENT", "link-relative": "ENOENT", "link-into-ro": "EROFS"}
    assert (outside / "secret.txt").read_bytes() == secret_before
    assert (ro / "file.txt").read_bytes() == ro_before


# -- bombs, each in its own sandbox with small limits -------------------------------


BOMBS = ("fork_bomb", "memory_bomb", "file_size_bomb")


def bomb_session(tmp_path: Path, limits: str) -> Session:
    profile = write_profile(tmp_path / "bomb.toml", f"description = \"escape tests: a bomb\"\n[limits]\n{limits}\n")
    session = Session(tmp_path / "run", copy_server(tmp_path / "server"), profile=profile)
    try:
        session.initialize()
    except BaseException:
        session.close()
        raise
    return session


def host_can_fork() -> None:
    assert subprocess.run(["/bin/true"], timeout=10).returncode == 0


def test_fork_bomb(tmp_path: Path) -> None:
    """Forking stops with EAGAIN at the profile's `threads` limit (a pids cgroup and
    RLIMIT_NPROC under the sandbox's own uid), and the host can still fork afterwards."""
    limit = 16
    session = bomb_session(tmp_path, f"processes = {limit}\nthreads = {limit}")
    try:
        outcome = session.call("fork_bomb", {"limit": limit})
        assert outcome["escaped"] is False
        assert outcome["errno"] == "EAGAIN", outcome["detail"]
        assert outcome["forks"] <= limit, outcome["detail"]
        assert outcome["forks"] >= limit // 2, f"forking was stopped by something else: {outcome['detail']}"
        assert session.request("ping") == {"jsonrpc": "2.0", "id": session._next_id, "result": {}}
    finally:
        session.close()
    host_can_fork()
    assert session.leftovers() == []


def test_memory_bomb(tmp_path: Path) -> None:
    """Touched memory stops at `memory_mb`: a MemoryError (RLIMIT_DATA), or the memory cgroup (or
    the watchdog) kills the server and mcpbox says so on stderr. The server reports each 8 MiB
    it holds on stderr, so even when killed the most it ever held is known."""
    limit_mb = 128
    session = bomb_session(tmp_path, f"memory_mb = {limit_mb}")
    try:
        outcome = session.call("memory_bomb", {"limit_mb": limit_mb}, timeout=60)
    finally:
        status = session.close()
    stderr = session.stderr()
    held = [int(n) for n in re.findall(r"memory_bomb: holding (\d+) MiB", stderr)]
    assert held, f"the bomb never allocated anything:\n{stderr}"
    assert max(held) <= limit_mb, f"the sandbox held {max(held)} MiB, over its {limit_mb} MB limit"
    assert max(held) >= limit_mb // 4, f"allocation was stopped by something else at {max(held)} MiB"
    if outcome is not None:
        assert outcome["escaped"] is False
        assert outcome["stopped_by"] == "MemoryError", outcome["detail"]
        assert outcome["held_mib"] == max(held)
    else:
        assert status == 128 + signal.SIGKILL, stderr
        assert re.search(rf"memory limit \({limit_mb} MB\)|over its limit of {limit_mb} MB", stderr), stderr
    host_can_fork()
    assert session.leftovers() == []


def test_file_size_bomb(tmp_path: Path) -> None:
    """A file cannot grow past `file_size_mb`: the write fails EFBIG (SIGXFSZ ignored) exactly at
    the limit, enforced by RLIMIT_FSIZE."""
    limit_mb = 8
    session = bomb_session(tmp_path, f"file_size_mb = {limit_mb}")
    try:
        outcome = session.call("file_size_bomb", {"limit_mb": limit_mb})
        assert outcome["escaped"] is False
        assert outcome["errno"] == "EFBIG", outcome["detail"]
        assert outcome["written"] <= limit_mb * MIB
        assert outcome["written"] == outcome["size"] > (limit_mb - 1) * MIB, outcome["detail"]
    finally:
        session.close()
    assert session.leftovers() == []


# -- bookkeeping ------------------------------------------------------------------------


def test_every_attack_is_tested(ctx: Context) -> None:
    """The server's tool list and the tests above cover the same attacks: none runs unchecked."""
    assert sorted(ctx.session.tools()) == sorted([*CASES, *BIND_ATTACKS, *BOMBS])


def test_no_sandbox_process_left(ctx: Context, binds) -> None:
    """Last: once every mcpbox of this module has ended, no process of any of their sandboxes
    (by the sandbox uid 1800000000 + mcpbox's pid, or seen below mcpbox) is left running."""
    ctx.session.close()
    binds[0].close()
    assert STARTED, "no session was started"
    for session in STARTED:
        assert session.process.returncode is not None, "a session is still running"
        assert session.descendants, "control: processes below mcpbox were recorded"
        assert session.leftovers() == [], f"left behind by mcpbox pid {session.process.pid}"
