"""mcpbox's lifecycle: however a session ends, no process of the sandbox outlives it.

Leaked processes and zombies after a session are a complaint users of other
gateways make (docker/mcp-gateway #318, #483). Each test starts `mcpbox run`
with a fake server from tests/lifecycle_servers.py (real servers do not ignore
SIGTERM or fork daemons on purpose), waits until the server says it is ready,
records every process of the sandbox (mcpbox's descendants, and every process
running as the sandbox's own uid, which catches a daemon that left the tree),
ends the session one way or another, and then checks that none of those
processes is alive or a zombie, that mcpbox itself was reaped, that nothing
still holds mcpbox's stdout open, and that the sandbox's cgroups are gone.

The only clock here is a generous timeout against hangs: how fast mcpbox
stops is measured by the benchmarks, not asserted by these tests.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from conftest import MCPBOX
from lifecycle_servers import word
from mcpbox.errors import EXIT_INTERNAL, EXIT_RELAY
from mcpbox.sandbox import cgroup
from mcpbox.sandbox.spawn import FRESH_UID_BASE

SERVER = str(Path(__file__).resolve().parent / "lifecycle_servers.py")
TIMEOUT = 30.0  # against hangs only; a healthy run takes a fraction of it (or 2 x pump.GRACE_SECONDS)


@dataclass
class Box:
    """One `mcpbox run` started by a test, and what the test saw of its sandbox."""

    process: subprocess.Popen[bytes]
    me: psutil.Process
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    cgroups: list[Path] = field(default_factory=list)

    @property
    def sandbox_uid(self) -> int | None:
        """The uid mcpbox gives the sandbox when it runs as root (else the caller's own: no help)."""
        return FRESH_UID_BASE + self.process.pid if os.getuid() == 0 else None


@pytest.fixture
def boxes():
    """Every mcpbox a test starts; whatever is still running at the end is killed, by pid only."""
    started: list[Box] = []
    yield started
    for box in started:
        for proc in [box.me, *box.seen.values()]:
            try:
                proc.kill()  # psutil checks the pid still names the same process
            except psutil.Error:
                pass
        try:
            box.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (box.process.stdin, box.process.stdout, box.process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def read_exactly(box: Box, expected: bytes) -> None:
    """Read len(expected) bytes of mcpbox's stdout (no more) and compare."""
    fd = box.process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while len(data) < len(expected):
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
        if not ready:
            pytest.fail(f"no {expected!r} from mcpbox within {TIMEOUT} s (got {data!r})")
        chunk = os.read(fd, len(expected) - len(data))
        if not chunk:
            box.process.kill()
            pytest.fail(f"mcpbox's stdout ended before {expected!r} (got {data!r}); stderr: "
                        f"{box.process.stderr.read().decode(errors='replace')}")
        data += chunk
    assert data == expected


def read_to_eof(fd: int) -> bytes:
    """The rest of a pipe; failing if something still holds its write end open after mcpbox exited."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"a pipe of mcpbox is still open {TIMEOUT} s after it exited: something inherited it")
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def sandbox_cgroups(box: Box) -> list[Path]:
    """The cgroups of a sandbox: `mcpbox-<pid>` (or `mcpbox-<pid>-N`) below mcpbox's own cgroup, which is
    this test's, in each hierarchy (v1: a directory per controller; v2: the unified tree), as cgroup.py
    makes them."""
    found = []
    for controller, path in cgroup.own_paths().items():
        parent = Path(cgroup.ROOT, controller, path.lstrip("/"))
        found += [*parent.glob(f"mcpbox-{box.process.pid}"), *parent.glob(f"mcpbox-{box.process.pid}-*")]
    return found


def running_as_sandbox(box: Box, *attrs: str) -> list[psutil.Process]:
    """Processes whose real or effective uid is the sandbox's (a daemon that left mcpbox's tree among them)."""
    uid = box.sandbox_uid
    if uid is None:
        return []
    found = []
    for proc in psutil.process_iter(["uids", *attrs]):
        uids = proc.info["uids"]
        if uids is not None and uid in (uids.real, uids.effective):
            found.append(proc)
    return found


def collect(box: Box) -> None:
    """Record every process of the running sandbox: mcpbox's descendants and the sandbox uid's processes."""
    for proc in [*box.me.children(recursive=True), *running_as_sandbox(box)]:
        box.seen.setdefault(proc.pid, proc)
    box.cgroups = sandbox_cgroups(box)
    # Without these the test would prove nothing: bwrap, the sandbox's init and the server at least.
    assert len(box.seen) >= 3, f"found only {box.seen} for mcpbox {box.process.pid}"
    servers = server_processes(box)
    assert servers, "the fake server is not among the processes found"
    if box.sandbox_uid is not None:
        assert all(p.uids().real == box.sandbox_uid for p in servers), "the server does not run as the sandbox uid"


def server_processes(box: Box) -> list[psutil.Process]:
    found = []
    for proc in box.seen.values():
        try:
            if proc.cmdline()[1:2] == [SERVER]:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def leftovers(box: Box) -> list[str]:
    """Recorded processes still alive or left as zombies (is_running also covers zombies)."""
    left = []
    for proc in box.seen.values():
        try:
            if proc.is_running():
                left.append(f"{proc.pid} {proc.status()} {proc.cmdline()}")
        except psutil.NoSuchProcess:
            pass
    for proc in running_as_sandbox(box, "status", "cmdline"):
        if proc.pid not in box.seen:
            left.append(f"{proc.pid} {proc.info['status']} {proc.info['cmdline']} (never seen running)")
    return left


def finish(box: Box, *, settle: float = 0.0) -> tuple[int, bytes, bytes]:
    """Wait for mcpbox, then check that nothing of its sandbox is left.

    `settle` > 0 allows that long for the kernel to finish off the sandbox
    (only when mcpbox itself was SIGKILLed and could not wait for it).
    The output is b"" when mcpbox's stdout was not a pipe to the test, or the test closed it.
    """
    status = box.process.wait(TIMEOUT)
    client = box.process.stdout
    out = read_to_eof(client.fileno()) if client is not None and not client.closed else b""
    err = read_to_eof(box.process.stderr.fileno())
    assert not box.me.is_running(), "mcpbox was not reaped"
    deadline = time.monotonic() + settle
    left = leftovers(box)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leftovers(box)
    assert not left, f"processes of the sandbox outlived mcpbox (status {status}, stderr {err!r}): {left}"
    return status, out, err


def assert_cgroups_removed(box: Box) -> None:
    still = sorted(str(path) for path in {*box.cgroups, *sandbox_cgroups(box)} if path.exists())
    assert not still, f"mcpbox left its cgroups behind: {still}"


def start(boxes: list[Box], *server_args: str, stdout: int = subprocess.PIPE, mcpbox: list[str] = MCPBOX) -> Box:
    """`mcpbox run` the fake server in mode `server_args`; back once its processes are recorded, after it
    said "ready" (or, when mcpbox's stdout is not a pipe to the test, once it runs)."""
    process = subprocess.Popen([*mcpbox, "run", "--", sys.executable, SERVER, *server_args], stdin=subprocess.PIPE,
                               stdout=stdout, stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
    box = Box(process, psutil.Process(process.pid))
    boxes.append(box)
    if stdout == subprocess.PIPE:
        read_exactly(box, word("ready"))
    else:
        wait_for_server(box)
    collect(box)
    return box


def wait_for_server(box: Box) -> None:
    """Until the fake server runs below mcpbox, for a test that cannot read its "ready"."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        box.seen = {proc.pid: proc for proc in box.me.children(recursive=True)}
        if server_processes(box):
            return
        if box.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not start below mcpbox (status {box.process.poll()})")
        time.sleep(0.02)


# -- the client goes away -----------------------------------------------------


@pytest.mark.parametrize("server_status", [0, 5])
def test_client_eof_closes_server_stdin_and_passes_its_status(boxes: list[Box], server_status: int) -> None:
    """Closing mcpbox's stdin closes the server's; the server exits and mcpbox exits with its status.

    The echo shows the relay was live; the word "eof" written by the server after
    its stdin closed still reaches the client (mcpbox drains the server's
    output before it exits); 5 rather than 0 shows the status is the server's.
    """
    box = start(boxes, "eof", str(server_status))
    box.process.stdin.write(word("hello"))
    read_exactly(box, word("hello"))
    box.process.stdin.close()
    status, out, err = finish(box)
    assert status == server_status, err
    assert out == word("eof")
    assert_cgroups_removed(box)


@pytest.mark.parametrize("server_status", [0, 7, 255])
def test_exit_status_passes_through(boxes: list[Box], server_status: int) -> None:
    """A server that exits on its own (client still connected) gives mcpbox its exit status."""
    box = start(boxes, "exit", str(server_status))
    box.process.stdin.write(word("exit"))
    status, out, err = finish(box)
    assert status == server_status, err
    assert out == b""
    assert_cgroups_removed(box)


def test_server_killed_by_a_signal_gives_128_plus_signal(boxes: list[Box]) -> None:
    """A server that dies of a signal makes mcpbox exit 128 + the signal, as a shell would report it."""
    box = start(boxes, "signal", str(int(signal.SIGUSR1)))
    box.process.stdin.write(word("exit"))
    status, _, err = finish(box)
    assert status == 128 + signal.SIGUSR1, err
    assert_cgroups_removed(box)


# -- mcpbox is asked to stop ----------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_stop_signal_to_mcpbox_ends_the_server_through_its_stdin(boxes: list[Box], stop: signal.Signals) -> None:
    """SIGTERM (or SIGINT, SIGHUP) to mcpbox: the server's stdin closes, it exits, mcpbox passes its status.

    No traceback: mcpbox handles the signal rather than dying of it or of KeyboardInterrupt.
    """
    box = start(boxes, "eof", "4")
    box.process.send_signal(stop)
    status, out, err = finish(box)
    assert status == 4, err
    assert out == word("eof")
    assert b"Traceback" not in err
    assert_cgroups_removed(box)


def test_sigterm_reaches_a_server_that_ignores_stdin_eof(boxes: list[Box]) -> None:
    """A server that keeps running after stdin EOF gets SIGTERM after the first grace period.

    143 = 128 + SIGTERM: the server died of the SIGTERM mcpbox sent, not of a SIGKILL.
    """
    box = start(boxes, "sigterm-only")
    box.process.send_signal(signal.SIGTERM)
    status, out, err = finish(box)
    assert status == 128 + signal.SIGTERM, err
    assert out == word("eof")
    assert_cgroups_removed(box)


def test_stop_signal_after_client_eof_sends_sigterm_not_sigkill(boxes: list[Box]) -> None:
    """Client closes stdin, then sends SIGTERM (what MCP clients do to a slow server).

    The server ignores stdin EOF and dies of SIGTERM: mcpbox must pass the
    SIGTERM on (143 = 128 + SIGTERM), not skip to SIGKILL (137).
    """
    box = start(boxes, "sigterm-only")
    box.process.stdin.close()
    read_exactly(box, word("eof"))
    box.process.send_signal(signal.SIGTERM)
    status, out, err = finish(box)
    assert status == 128 + signal.SIGTERM, err
    assert out == b""
    assert_cgroups_removed(box)


def test_stubborn_server_is_killed_after_both_grace_periods(boxes: list[Box]) -> None:
    """A server deaf to stdin EOF and SIGTERM is SIGKILLed (with everything in its sandbox).

    mcpbox closes its stdin (the server answers "eof"), waits GRACE_SECONDS,
    sends SIGTERM (ignored), waits GRACE_SECONDS again, then kills the sandbox:
    137 = 128 + SIGKILL.
    """
    box = start(boxes, "stubborn")
    box.process.stdin.close()
    status, out, err = finish(box)
    assert status == 128 + signal.SIGKILL, err
    assert out == word("eof")
    assert_cgroups_removed(box)


def test_sigkill_to_mcpbox_takes_the_sandbox_with_it(boxes: list[Box]) -> None:
    """mcpbox cannot clean up after SIGKILL: bwrap's --die-with-parent must end the sandbox.

    The server is the stubborn one, so closing its stdin (which mcpbox's
    death does) cannot be what ends it. Nothing waits for the sandbox here, so
    the kernel is given a generous while to finish it off.

    The sandbox's cgroups cannot be removed by a SIGKILLed mcpbox; they must at
    least be empty. The test removes them (the next launch would sweep them).
    """
    box = start(boxes, "stubborn")
    box.process.kill()
    status, _, _ = finish(box, settle=TIMEOUT)
    assert status == -signal.SIGKILL
    for path in box.cgroups:
        try:
            assert (path / "cgroup.procs").read_text().split() == [], f"processes left in {path}"
            path.rmdir()
        except FileNotFoundError:
            pass  # already swept by another mcpbox's launch


# -- daemons --------------------------------------------------------------------


@pytest.mark.parametrize("stdio", ["detached", "keep"])
def test_daemon_of_the_server_dies_with_the_sandbox(boxes: list[Box], stdio: str) -> None:
    """A server that double-forks a daemon (setsid, SIGTERM and SIGHUP ignored) and exits leaves nothing.

    The daemon is re-parented inside the sandbox's PID namespace, so it must
    die when the server's sandbox ends. With "keep" the daemon also holds the
    server's stdout and stderr open, which must not keep mcpbox waiting.
    """
    box = start(boxes, "daemon", *(["keep"] if stdio == "keep" else []))
    assert len(server_processes(box)) == 2, "the server and its daemon should both be running"
    box.process.stdin.write(word("exit"))
    status, out, err = finish(box)
    assert status == 0, err
    assert out == b""
    assert_cgroups_removed(box)


# -- the client's stdout fails, or goes away -------------------------------------
#
# The servers here ignore stdin EOF (quiet) or keep writing (chatter), so an
# mcpbox that only exits, leaving its sandbox to --die-with-parent, is caught:
# nothing of the sandbox may be alive, a zombie or in a cgroup once it has exited.


def test_client_stdout_full_stops_the_sandbox_with_one_line(boxes: list[Box]) -> None:
    """mcpbox's stdout is /dev/full: its first write to the client fails with ENOSPC, which is not the client
    going away. The sandbox is killed, reaped and its cgroups removed, and only then one line says what failed,
    with 74 (EX_IOERR)."""
    with open("/dev/full", "wb") as full:
        box = start(boxes, "quiet", stdout=full.fileno())
    box.process.stdin.write(word("hello"))
    status, _, err = finish(box)
    line = assert_one_line(err.decode())
    assert status == EXIT_RELAY, err
    assert "cannot write to the client (stdout): No space left on device; the server was stopped" in line
    assert_cgroups_removed(box)


def test_client_stdout_failing_mid_session_stops_the_sandbox(boxes: list[Box]) -> None:
    """mcpbox's stdout is a terminal whose other end closes while the server is writing: EIO in the middle
    of the relay loop, with the same guarantees."""
    terminal, stdout = os.openpty()
    try:
        box = start(boxes, "chatter", "3", stdout=stdout)
    finally:
        os.close(stdout)
    seen = b""
    while b'"tick"' not in seen:  # the relay is live
        ready, _, _ = select.select([terminal], [], [], TIMEOUT)
        assert ready, f"no tick from mcpbox within {TIMEOUT} s"
        seen += os.read(terminal, 65536)
    os.close(terminal)
    status, _, err = finish(box)
    line = assert_one_line(err.decode())
    assert status == EXIT_RELAY, err
    assert "cannot write to the client (stdout): Input/output error" in line
    assert_cgroups_removed(box)


def test_client_closing_its_end_of_stdout_is_the_client_going_away(boxes: list[Box]) -> None:
    """The client closes its end of mcpbox's stdout while the server keeps writing: the broken pipe is the
    client gone, as EOF on mcpbox's stdin is. The server's stdin is closed, it exits 3 at that, and mcpbox
    exits with that status and no line; nothing is left."""
    box = start(boxes, "chatter", "3")
    read_exactly(box, word("tick"))
    box.process.stdout.close()
    status, _, err = finish(box)
    assert status == 3, err
    assert err == b""
    assert_cgroups_removed(box)


BROKEN_RELAY = """\
from mcpbox.relay import pump
deliver = pump.Pump._deliver

def broken(self, output):
    if any(b"boom" in chunk for chunk in output.to_server):
        raise RuntimeError("boom")
    deliver(self, output)

pump.Pump._deliver = broken
"""


def test_internal_error_in_the_relay_stops_the_sandbox_with_one_line(boxes: list[Box], tmp_path: Path) -> None:
    """A bug in the relay loop (here: an exception planted on the client's message "boom") gets the same
    teardown, then one line and 70 (EX_SOFTWARE), not 125, the profile's status."""
    script = tmp_path / "broken_mcpbox.py"
    script.write_text(f"import sys\n{BROKEN_RELAY}\nfrom mcpbox import cli\nsys.exit(cli.main(sys.argv[1:]))\n")
    box = start(boxes, "stubborn", mcpbox=[sys.executable, str(script)])
    box.process.stdin.write(word("boom"))
    status, _, err = finish(box)
    line = assert_one_line(err.decode())
    assert status == EXIT_INTERNAL, err
    assert "internal error: RuntimeError: boom" in line
    assert_cgroups_removed(box)


def test_cgroup_removal_waits_for_its_last_process_to_leave(tmp_path: Path) -> None:
    """`Cgroups.remove` right after a kill: rmdir says EBUSY until the group is empty, and remove must
    retry (for a bounded while) rather than leave the group behind. The process leaves it a moment later."""
    groups = cgroup.create(f"mcpbox-{os.getpid()}-test", 64 * 1024 * 1024, 8)
    if not groups.directories:
        pytest.skip("mcpbox cannot make a cgroup on this host (not root, or no delegated controllers)")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        groups.join(sleeper.pid)
        ender = threading.Timer(0.2, lambda: (sleeper.kill(), sleeper.wait()))
        ender.start()
        groups.remove()
        ender.join()
        left = [directory for directory in groups.directories if os.path.isdir(directory)]
    finally:
        sleeper.kill()
        sleeper.wait()
        for directory in groups.directories:
            if os.path.isdir(directory):
                os.rmdir(directory)
    assert not left, f"remove left {left} behind"


# -- mcpbox's own failures: a status and one line -----------------------------


def run_mcpbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MCPBOX, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT)


def assert_one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert lines[0].startswith("mcpbox: ")
    return lines[0]


@pytest.mark.parametrize("command", ["/nonexistent/mcp-server", "mcpbox-no-such-server-xyz"])
def test_missing_command_exits_127_with_one_line(command: str) -> None:
    """A command that does not exist (as a path or on PATH): 127, one line naming it, no traceback."""
    result = run_mcpbox("run", "--", command)
    assert result.returncode == 127
    assert result.stdout == ""
    assert command in assert_one_line(result.stderr)


@pytest.mark.parametrize(("content", "key"), [
    ('[limits]\nmemory_mb = "lots"\n', "limits.memory_mb"),
    ("[sandbox]\nnetwrok = true\n", "sandbox.netwrok"),
])
def test_broken_profile_exits_125_naming_file_and_key(tmp_path: Path, content: str, key: str) -> None:
    """A profile with a wrong type or an unknown key: 125, one line naming the file and the key.

    The server command is valid, so the failure can only be the profile's.
    """
    profile = tmp_path / "broken.toml"
    profile.write_text(content)
    result = run_mcpbox("run", "--profile", str(profile), "--", sys.executable, SERVER, "eof", "0")
    assert result.returncode == 125
    assert result.stdout == ""
    line = assert_one_line(result.stderr)
    assert str(profile) in line
    assert key in line



def test_no_command_is_a_usage_error_exiting_2(tmp_path: Path) -> None:
    """No command after '--' and none in the profile: the command line is wrong (2, as argparse's own errors),
    not the profile (125)."""
    profile = tmp_path / "commandless.toml"
    profile.write_text("")
    result = run_mcpbox("run", "--profile", str(profile))
    assert result.returncode == 2
    assert "no command" in assert_one_line(result.stderr)


def test_every_status_of_run_is_documented() -> None:
    """Each status mcpbox gives of its own is in the README's table and in 'mcpbox run --help'."""
    from mcpbox import errors

    statuses = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("### Exit status", 1)[1].split("###", 1)[0]
    help_text = run_mcpbox("run", "--help").stdout
    for status in sorted(statuses | {130, 137}):
        assert f"| {status} |" in table, f"status {status} is not in the README's exit status table"
        assert f"\n  {status:>3}  " in help_text, f"status {status} is not in 'mcpbox run --help'"
