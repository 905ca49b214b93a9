"""`mcpbox doctor`: can this host build mcpbox's sandbox, and what holds each limit here.

Every check prints one line, `OK`, `WARN` (works, but something is weaker or
unknown) or `FAIL` (`mcpbox run` would refuse to start), and a FAIL says what
to do. The checks that matter are real probes, not guesses from sysctls:
bwrap is run as mcpbox would run it (as the sandbox's own uid when mcpbox is
root), and a trial run builds the default profile's full sandbox through the
same code `mcpbox run` uses. A check that breaks prints a FAIL line, never a
traceback. Exit status 0 when the sandbox can be built, 1 otherwise.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # imported where a check needs them, so that a broken module is a FAIL line
    from mcpbox.profile import Limits
    from mcpbox.sandbox.cgroup import Cgroups

OK, WARN, FAIL = "OK", "WARN", "FAIL"

MIN_BWRAP = (0, 8, 0)
BWRAP_OPTIONS = ("--args", "--disable-userns", "--size", "--ro-bind-data", "--info-fd", "--block-fd", "--seccomp")
INSTALL_BWRAP = "install bubblewrap >= 0.8.0 (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap)"
PROBE_TIMEOUT = 5.0

APPARMOR_RESTRICT = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
MAX_USER_NAMESPACES = "/proc/sys/user/max_user_namespaces"
UNPRIVILEGED_USERNS_CLONE = "/proc/sys/kernel/unprivileged_userns_clone"
UBUNTU_BWRAP_PROFILE = "/usr/share/apparmor/extra-profiles/bwrap-userns-restrict"

PR_SET_CHILD_SUBREAPER = 36
LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture but alpha
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0


@dataclass
class Result:
    status: str
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.check}: {self.detail}"


@dataclass
class Host:
    """What the checks learn and later checks use."""

    bwrap: str | None = None  # set only when bwrap is usable (present, recent enough)
    probe_ok: bool | None = None  # the minimal user-namespace probe; None when it did not run
    bpf: bytes | None = None
    limits: Limits | None = None  # of the default profile
    cgroups: Cgroups | None = None  # of the probe group
    results: list[Result] = field(default_factory=list)


def doctor() -> int:
    host = Host()
    for check in CHECKS:
        _run_check(host, check)
    _finish(host)
    failed = [r.check for r in host.results if r.status == FAIL]
    warned = [r.check for r in host.results if r.status == WARN]
    if failed:
        print(f"mcpbox cannot sandbox on this host: {len(failed)} check(s) failed ({', '.join(failed)}); "
              "'mcpbox run' refuses to start until the FAIL lines above are fixed")
        return 1
    note = f", {len(warned)} warning(s) ({', '.join(warned)})" if warned else ""
    print(f"mcpbox can sandbox on this host: {len(host.results)} checks, no failures{note}")
    return 0


def _emit(host: Host, result: Result) -> None:
    host.results.append(result)
    print(result.line(), flush=True)


def _run_check(host: Host, check: Callable[[Host], list[Result]]) -> None:
    name = getattr(check, "check_name", check.__name__.strip("_").replace("_", " "))
    try:
        results = check(host)
    except Exception as error:  # a broken check is a FAIL line, never a traceback
        results = [Result(FAIL, name, f"the check itself failed ({type(error).__name__}: {error}); "
                                      "please report this with the output of 'mcpbox doctor'")]
    for result in results:
        _emit(host, result)


def _named(name: str):
    def mark(function):
        function.check_name = name
        return function
    return mark


# ---------------------------------------------------------------- bwrap


@_named("bwrap")
def check_bwrap(host: Host) -> list[Result]:
    path = shutil.which("bwrap")
    if path is None:
        return [Result(FAIL, "bwrap", f"bubblewrap (bwrap) is not on PATH ({os.environ.get('PATH') or 'empty'}); "
                                      f"{INSTALL_BWRAP}")]
    try:
        version_run = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        help_run = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        return [Result(FAIL, "bwrap", f"{path} does not run ({_reason(error)}); {INSTALL_BWRAP}")]
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", version_run.stdout + version_run.stderr)
    version = tuple(int(part or 0) for part in found.groups()) if found else None
    shown = ".".join(map(str, version)) if version else "unknown version"
    missing = [option for option in BWRAP_OPTIONS
               if not re.search(rf"(^|\s){re.escape(option)}(\s|$)", help_run.stdout + help_run.stderr, re.M)]
    if missing or (version is not None and version < MIN_BWRAP):
        lacking = f"lacks {', '.join(missing)}" if missing else "is too old"
        return [Result(FAIL, "bwrap", f"{path} is bubblewrap {shown}, which {lacking}; mcpbox needs "
                                      f"bubblewrap >= 0.8.0: {INSTALL_BWRAP}")]
    setuid = " (installed setuid root, which mcpbox does not need)" if os.stat(path).st_mode & 0o4000 else ""
    host.bwrap = path
    return [Result(OK, "bwrap", f"{path}, bubblewrap {shown}, supports {' '.join(BWRAP_OPTIONS)}{setuid}")]


# ---------------------------------------------------------------- user namespaces


@_named("user namespaces")
def check_user_namespaces(host: Host) -> list[Result]:
    name = "user namespaces"
    facts = []
    blocked = []
    for path, sysctl, fix in (  # each switches user namespaces off at 0
        (MAX_USER_NAMESPACES, "user.max_user_namespaces",
         "user namespaces are switched off: sudo sysctl -w user.max_user_namespaces=15000 "
         "(and put user.max_user_namespaces=15000 in /etc/sysctl.d/90-mcpbox.conf)"),
        (UNPRIVILEGED_USERNS_CLONE, "kernel.unprivileged_userns_clone",
         "unprivileged user namespaces are switched off: sudo sysctl -w "
         "kernel.unprivileged_userns_clone=1 (and persist it in /etc/sysctl.d/90-mcpbox.conf)"),
    ):
        value = _read_int(path)
        if value is not None:
            facts.append(f"{sysctl}={value}")
            if value == 0:
                blocked.append(fix)
    shown = ", ".join(facts) or "no userns sysctls"
    if host.bwrap is None:
        if blocked:
            return [Result(FAIL, name, f"{shown}: " + "; ".join(blocked))]
        return [Result(WARN, name, f"{shown}; not probed, since bwrap is missing or unusable (see the bwrap line)")]
    user = _sandbox_uid()
    argv = [host.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", *_system_mounts(),
            "--", _true() or "/usr/bin/true"]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, cwd="/", env={},
                             stdin=subprocess.DEVNULL, **_drop_kwargs(user))
        host.probe_ok = run.returncode == 0
        probe_error = _one_line(run.stderr) or f"exit status {run.returncode}"
    except (OSError, subprocess.SubprocessError) as error:
        host.probe_ok, probe_error = False, _reason(error)
    who = f"as uid {user}, the sandbox's own" if os.getuid() == 0 else f"as uid {user}"
    if host.probe_ok:
        return [Result(OK, name, f"{shown}; bwrap made user, mount, pid, net, ipc, uts and cgroup "
                                 f"namespaces {who}")]
    if _read_int(APPARMOR_RESTRICT) == 1:
        advice = "AppArmor blocks it (see the AppArmor line for the fix)"
    elif blocked:
        advice = "; ".join(blocked)
    elif _in_container():
        advice = ("this looks like a container: it must allow user namespaces (docker: --security-opt "
                  "seccomp=unconfined --security-opt apparmor=unconfined, or --privileged), or run mcpbox on the host")
    else:
        advice = ("the kernel refused the namespaces; check that it is built with CONFIG_USER_NS "
                  "and that no security module (SELinux, AppArmor, a container runtime) denies them")
    return [Result(FAIL, name, f"{shown}; bwrap {who} failed: {probe_error!r}; {advice}")]


# ---------------------------------------------------------------- AppArmor


@_named("AppArmor")
def check_apparmor(host: Host) -> list[Result]:
    name = "AppArmor"
    restrict = _read_int(APPARMOR_RESTRICT)
    if restrict is None:
        return [Result(OK, name, "no user-namespace restriction on this kernel "
                                 "(kernel.apparmor_restrict_unprivileged_userns is absent)")]
    if restrict == 0:
        return [Result(OK, name, "kernel.apparmor_restrict_unprivileged_userns=0: user namespaces are not restricted")]
    if host.probe_ok:
        return [Result(OK, name, "kernel.apparmor_restrict_unprivileged_userns=1, and bwrap is allowed user "
                                 "namespaces here (an AppArmor profile grants them; keep it loaded)")]
    bwrap = os.path.realpath(host.bwrap or shutil.which("bwrap") or "/usr/bin/bwrap")
    ubuntu = ""
    if os.path.exists(UBUNTU_BWRAP_PROFILE):
        ubuntu = (f"either load Ubuntu's profile: sudo install -m 0644 {UBUNTU_BWRAP_PROFILE} /etc/apparmor.d/ && "
                  "sudo apparmor_parser -r /etc/apparmor.d/bwrap-userns-restrict; or ")
    fix = (f"{ubuntu}give bwrap a profile of its own: printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\n"
           f"profile bwrap {bwrap} flags=(unconfined) {{\\n  userns,\\n}}\\n' | sudo tee /etc/apparmor.d/bwrap "
           "&& sudo apparmor_parser -r /etc/apparmor.d/bwrap (load only one profile for bwrap); "
           "or lift the restriction for every program: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
    if host.probe_ok is None:
        return [Result(WARN, name, "kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 24.04+) and bwrap "
                                   f"could not be probed; if bwrap then fails to make namespaces: {fix}")]
    return [Result(FAIL, name, "kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 24.04+) keeps bwrap "
                               f"from using user namespaces: {fix}")]


# ---------------------------------------------------------------- seccomp


@_named("seccomp")
def check_seccomp(host: Host) -> list[Result]:
    name = "seccomp"
    mode = None
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Seccomp:"):
                    mode = int(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    if mode is None:
        return [Result(FAIL, name, "the kernel has no seccomp (no 'Seccomp:' in /proc/self/status); "
                                   "mcpbox needs a kernel built with CONFIG_SECCOMP_FILTER")]
    from mcpbox.sandbox import seccomp

    try:
        bpf = seccomp.compile_bpf(False)
    except ImportError as error:
        return [Result(FAIL, name, f"pyseccomp cannot be imported ({error}); reinstall mcpbox with its "
                                   "dependencies, and install libseccomp (sudo apt-get install libseccomp2)")]
    except Exception as error:
        return [Result(FAIL, name, f"the filter cannot be compiled ({type(error).__name__}: {error}); "
                                   "install libseccomp >= 2.5 (sudo apt-get install libseccomp2)")]
    host.bpf = bpf
    stacked = ("; mcpbox itself already runs under a seccomp filter (a container?), which the sandbox's "
               "filter stacks on") if mode == 2 else ""
    return [Result(OK, name, f"kernel supports filters; the sandbox's filter compiles to {len(bpf)} bytes "
                             f"({len(bpf) // 8} BPF instructions){stacked}")]


# ---------------------------------------------------------------- Landlock


@_named("Landlock")
def check_landlock(host: Host) -> list[Result]:
    name = "Landlock"
    if os.uname().machine.startswith("alpha"):
        return [Result(WARN, name, "not probed on this architecture (mcpbox does not rely on Landlock yet)")]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(ctypes.c_long(LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    if abi >= 0:
        return [Result(OK, name, f"ABI {abi} (mcpbox does not rely on Landlock yet)")]
    code = ctypes.get_errno()
    why = {
        errno.ENOSYS: "the kernel is built without it",
        errno.EOPNOTSUPP: "built in but not enabled at boot (add landlock to the lsm= kernel parameter)",
    }.get(code, os.strerror(code))
    return [Result(WARN, name, f"not available: {why} (mcpbox does not rely on Landlock yet)")]


# ---------------------------------------------------------------- user and subreaper


@_named("sandbox user")
def check_user(host: Host) -> list[Result]:
    uid = os.getuid()
    if uid == 0:
        return [Result(OK, "sandbox user", f"mcpbox runs as root, so the sandbox gets a fresh unprivileged uid "
                                           f"of its own ({_sandbox_uid()} for this process), never host root")]
    return [Result(OK, "sandbox user", f"mcpbox runs as uid {uid}; the sandbox keeps that uid inside its own "
                                       "user namespace, with no capabilities")]


@_named("writable binds")
def check_writable_binds(host: Host) -> list[Result]:
    """As root, read_write binds are idmapped mounts; probe that the kernel and mcpbox's state folder allow it."""
    name = "writable binds"
    if os.getuid() != 0:
        return [Result(OK, name, "read_write binds are written as your uid (bwrap maps it to itself)")]
    import tempfile

    from mcpbox import paths
    from mcpbox.sandbox import idmap

    os.makedirs(paths.state_dir(), mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.state_dir()) as probe:
        prepared = idmap.prepare([probe], _sandbox_uid(), _sandbox_uid())
        idmap.release(prepared.trees)
    if prepared.problem is not None:
        return [Result(WARN, name, f"idmapped mounts do not work here ({prepared.problem}); {idmap.FALLBACK}")]
    return [Result(OK, name, "idmapped mounts: the sandbox's uid owns root's files in read_write binds, and what "
                             "it writes there is root's on the host (probed on the filesystem of "
                             f"{paths.state_dir()}; another filesystem may differ)")]


@_named("subreaper")
def check_subreaper(host: Host) -> list[Result]:
    pid = os.fork()
    if pid == 0:  # the child: try it, report through the exit status, never return into doctor
        code = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            code = 0 if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 else (ctypes.get_errno() or 1)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return [Result(OK, "subreaper", "mcpbox can become a child subreaper and reap what bwrap leaves behind")]
    why = os.strerror(code) if code > 0 else f"the probe died of signal {-code}"
    return [Result(FAIL, "subreaper", f"prctl(PR_SET_CHILD_SUBREAPER) fails ({why}); mcpbox needs Linux >= 3.4 "
                                      "and no security policy forbidding that prctl")]


# ---------------------------------------------------------------- trial run and limits


@_named("trial run")
def check_trial_run(host: Host) -> list[Result]:
    """Build the default profile's whole sandbox through `mcpbox run`'s own code and run `true` in it."""
    from mcpbox import launch
    from mcpbox import profile as profiles
    from mcpbox.errors import McpboxError

    name = "trial run"
    try:
        profile = profiles.load("default").profile
    except McpboxError as error:
        return [Result(FAIL, name, f"the default profile cannot be loaded ({error}); fix or remove it")]
    host.limits = profile.limits
    if host.bwrap is None or host.bpf is None:
        missing = "bwrap" if host.bwrap is None else "the seccomp filter"
        return [Result(WARN, name, f"not run: {missing} is unavailable (see above)")]
    true = _true()
    if true is None:
        return [Result(WARN, name, "not run: this host has no /usr/bin/true to run in the sandbox")]
    began = time.perf_counter()
    try:
        starting = launch.start_sandbox(profile, [true], host.bwrap, f"mcpbox-doctor-{os.getpid()}")
        host.cgroups = starting.cgroups
        sandbox = starting.release()
    except McpboxError as error:
        return [Result(FAIL, name, f"bwrap could not build the default profile's sandbox: "
                                   f"{_strip_doctor_hint(str(error))}")]
    except OSError as error:
        return [Result(FAIL, name, f"applying the limits or the cgroup to the sandbox failed ({_reason(error)}); "
                                   "see the limit lines below")]
    try:
        _, err = sandbox.process.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        sandbox.process.kill()
        sandbox.process.wait()
        return [Result(FAIL, name, f"{true} did not finish in the sandbox within {PROBE_TIMEOUT:.0f} s")]
    elapsed = (time.perf_counter() - began) * 1000
    if sandbox.process.returncode != 0:
        message = _one_line(err.decode(errors="replace")) or "no message"
        return [Result(FAIL, name, f"{true} in the sandbox exited with status {sandbox.process.returncode}: {message}")]
    in_groups = " in the probe cgroup" if starting.cgroups.directories else ""
    return [Result(OK, name, f"built the default profile's sandbox (binds, tmpfs, seccomp, rlimits, as uid "
                             f"{_sandbox_uid()}{in_groups}) and ran {true} in it in {elapsed:.0f} ms")]


@_named("limits")
def check_limits(host: Host) -> list[Result]:
    from mcpbox.profile import Limits
    from mcpbox.sandbox import limits as rlimit

    limits = host.limits if host.limits is not None else Limits()
    groups = host.cgroups
    if groups is None:
        from mcpbox.sandbox import cgroup

        groups = host.cgroups = cgroup.create(f"mcpbox-doctor-{os.getpid()}", limits.memory_mb * rlimit.MIB,
                                              limits.threads + rlimit.BWRAP_PROCESSES)
    root = os.getuid() == 0
    results = []

    memory = f"memory {limits.memory_mb} MB"
    if groups.memory:
        version = _cgroup_version(groups, "memory")
        results.append(Result(OK, memory, f"memory cgroup ({version}) for the sandbox's whole process tree"))
    else:
        results.append(Result(OK, memory, "RLIMIT_DATA per process (no memory cgroup here: "
                                          f"{_why_no_cgroup('memory')}); the watchdog sums the tree's PSS"))

    results.append(Result(OK, f"processes {limits.processes}", "counted over the sandbox's tree by the watchdog"))
    threads = limits.threads + rlimit.BWRAP_PROCESSES
    if groups.pids:
        results.append(Result(OK, f"threads {limits.threads}", f"a pids cgroup ({_cgroup_version(groups, 'pids')}) "
                                  f"with pids.max={threads} ({limits.threads} + {rlimit.BWRAP_PROCESSES} for bwrap); "
                                  "a refused fork or thread is said on stderr"))
    else:
        where = "for the sandbox's own uid" if root else "in the sandbox's user namespace"
        held = f"RLIMIT_NPROC={threads} {where} ({limits.threads} + {rlimit.BWRAP_PROCESSES} for bwrap)"
        results.append(_rlimit_result(f"threads {limits.threads}", held, "NPROC", threads, "threads"))

    results.append(_rlimit_result(f"open files {limits.open_files}", f"RLIMIT_NOFILE={limits.open_files} per process",
                                  "NOFILE", limits.open_files, "open_files"))
    results.append(_rlimit_result(f"cpu time {limits.cpu_seconds} s",
                                  f"RLIMIT_CPU={limits.cpu_seconds} s per process; the watchdog sums the tree",
                                  "CPU", limits.cpu_seconds, "cpu_seconds"))
    fsize = limits.file_size_mb * rlimit.MIB
    results.append(_rlimit_result(f"file size {limits.file_size_mb} MB", f"RLIMIT_FSIZE={fsize} bytes per file written",
                                  "FSIZE", fsize, "file_size_mb"))
    results.append(Result(OK, f"/tmp and home {limits.tmp_mb} MB",
                          f"each a private tmpfs of {limits.tmp_mb} MB (bwrap --size)"))
    return results


def _rlimit_result(check: str, held: str, kind: str, value: int, key: str) -> Result:
    """A host hard limit below the profile's holds instead (the sandbox only gets stricter): say so."""
    _, hard = resource.getrlimit(getattr(resource, f"RLIMIT_{kind}"))
    if hard != resource.RLIM_INFINITY and hard < value:
        return Result(WARN, check, f"{held}, but held at {hard}: mcpbox's own hard RLIMIT_{kind} is lower "
                                   f"and the sandbox inherits it; lower [limits] {key} in the profile or raise "
                                   f"the hard limit (limits.conf, or Limit{kind}= in your MCP client's unit)")
    return Result(OK, check, held)


def _finish(host: Host) -> None:
    """Remove the probe cgroup; a leftover is worth a line, since it would pile up."""
    groups = host.cgroups
    if groups is None:
        return
    groups.remove()  # waits, for a bounded while, for the sandbox's last process to leave
    left = [directory for directory in groups.directories if os.path.isdir(directory)]
    if left:
        _emit(host, Result(WARN, "probe cgroup", f"could not remove {' '.join(left)}; remove it with rmdir"))


CHECKS: list[Callable[[Host], list[Result]]] = [
    check_bwrap, check_user_namespaces, check_apparmor, check_seccomp, check_landlock,
    check_user, check_writable_binds, check_subreaper, check_trial_run, check_limits,
]


# ---------------------------------------------------------------- helpers


def _true() -> str | None:
    return next((path for path in ("/usr/bin/true", "/bin/true") if os.access(path, os.X_OK)), None)


def _one_line(text: str, limit: int = 500) -> str:
    joined = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return joined if len(joined) <= limit else joined[:limit] + "..."


def _sandbox_uid() -> int:
    from mcpbox.sandbox import spawn

    return spawn.sandbox_user().uid


def _drop_kwargs(uid: int) -> dict:
    """Run a probe as the sandbox's uid when mcpbox is root, as spawn.py does before exec."""
    if os.getuid() != 0:
        return {}
    return {"user": uid, "group": uid, "extra_groups": []}


def _system_mounts() -> list[str]:
    """/usr read-only, and /bin, /lib... as this host has them (links on merged-/usr hosts, else binds)."""
    from mcpbox.sandbox.layout import system_dirs

    words = ["--ro-bind", "/usr", "/usr"]
    for name, target in system_dirs().items():
        words += ["--ro-bind", "/" + name, "/" + name] if target is None else ["--symlink", target, "/" + name]
    return words


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _in_container() -> bool:
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    try:
        with open("/proc/1/environ", "rb") as handle:
            return b"container=" in handle.read()
    except OSError:
        return False


def _cgroup_version(groups: Cgroups, controller: str) -> str:
    from mcpbox.sandbox import cgroup

    v1_root = os.path.join(cgroup.ROOT, controller) + os.sep
    return "v1" if any(d.startswith(v1_root) for d in groups.directories) else "v2"


def _why_no_cgroup(controller: str) -> str:
    """In a few words, why mcpbox cannot make a `controller` cgroup on this host."""
    from mcpbox.sandbox import cgroup

    root = cgroup.ROOT
    own = cgroup.own_paths()
    if not own:
        return "/proc/self/cgroup is unreadable"
    if controller in own and os.path.isdir(os.path.join(root, controller)):
        parent = os.path.join(root, controller, own[controller].lstrip("/"))
        if not os.access(parent, os.W_OK):
            return f"{parent} (cgroup v1) is not writable by uid {os.getuid()}; only root gets one there"
        return f"creating a group in {parent} (cgroup v1) failed"
    if "" in own and os.path.exists(os.path.join(root, "cgroup.controllers")):
        parent = os.path.join(root, own[""].lstrip("/"))
        if controller not in cgroup.subtree_controllers(parent):
            return f"the {controller} controller is not delegated to mcpbox's cgroup {parent} (cgroup v2)"
        if not os.access(parent, os.W_OK):
            return f"{parent} (cgroup v2) is not writable by uid {os.getuid()}"
        return f"creating a group in {parent} (cgroup v2) failed"
    return f"no {controller} controller is mounted under {root}"


def _strip_doctor_hint(message: str) -> str:
    return re.sub(r";?\s*(and )?run 'mcpbox doctor'\s*$", "", message)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
    if isinstance(error, subprocess.TimeoutExpired):
        return f"it did not answer within {error.timeout:.0f} s"
    return f"{type(error).__name__}: {error}"

