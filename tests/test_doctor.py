"""`mcpbox doctor` on this host and on broken ones, and `mcpbox run` refusing a host that cannot sandbox."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import MCPBOX, ROOT, mcpbox_env
from mcpbox.errors import EXIT_SANDBOX
from mcpbox import doctor as host

STATUSES = ("OK  ", "WARN", "FAIL")

# Answers --version and --help like bubblewrap 0.9, then fails the way bwrap does under
# Ubuntu 24.04's AppArmor user-namespace restriction.
FAKE_BWRAP = """#!/bin/sh
case "$1" in
--version) echo "bubblewrap 0.9.0" ;;
--help) printf '    --args FD\\n    --disable-userns\\n    --size BYTES\\n    --ro-bind-data FD DEST\\n    --info-fd FD\\n    --block-fd FD\\n    --seccomp FD\\n' ;;
*) echo "bwrap: setting up uid map: Permission denied" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def open_dir():
    """A directory under /tmp that the sandbox's fresh uid can reach (pytest's tmp_path is 0700 as root)."""
    directory = Path(tempfile.mkdtemp(prefix="mcpbox-test-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fake_bwrap(open_dir: Path) -> Path:
    bin_dir = open_dir / "bin"
    bin_dir.mkdir(mode=0o755)
    script = bin_dir / "bwrap"
    script.write_text(FAKE_BWRAP)
    script.chmod(0o755)
    return bin_dir


def doctor(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MCPBOX, "doctor"], capture_output=True, text=True, cwd=ROOT,
                          env=mcpbox_env(**env), timeout=30)


def parse(stdout: str) -> tuple[dict[str, tuple[str, str]], str]:
    """check -> (status, detail), and the summary line; fails the test on any other shape."""
    lines = stdout.splitlines()
    assert lines, "doctor printed nothing"
    *check_lines, summary = lines
    checks: dict[str, tuple[str, str]] = {}
    for line in check_lines:
        assert line[:4] in STATUSES and line[4] == " ", f"not a check line: {line!r}"
        name, sep, detail = line[5:].partition(": ")
        assert sep and name and detail, f"not '<check>: <detail>': {line!r}"
        assert name not in checks, f"check {name!r} printed twice"
        checks[name] = (line[:4].strip(), detail)
    assert summary[:4] not in STATUSES and summary.startswith("mcpbox "), summary
    return checks, summary


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""


def test_doctor_passes_on_this_host():
    began = time.perf_counter()
    result = doctor()
    elapsed = time.perf_counter() - began
    assert_clean(result)
    checks, summary = parse(result.stdout)
    assert result.returncode == 0, result.stdout
    for name in ("bwrap", "user namespaces", "seccomp", "trial run", "subreaper"):
        assert checks[name][0] == "OK", f"{name}: {checks[name]}"
    assert not [name for name, (status, _) in checks.items() if status == "FAIL"]
    assert "bubblewrap" in checks["bwrap"][1]
    assert "bytes" in checks["seccomp"][1]
    assert checks["Landlock"][1].startswith(("ABI ", "not available"))
    memory = next(detail for name, (_, detail) in checks.items() if name.startswith("memory "))
    assert memory.startswith(("memory cgroup (v1)", "memory cgroup (v2)", "RLIMIT_DATA per process"))
    assert any(name.startswith("processes ") and "watchdog" in detail for name, (_, detail) in checks.items())
    assert any(name.startswith("threads ") and ("RLIMIT_NPROC" in detail or "pids.max" in detail)
               for name, (_, detail) in checks.items())
    assert summary.startswith("mcpbox can sandbox on this host")
    assert elapsed < 3, f"doctor took {elapsed:.2f} s; it should stay well under 1 s"


def test_doctor_leaves_no_probe_cgroup():
    process = subprocess.Popen([*MCPBOX, "doctor"], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=mcpbox_env())
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert "WARN probe cgroup:" not in out
    left = [str(path) for path in Path("/sys/fs/cgroup").glob(f"**/mcpbox-doctor-{process.pid}")]
    assert not left, left


def test_doctor_without_bwrap_says_how_to_install_it(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = doctor(PATH=str(empty))
    assert_clean(result)
    checks, summary = parse(result.stdout)
    assert result.returncode == 1
    status, detail = checks["bwrap"]
    assert status == "FAIL"
    assert "apt-get install bubblewrap" in detail
    assert checks["trial run"][0] != "OK"  # nothing claims the sandbox works without bwrap
    assert summary.startswith("mcpbox cannot sandbox on this host") and "bwrap" in summary


def test_doctor_explains_the_apparmor_restriction(fake_bwrap: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    restrict = tmp_path / "apparmor_restrict_unprivileged_userns"
    restrict.write_text("1\n")
    monkeypatch.setattr(host, "APPARMOR_RESTRICT", str(restrict))
    monkeypatch.setenv("PATH", f"{fake_bwrap}:/usr/bin:/bin")
    assert host.doctor() == 1
    checks, _ = parse(capsys.readouterr().out)
    assert checks["bwrap"][0] == "OK"
    status, detail = checks["user namespaces"]
    assert status == "FAIL" and "setting up uid map: Permission denied" in detail and "AppArmor" in detail
    status, detail = checks["AppArmor"]
    assert status == "FAIL"
    assert "flags=(unconfined) {\\n  userns,\\n}" in detail and "apparmor_parser -r /etc/apparmor.d/bwrap" in detail
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in detail
    status, detail = checks["trial run"]
    assert status == "FAIL" and "setting up uid map" in detail and "mcpbox doctor" not in detail


def test_doctor_apparmor_restriction_with_a_working_bwrap_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]):
    restrict = tmp_path / "apparmor_restrict_unprivileged_userns"
    restrict.write_text("1\n")
    monkeypatch.setattr(host, "APPARMOR_RESTRICT", str(restrict))
    assert host.doctor() == 0
    checks, _ = parse(capsys.readouterr().out)
    status, detail = checks["AppArmor"]
    assert status == "OK" and "restrict_unprivileged_userns=1" in detail


def test_doctor_too_old_bwrap(open_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    script = open_dir / "bwrap"
    script.write_text('#!/bin/sh\necho "bubblewrap 0.4.0"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{open_dir}:/usr/bin:/bin")
    assert host.doctor() == 1
    checks, _ = parse(capsys.readouterr().out)
    status, detail = checks["bwrap"]
    assert status == "FAIL" and "0.4.0" in detail and "apt-get install bubblewrap" in detail


def test_a_broken_check_is_a_fail_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]):
    def boom(_: host.Host) -> list[host.Result]:
        raise RuntimeError("unexpected")

    boom.check_name = "boom"
    monkeypatch.setattr(host, "CHECKS", [host.check_bwrap, boom, host.check_landlock])
    assert host.doctor() == 1
    out = capsys.readouterr().out
    checks, _ = parse(out)
    assert list(checks) == ["bwrap", "boom", "Landlock"]
    assert checks["boom"][0] == "FAIL" and "RuntimeError: unexpected" in checks["boom"][1]
    assert "Traceback" not in out


def run_refused(path: str, marker: Path) -> subprocess.CompletedProcess[str]:
    command = [*MCPBOX, "run", "--", "/bin/sh", "-c", f"touch {marker}"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=mcpbox_env(PATH=path),
                          stdin=subprocess.DEVNULL, timeout=30)


def assert_refused(result: subprocess.CompletedProcess[str], marker: Path) -> str:
    assert result.returncode == EXIT_SANDBOX, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mcpbox: ") and "mcpbox doctor" in lines[0]
    assert result.stdout == ""
    assert not marker.exists(), "the server ran although the sandbox could not be built"
    return lines[0]


def test_run_refuses_without_bwrap(open_dir: Path):
    empty = open_dir / "empty"
    empty.mkdir()
    marker = open_dir / "ran"
    line = assert_refused(run_refused(str(empty), marker), marker)
    assert "apt-get install bubblewrap" in line


def test_run_refuses_when_bwrap_fails(fake_bwrap: Path, open_dir: Path):
    marker = open_dir / "ran"
    line = assert_refused(run_refused(f"{fake_bwrap}:/usr/bin:/bin", marker), marker)
    assert "setting up uid map: Permission denied" in line
