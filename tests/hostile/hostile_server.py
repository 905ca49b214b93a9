"""A FAKE, HOSTILE MCP server: for tests only, it makes attacks no real server makes.

tests/test_escape.py runs this under `mcpbox run` and calls one tool per attack.
Each tool tries to get out of the sandbox in one specific way and answers with a
normal `tools/call` result whose text is a JSON object:

    {"attack": NAME, "escaped": BOOL, "detail": "errno name / what happened", ...}

plus attack-specific fields (the errno name under "errno", counts, listings)
so the test can check that the attack failed for the right reason.

Every attack is harmless even if it succeeds: it undoes what it did at once
(writes back the value it read, deletes what it made, detaches, closes the
descriptor), touches only files and listeners the test itself made (whose
paths come in the tool arguments), and the bombs stop themselves at a small
multiple of the limit they probe.

The protocol side is minimal but real newline-delimited JSON-RPC 2.0, because
the relay will become a JSON-RPC firewall: stdout carries nothing but
responses; diagnostics go to stderr. Standard library only (it runs under
whatever python the test passes, inside a sandbox that has nothing else).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import sys
import traceback

# x86_64 syscall numbers
SYS_PTRACE = 101
SYS_MOUNT = 165
SYS_UMOUNT2 = 166
SYS_KEYCTL = 250
SYS_UNSHARE = 272
SYS_PERF_EVENT_OPEN = 298
SYS_BPF = 321
SYS_IO_URING_SETUP = 425

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
MNT_DETACH = 2
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_SESSION_KEYRING = -3
BPF_MAP_CREATE = 0
BPF_MAP_TYPE_ARRAY = 2
WALL = 0x40000000
MIB = 1024 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

ATTACKS: dict[str, tuple[str, object]] = {}


def attack(description: str):
    def register(function):
        ATTACKS[function.__name__] = (description, function)
        return function
    return register


def log(*words: object) -> None:
    print("hostile:", *words, file=sys.stderr, flush=True)


def errname(number: int | None) -> str | None:
    if number is None:
        return None
    return errno.errorcode.get(number, str(number))


def syscall(number: int, *arguments) -> tuple[int, str | None]:
    """Raw syscall; integers go as C longs (ctypes would truncate them to int)."""
    converted = [ctypes.c_long(a) if isinstance(a, int) else a for a in arguments]
    ctypes.set_errno(0)
    result = _libc.syscall(ctypes.c_long(number), *converted)
    return result, (errname(ctypes.get_errno()) if result == -1 else None)


def result(escaped: bool, detail: str, **fields) -> dict:
    return {"escaped": escaped, "detail": detail, **fields}


# -- network ------------------------------------------------------------------


def _try_socket(family: int, kind: int, proto: int = 0) -> dict:
    try:
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        return result(False, f"socket() failed: {errname(error.errno)}", errno=errname(error.errno))
    sock.close()
    return result(True, "socket() succeeded (closed at once)", errno=None)


@attack("socket(AF_INET, SOCK_STREAM)")
def socket_tcp(args):
    return _try_socket(socket.AF_INET, socket.SOCK_STREAM)


@attack("socket(AF_INET, SOCK_DGRAM)")
def socket_udp(args):
    return _try_socket(socket.AF_INET, socket.SOCK_DGRAM)


@attack("socket(AF_INET6, SOCK_STREAM)")
def socket_ipv6(args):
    return _try_socket(socket.AF_INET6, socket.SOCK_STREAM)


@attack("socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)")
def socket_netlink(args):
    return _try_socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)


@attack("socket(AF_PACKET, SOCK_RAW)")
def socket_packet(args):
    return _try_socket(socket.AF_PACKET, socket.SOCK_RAW, 0)


@attack("socket(AF_UNIX) must still work (control for the socket rules)")
def socket_unix(args):
    return _try_socket(socket.AF_UNIX, socket.SOCK_STREAM)


def _listening_ports(path: str) -> list[int]:
    """Ports in state LISTEN (0A) in this network namespace's /proc/net/tcp{,6}."""
    ports = []
    try:
        with open(path) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[3] == "0A":
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    except OSError:
        pass
    return ports


@attack("connect to a TCP listener the test opened on the host's loopback")
def tcp_connect_host(args):
    attempts = {}
    escaped = False
    for key, family, address in (("ipv4", socket.AF_INET, ("127.0.0.1", args.get("port"))),
                                 ("ipv6", socket.AF_INET6, ("::1", args.get("port6")))):
        if address[1] is None:
            continue
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as error:
            attempts[key] = {"step": "socket", "errno": errname(error.errno)}
            continue
        try:
            sock.settimeout(2)
            sock.connect(address)
            escaped = True
            attempts[key] = {"step": "connected", "errno": None}
        except OSError as error:
            attempts[key] = {"step": "connect", "errno": errname(error.errno)}
        finally:
            sock.close()
    with open("/proc/net/dev") as handle:
        interfaces = sorted(line.split(":")[0].strip() for line in handle.readlines()[2:])
    listening = sorted(set(_listening_ports("/proc/net/tcp") + _listening_ports("/proc/net/tcp6")))
    return result(escaped, "; ".join(f"{k}: {v['step']} {v['errno']}" for k, v in attempts.items()),
                  attempts=attempts, interfaces=interfaces, listening=listening)


def _connect_unix(address) -> dict:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2)
        sock.connect(address)
    except OSError as error:
        return result(False, f"connect failed: {errname(error.errno)}", errno=errname(error.errno))
    finally:
        sock.close()
    return result(True, "connected (closed at once)", errno=None)


@attack("connect to an abstract unix socket the test listens on (host network namespace)")
def abstract_unix_connect(args):
    return _connect_unix("\0" + args["name"])


@attack("connect to a pathname unix socket the test made in a host tmp dir")
def pathname_unix_connect(args):
    return _connect_unix(args["path"])


# -- files --------------------------------------------------------------------


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            data = handle.read(4096)
    except OSError as error:
        return result(False, f"open {path}: {errname(error.errno)}", errno=errname(error.errno))
    return result(True, f"read {len(data)} bytes of {path}", errno=None,
                  content=data.decode(errors="replace"))


@attack("read a canary file the test put in the host user's home")
def read_home_canary(args):
    return _read(args["path"])


@attack("read a canary file in the directory mcpbox was started in")
def read_cwd_canary(args):
    return _read(args["path"])


@attack("read a canary file next to this script on the host")
def read_script_neighbour(args):
    here = os.path.dirname(os.path.abspath(__file__))
    outcome = _read(os.path.join(here, args["name"]))
    try:
        outcome["listing"] = sorted(os.listdir(here))
    except OSError as error:
        outcome["listing"] = errname(error.errno)
    return outcome


@attack("read /etc/shadow")
def read_etc_shadow(args):
    return _read("/etc/shadow")


@attack("list /root (and below, a few levels) to see the host home's files")
def list_root(args):
    tree: dict[str, object] = {}

    def walk(path: str, depth: int) -> None:
        if len(tree) > 200:
            return
        try:
            names = sorted(os.listdir(path))
        except OSError as error:
            tree[path] = errname(error.errno)
            return
        tree[path] = names
        if depth < 4:
            for name in names:
                child = os.path.join(path, name)
                if os.path.isdir(child) and not os.path.islink(child):
                    walk(child, depth + 1)

    walk("/root", 0)
    return result(False, f"/root holds {tree.get('/root')}", tree=tree)


def _create(path: str) -> dict:
    """O_CREAT|O_EXCL a new file; if it worked, delete it at once."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as error:
        return {"errno": errname(error.errno)}
    os.close(fd)
    os.unlink(path)
    return {"errno": None}


def _append(path: str, marker: bytes) -> dict:
    """Open an existing (test-owned) file for writing; if it opens, append a marker the test looks for."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as error:
        return {"errno": errname(error.errno)}
    try:
        os.write(fd, marker)
    except OSError as error:
        return {"errno": errname(error.errno), "opened": True}
    finally:
        os.close(fd)
    return {"errno": None}


@attack("create a file in /usr")
def write_usr(args):
    outcome = _create(f"/usr/.mcpbox-escape-{os.getpid()}")
    return result(outcome["errno"] is None, f"create in /usr: {outcome['errno']}", errno=outcome["errno"])


@attack("write into a directory the profile binds read-only")
def write_ro_bind(args):
    directory = args["dir"]
    existing = os.path.join(directory, args["file"])
    control = _read(existing)  # the bind is there and readable: a refusal below is the mount's
    created = _create(os.path.join(directory, f"escape-{os.getpid()}"))
    appended = _append(existing, b"ESCAPED\n")
    escaped = created["errno"] is None or appended["errno"] is None
    return result(escaped, f"create: {created['errno']}, append: {appended['errno']}",
                  create_errno=created["errno"], append_errno=appended["errno"],
                  read_errno=control["errno"], read_content=control.get("content"))


@attack("write into the host's working directory")
def write_host_cwd(args):
    directory = args["dir"]
    appended = _append(os.path.join(directory, args["file"]), b"ESCAPED\n")
    # Create a new file there too: if the path is not the host's, this lands in the private tmpfs.
    made = None
    try:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "escape-new.txt"), "wb") as handle:
            handle.write(b"ESCAPED\n")
        made = "created"
    except OSError as error:
        made = errname(error.errno)
    return result(appended["errno"] is None, f"append to canary: {appended['errno']}, new file: {made}",
                  errno=appended["errno"], new_file=made)


@attack("write through symlinks in a read-write bind that point out of it")
def write_through_symlink(args):
    links = {}
    for link in args["links"]:
        outcome = _append(link, b"ESCAPED\n")
        try:
            target = os.readlink(link)
        except OSError as error:
            target = errname(error.errno)
        links[link] = {"errno": outcome["errno"], "target": target}
    # Control: the read-write bind itself is writable, so a refusal above is about the target.
    control_path = args["control"]
    try:
        with open(control_path, "wb") as handle:
            handle.write(b"written from the sandbox\n")
        control = None
    except OSError as error:
        control = errname(error.errno)
    escaped = any(v["errno"] is None for v in links.values())
    return result(escaped, "; ".join(f"{k}: {v['errno']}" for k, v in links.items()),
                  links=links, control_errno=control)


# -- environment and processes ------------------------------------------------


@attack("look for a variable set in mcpbox's own environment")
def env_canary(args):
    by_name = args["name"] in os.environ
    by_value = sorted(k for k, v in os.environ.items() if args["value"] in v)
    return result(by_name or bool(by_value), f"by name: {by_name}, by value: {by_value}",
                  names=sorted(os.environ))


def _pseudo(link: str) -> bool:
    """A /proc link or map name that names no path: a pipe, socket, anonymous inode or memfd, [heap]."""
    return link.startswith(("pipe:", "socket:", "anon_inode:", "/memfd:", "[")) or not link.startswith("/")


def _unseen(path: str) -> bool:
    """A path some process shows that does not exist in this sandbox: a host path it was never granted."""
    return not os.path.exists(path.removesuffix(" (deleted)"))


@attack("read what every process in the sandbox shows in /proc: environ, cmdline, fds, cwd, root, maps")
def launcher_proc(args):
    processes = {}
    for pid in sorted((name for name in os.listdir("/proc") if name.isdigit()), key=int):
        base = f"/proc/{pid}"
        seen: dict = {}
        for name in ("environ", "cmdline"):
            try:
                with open(f"{base}/{name}", "rb") as handle:
                    seen[name] = [word.decode(errors="replace") for word in handle.read().split(b"\0") if word]
            except OSError as error:
                seen[name] = errname(error.errno)
        for name in ("cwd", "root", "exe"):
            try:
                seen[name] = os.readlink(f"{base}/{name}")
            except OSError as error:
                seen[name] = errname(error.errno)
        fds = {}
        try:
            for fd in os.listdir(f"{base}/fd"):
                try:
                    fds[fd] = os.readlink(f"{base}/fd/{fd}")
                except OSError:
                    pass  # closed meanwhile (listdir's own descriptor)
        except OSError as error:
            fds = errname(error.errno)
        seen["fd"] = fds
        try:
            with open(f"{base}/maps") as handle:
                seen["maps"] = sorted({line.split(None, 5)[5].strip() for line in handle
                                       if len(line.split(None, 5)) > 5})
        except OSError as error:
            seen["maps"] = errname(error.errno)
        links = [seen[name] for name in ("cwd", "root", "exe") if isinstance(seen[name], str)]
        links += list(seen["fd"].values()) if isinstance(seen["fd"], dict) else []
        links += seen["maps"] if isinstance(seen["maps"], list) else []
        words = seen["cmdline"] if isinstance(seen["cmdline"], list) else []
        seen["unseen_paths"] = sorted({link for link in links if not _pseudo(link) and _unseen(link)} |
                                      {word for word in words if word.startswith("/") and _unseen(word)})
        processes[pid] = seen
    return result(False, f"{len(processes)} processes read", processes=processes, own_pid=os.getpid())


@attack("see or signal a host process (the test's own pid)")
def see_host_pid(args):
    pid = int(args["pid"])
    visible = os.path.exists(f"/proc/{pid}")
    try:
        os.kill(pid, 0)
        kill_errno = None
    except OSError as error:
        kill_errno = errname(error.errno)
    processes = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as handle:
                    processes[name] = handle.read().strip()
            except OSError:
                pass
    return result(visible or kill_errno is None, f"/proc/{pid} exists: {visible}, kill(0): {kill_errno}",
                  visible=visible, kill_errno=kill_errno, processes=processes, own_pid=os.getpid())


@attack("PTRACE_ATTACH to pid 1 (bwrap's init in the sandbox)")
def ptrace_attach(args):
    code, error = syscall(SYS_PTRACE, PTRACE_ATTACH, 1, 0, 0)
    if code == 0:  # detach at once
        try:
            os.waitpid(1, WALL)
        except OSError:
            pass
        syscall(SYS_PTRACE, PTRACE_DETACH, 1, 0, 0)
    return result(code == 0, f"ptrace(ATTACH, 1): {error}", errno=error)


@attack("mount a tmpfs")
def mount(args):
    target = f"/tmp/mcpbox-mount-{os.getpid()}"
    os.makedirs(target, exist_ok=True)
    try:
        code, error = syscall(SYS_MOUNT, b"none", target.encode(), b"tmpfs", 0, None)
        if code == 0:
            syscall(SYS_UMOUNT2, target.encode(), MNT_DETACH)
    finally:
        os.rmdir(target)
    return result(code == 0, f"mount: {error}", errno=error)


def _unshare_in_child(flags: int) -> dict:
    """unshare() in a throw-away child, so that a success changes nothing in the server."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            code, error = syscall(SYS_UNSHARE, flags)
            os.write(write_end, json.dumps([code, error]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 256):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    code, error = json.loads(data)
    return result(code == 0, f"unshare: {error}", errno=error)


@attack("unshare(CLONE_NEWUSER)")
def unshare_user(args):
    return _unshare_in_child(CLONE_NEWUSER)


@attack("unshare(CLONE_NEWNS)")
def unshare_mount(args):
    return _unshare_in_child(CLONE_NEWNS)


@attack("keyctl(KEYCTL_GET_KEYRING_ID, session keyring): read-only")
def keyctl(args):
    code, error = syscall(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    return result(code != -1, f"keyctl: {error}", errno=error)


def _new_fd(name: str, number: int, *arguments) -> dict:
    """A syscall that returns a new descriptor when it succeeds: the descriptor is closed at once."""
    code, error = syscall(number, *arguments)
    if code >= 0:
        os.close(code)
    return result(code >= 0, f"{name}: {error}", errno=error)


@attack("bpf(BPF_MAP_CREATE) of a one-entry array map")
def bpf(args):
    attr = ctypes.create_string_buffer(128)
    for index, value in enumerate((BPF_MAP_TYPE_ARRAY, 4, 4, 1)):  # type, key, value size, entries
        ctypes.c_uint32.from_buffer(attr, index * 4).value = value
    return _new_fd("bpf", SYS_BPF, BPF_MAP_CREATE, attr, 128)


@attack("io_uring_setup(1, ...)")
def io_uring_setup(args):
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    return _new_fd("io_uring_setup", SYS_IO_URING_SETUP, 1, params)


@attack("perf_event_open of a disabled software CPU-clock counter on itself")
def perf_event_open(args):
    attr = ctypes.create_string_buffer(128)
    ctypes.c_uint32.from_buffer(attr, 0).value = 1  # PERF_TYPE_SOFTWARE
    ctypes.c_uint32.from_buffer(attr, 4).value = 128  # size
    ctypes.c_uint64.from_buffer(attr, 8).value = 0  # PERF_COUNT_SW_CPU_CLOCK
    ctypes.c_uint64.from_buffer(attr, 40).value = 1  # disabled
    return _new_fd("perf_event_open", SYS_PERF_EVENT_OPEN, attr, 0, -1, -1, 0)


@attack("open /dev/tty (a controlling terminal would allow TIOCSTI-style input injection)")
def open_dev_tty(args):
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError as error:
        return result(False, f"open /dev/tty: {errname(error.errno)}", errno=errname(error.errno))
    os.close(fd)
    return result(True, "opened /dev/tty (closed at once)", errno=None)


def _write_back(path: str) -> dict:
    """Read a /proc/sys value and write the same value back: a success changes nothing."""
    try:
        with open(path, "rb") as handle:
            value = handle.read()
    except OSError as error:
        return result(False, f"read {path}: {errname(error.errno)}", errno=errname(error.errno), read=False)
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as error:
        return result(False, f"open {path} for writing: {errname(error.errno)}", errno=errname(error.errno),
                      read=True)
    try:
        os.write(fd, value)
    except OSError as error:
        return result(False, f"write {path}: {errname(error.errno)}", errno=errname(error.errno), read=True,
                      opened=True)
    finally:
        os.close(fd)
    return result(True, f"wrote {value!r} back to {path}", errno=None, read=True)


@attack("write /proc/sys/kernel/ns_last_pid (the same value back)")
def write_proc_sys_ns_last_pid(args):
    return _write_back("/proc/sys/kernel/ns_last_pid")


@attack("write /proc/sys/vm/swappiness (the same value back)")
def write_proc_sys_swappiness(args):
    return _write_back("/proc/sys/vm/swappiness")


@attack("look for raw disks, kernel memory and host runtime sockets")
def host_devices_and_sockets(args):
    found = {}
    for path in args["paths"]:
        try:
            os.lstat(path)
            found[path] = None
        except OSError as error:
            found[path] = errname(error.errno)
    present = [p for p, e in found.items() if e is None]
    return result(bool(present), f"present: {present}", paths=found)


@attack("read /proc/self/status and the uid map: capabilities, no_new_privs, seccomp, uid")
def proc_status(args):
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Uid", "Gid"):
                fields[key] = value.strip()
    with open("/proc/self/uid_map") as handle:
        uid_map = [line.split() for line in handle]
    weak = fields.get("CapEff") != "0000000000000000" or fields.get("NoNewPrivs") != "1" \
        or fields.get("Seccomp") != "2"
    return result(weak, json.dumps(fields), status=fields, uid=os.getuid(), uid_map=uid_map)


# -- bombs (each run in a sandbox of its own with small limits) ---------------


@attack("fork until refused (children sleep on a pipe, then are killed and reaped)")
def fork_bomb(args):
    limit = int(args["limit"])
    ceiling = limit + 64  # harmless even if the limit did not hold
    read_end, write_end = os.pipe()
    children = []
    stopped_by = None
    try:
        while len(children) < ceiling:
            try:
                pid = os.fork()
            except OSError as error:
                stopped_by = errname(error.errno)
                break
            if pid == 0:
                os.close(write_end)
                os.read(read_end, 1)
                os._exit(0)
            children.append(pid)
    finally:
        os.close(write_end)
        os.close(read_end)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
    log(f"fork_bomb: {len(children)} forks, stopped by {stopped_by}")
    return result(stopped_by is None, f"{len(children)} forks succeeded, then {stopped_by}",
                  forks=len(children), errno=stopped_by)


@attack("allocate and touch 8 MiB chunks, up to 4x the memory limit")
def memory_bomb(args):
    limit_mb = int(args["limit_mb"])
    chunk = 8 * MIB
    held = []
    stopped_by = None
    try:
        while len(held) * 8 < 4 * limit_mb:
            try:
                held.append(b"\x01" * chunk)  # a fresh object: every page written
            except MemoryError:
                stopped_by = "MemoryError"
                break
            log(f"memory_bomb: holding {len(held) * 8} MiB")
        peak = len(held) * 8
    finally:
        held.clear()
    return result(stopped_by is None, f"held {peak} MiB, then {stopped_by}", held_mib=peak, stopped_by=stopped_by)


@attack("write a file in /tmp until EFBIG (SIGXFSZ ignored), up to 4x the limit, then delete it")
def file_size_bomb(args):
    limit = int(args["limit_mb"]) * MIB
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    path = f"/tmp/mcpbox-bomb-{os.getpid()}"
    block = b"\x02" * MIB
    written = 0
    stopped_by = None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while written < 4 * limit:
            try:
                written += os.write(fd, block)
            except OSError as error:
                stopped_by = errname(error.errno)
                break
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
        os.unlink(path)
    return result(stopped_by is None, f"wrote {written} bytes, then {stopped_by}", written=written, size=size,
                  errno=stopped_by)


# -- the minimal MCP server ---------------------------------------------------


def respond(message_id, payload: dict) -> None:
    line = json.dumps({"jsonrpc": "2.0", "id": message_id, **payload}, separators=(",", ":"))
    sys.stdout.buffer.write(line.encode() + b"\n")
    sys.stdout.buffer.flush()


def handle(message: dict) -> None:
    method = message.get("method")
    if "id" not in message:
        return  # notifications (notifications/initialized, ...) need no answer
    message_id = message["id"]
    params = message.get("params") or {}
    if method == "initialize":
        respond(message_id, {"result": {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile-test-server", "version": "0"},
        }})
    elif method == "ping":
        respond(message_id, {"result": {}})
    elif method == "tools/list":
        respond(message_id, {"result": {"tools": [
            {"name": name, "description": description, "inputSchema": {"type": "object"}}
            for name, (description, _) in ATTACKS.items()
        ]}})
    elif method == "tools/call":
        name = params.get("name")
        if name not in ATTACKS:
            respond(message_id, {"error": {"code": -32602, "message": f"Unknown tool: {name}"}})
            return
        log(f"running attack {name}")
        try:
            outcome = {"attack": name, **ATTACKS[name][1](params.get("arguments") or {})}
            failed = False
        except Exception:
            outcome = {"attack": name, "escaped": None, "detail": traceback.format_exc()}
            failed = True
        respond(message_id, {"result": {"content": [{"type": "text", "text": json.dumps(outcome)}],
                                        "isError": failed}})
    else:
        respond(message_id, {"error": {"code": -32601, "message": f"Method not found: {method}"}})


def main() -> None:
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            respond(None, {"error": {"code": -32700, "message": "Parse error"}})
            continue
        handle(message)


if __name__ == "__main__":
    main()
