"""The watchdog: the backstop for what no per-process rlimit sees, here the tree's total CPU time.

RLIMIT_CPU stops each process at cpu_seconds; two busy processes can each stay
below it while their sum goes over. The watchdog must stop the whole sandbox
and say why in one line. The busy loops end by themselves after a few
seconds, so a broken watchdog cannot leave the host loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import MCPBOX, ROOT

BUSY_SERVER = """
import os, sys, time
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        spin(2.5)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("finished", flush=True)
"""


def test_tree_cpu_time_over_the_limit_stops_the_sandbox(tmp_path: Path) -> None:
    server = tmp_path / "busy.py"
    server.write_text(BUSY_SERVER)
    profile = tmp_path / "p.toml"
    profile.write_text("[limits]\ncpu_seconds = 3\n")
    # stdin stays open, as a client's does: its EOF would start mcpbox's own shutdown instead.
    process = subprocess.Popen([*MCPBOX, "run", "--profile", str(profile), "--", sys.executable, str(server)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.returncode == 137, stderr
    assert "finished" not in stdout
    reasons = [line for line in stderr.splitlines() if line.startswith("mcpbox:")]
    assert len(reasons) == 1
    assert "s of CPU time, over its limit of 3 s; the server was stopped" in reasons[0]


SHARING_SERVER = """
import os, sys, time
buffer = bytearray(os.urandom(1024 * 1024)) * {mb}  # {mb} MiB, every page touched, then shared by {children} forks
children = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        time.sleep({seconds})
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("finished", flush=True)
"""


def run_server(tmp_path: Path, code: str, limits: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The server's run to its own end: stdin stays open, as a client's does (its EOF would stop it)."""
    server = tmp_path / "server.py"
    server.write_text(code)
    profile = tmp_path / "p.toml"
    profile.write_text(f"[limits]\n{limits}\n")
    process = subprocess.Popen([*MCPBOX, "run", "--profile", str(profile), "--", sys.executable, str(server)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT)
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stdout is not None and process.stderr is not None and process.stdin is not None
    process.stdin.close()
    return subprocess.CompletedProcess(process.args, process.returncode, process.stdout.read(), process.stderr.read())


def test_children_sharing_a_copy_on_write_buffer_are_not_counted_once_each(tmp_path: Path) -> None:
    """6 processes share 160 MiB: summed RSS says ~1 GB, the real use (cgroup charge, or PSS) ~170 MB."""
    done = run_server(tmp_path, SHARING_SERVER.format(mb=160, children=5, seconds=2), "memory_mb = 400")
    assert done.returncode == 0 and "finished" in done.stderr, done.stderr  # a non-JSON line goes to stderr
    assert "over its limit" not in done.stderr


def test_the_pss_fallback_counts_a_shared_buffer_once(tmp_path: Path) -> None:
    """The watchdog's own measure where no memory cgroup exists, on a real process tree started here."""
    import psutil

    from mcpbox.profile import Limits
    from mcpbox.sandbox.cgroup import Cgroups
    from mcpbox.sandbox.watchdog import Watchdog

    server = tmp_path / "sharing.py"
    server.write_text(SHARING_SERVER.format(mb=160, children=5, seconds=5))
    process = subprocess.Popen([sys.executable, str(server)], stdout=subprocess.PIPE, start_new_session=True)
    try:
        tree = psutil.Process(process.pid)
        while len(tree.children()) < 5:
            assert process.poll() is None
        rss = sum(p.memory_info().rss for p in [tree, *tree.children()])
        assert rss > 700 * 1024 * 1024, "the buffer is shared by six processes"
        assert Watchdog(process.pid, Limits(memory_mb=400), Cgroups()).check() is None
        over = Watchdog(process.pid, Limits(memory_mb=100), Cgroups()).check()
        assert over is not None and "MB of memory (PSS), over its limit of 100 MB" in over
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


THREADS_SERVER = """
import threading, time
stop = threading.Event()
threads = [threading.Thread(target=stop.wait) for _ in range({count})]
for thread in threads:
    thread.start()
print("started", len(threads), flush=True)
stop.set()
for thread in threads:
    thread.join()
"""


def test_a_hundred_threads_run_under_the_default_limits(tmp_path: Path) -> None:
    done = run_server(tmp_path, THREADS_SERVER.format(count=100), "")
    assert done.returncode == 0 and "started 100" in done.stderr, done.stderr


def test_a_thread_the_kernel_refuses_is_said_with_its_limit(tmp_path: Path) -> None:
    code = THREADS_SERVER.format(count=40).replace(
        "for thread in threads:\n    thread.start()",
        "for thread in threads:\n    try:\n        thread.start()\n    except RuntimeError:\n        time.sleep(1.5)\n"
        "        break").replace("for thread in threads:\n    thread.join()", "")
    done = run_server(tmp_path, code, "processes = 4\nthreads = 16")
    if "pids" not in Path("/proc/self/cgroup").read_text():
        return  # no pids cgroup: RLIMIT_NPROC refuses as well, but only the cgroup counts refusals
    assert "mcpbox: the kernel refused the server a new thread or process" in done.stderr, done.stderr
    assert "it reached its limit of 16 threads ([limits] threads)" in done.stderr
    assert done.stderr.count("the kernel refused") == 1


def test_more_processes_than_the_limit_stop_the_sandbox_with_its_reason(tmp_path: Path) -> None:
    done = run_server(tmp_path, SHARING_SERVER.format(mb=1, children=10, seconds=5), "processes = 4")
    assert done.returncode == 137, done.stderr
    assert "processes, over its limit of 4 ([limits] processes)" in done.stderr
