"""The watchdog: the backstop for what no per-process rlimit sees, here the tree's total CPU time.

RLIMIT_CPU stops each process at cpu_seconds; two busy processes can each stay
below it while their sum goes over. The watchdog must stop the whole sandbox
and say why in one line. The busy loops end by themselves after a few
seconds, so a broken watchdog cannot leave the host loaded.
"""

from __future__ import annotations

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
