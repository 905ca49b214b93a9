"""Server shapes that must start with no manual binds, and what `network = true` grants.

The venv console script (mcp-server-time) and the node package (server-everything)
are covered end to end in tests/e2e; the script given to an interpreter by the
escape tests. Here: a single binary outside /usr, a script with a shebang, and
the shared host network. These commands print plain text, which mcpbox never
relays to the client as if it were JSON-RPC: it reaches stderr, marked.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

from conftest import MCPBOX, ROOT

NOT_JSON = "[server stdout, not JSON-RPC] "


def run(argv: list[str], profile: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    options = ["--profile", str(profile)] if profile else []
    return subprocess.run([*MCPBOX, "run", *options, "--", *argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_single_binary_outside_usr_starts(tmp_path: Path) -> None:
    tool = tmp_path / "tool" / "bin" / "echo-server"
    tool.parent.mkdir(parents=True)
    shutil.copy("/usr/bin/echo", tool)
    result = run([str(tool), "binary ran"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"{NOT_JSON}binary ran\n" in result.stderr


def test_script_with_shebang_starts_and_sees_only_itself(tmp_path: Path) -> None:
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\nls \"$(dirname \"$0\")\"\n")
    script.chmod(0o755)
    (tmp_path / "neighbour.txt").write_text("not for the server")
    result = run([str(script)])
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith(NOT_JSON)] == [f"{NOT_JSON}server.sh"]


def test_network_profile_shares_the_host_network(tmp_path: Path) -> None:
    """With network = true a loopback listener of the host is reachable, and DNS config is there."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(30)
    port = listener.getsockname()[1]
    profile = tmp_path / "net.toml"
    profile.write_text("[sandbox]\nnetwork = true\n")
    client = (f"import socket, os; s = socket.create_connection(('127.0.0.1', {port}), timeout=10); "
              "s.sendall(b'hello'); s.close(); print(os.path.exists('/etc/resolv.conf'))")
    process = subprocess.Popen([*MCPBOX, "run", "--profile", str(profile), "--", sys.executable, "-c", client],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    try:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(10)
            assert connection.recv(5) == b"hello"
        out, err = process.communicate(timeout=30)
    finally:
        listener.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert f"{NOT_JSON}{Path('/etc/resolv.conf').exists()}" in err.splitlines()
