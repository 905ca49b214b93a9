"""End-to-end steps run both ways: as root, and as an unprivileged user (the project rule: tests that touch
files, state or the user's folders run both ways; none passes by loosening the user's files).

The `way` fixture (import it into a test module) is parametrized over "root" and "user". It gives a
`Workspace`: a fresh folder owned by whoever runs that way, and `drive(steps)`, which runs the steps
(tests/unprivileged_driver.py) with the project's python as that user, with HOME and the XDG dirs inside
the workspace and a minimal PATH, and returns their results.

- Run as root, "root" is root and "user" is the test user `mcpbox-test`, created once (idempotently) with
  useradd; the steps run under `setpriv --reuid --regid --init-groups`. The test user must be able to run
  the project's python, mcpbox's source and the servers in .cache/servers: when a folder on the way is
  closed to it (a 0700 home above the venv's interpreter, say), "user" is skipped and the skip says which
  folder. The suite never loosens it.
- Run as a normal user, "user" is that user and "root" is skipped.

Each run is its own process group (its own session), ended by that group only; the workspace is removed.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("unprivileged_driver.py")
USER = "mcpbox-test"
USER_HOME = "/var/tmp/mcpbox-test-user-home"
MINIMAL_PATH = "/usr/bin:/bin"
# How this machine reaches the registries (CA files, proxies, wheel folders): passed on to either way's steps.
PASSED_ON = ("PIP_", "npm_config_", "NPM_CONFIG_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
             "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
GRACE = 10.0  # seconds between SIGTERM and SIGKILL of a run's process group


class Who(NamedTuple):
    way: str  # "root" or "user"
    name: str
    uid: int
    gid: int

    def argv(self, argv: list[str]) -> list[str]:
        if self.uid == os.geteuid():
            return argv
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", *argv]

    def run(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`argv` as this user, in a session (and process group) of its own, ended by that group when it is
        done or out of time."""
        process = subprocess.Popen(self.argv(argv), env=env, cwd=cwd, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(process.pid, signal.SIGTERM)  # the driver ends the servers it started on SIGTERM
            try:
                out, err = process.communicate(timeout=GRACE)
            except subprocess.TimeoutExpired:
                _end_group(process.pid, signal.SIGKILL)
                out, err = process.communicate()
            pytest.fail(f"{argv} as {self.name} did not finish in {timeout:.0f} s\nstdout: {out}\nstderr: {err}")
        finally:
            _end_group(process.pid, signal.SIGKILL)  # whatever of the group outlived it
        return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _end_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Workspace(NamedTuple):
    who: Who
    path: Path

    @property
    def home(self) -> Path:
        return self.path / "home"

    def env(self, **extra: str) -> dict[str, str]:
        """What a user's shell would hand mcpbox: HOME, the XDG dirs where they lie by default below it (set,
        so that nothing reaches the real ones), a minimal PATH, and how this machine reaches the registries."""
        home = self.home
        env = {key: value for key, value in os.environ.items() if key.startswith(PASSED_ON)}
        env.update(HOME=str(home), PATH=MINIMAL_PATH, LANG="C.UTF-8", USER=self.who.name, LOGNAME=self.who.name,
                   XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local" / "state"),
                   XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local" / "share"))
        env.update(extra)
        return env

    def drive(self, steps: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Run `steps` (see tests/unprivileged_driver.py) as this way's user; their results."""
        done = self.who.run([sys.executable, str(DRIVER)], self.env(), self.path, timeout, json.dumps(steps))
        lines = done.stdout.strip().splitlines()
        assert done.returncode == 0 and lines, (f"the driver as {self.who.name} ended with {done.returncode}\n"
                                                f"stdout: {done.stdout}\nstderr: {done.stderr}")
        results: list[dict[str, Any]] = json.loads(lines[-1])
        for step, result in zip(steps, results):
            assert "error" not in result, f"step {step} as {self.who.name}: {result['error']}\n{done.stderr}"
        assert len(results) == len(steps), (results, done.stderr)
        return results


@functools.cache
def _test_user() -> Who | str:
    """The unprivileged test user (made once), or why there is none."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.getuid())
        return Who("user", entry.pw_name, entry.pw_uid, entry.pw_gid)
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing: cannot run steps as the test user"
    problem = ""
    for attempt in range(6):  # other sessions may be making it at the same time, or hold /etc/passwd's lock
        try:
            entry = pwd.getpwnam(USER)
            break
        except KeyError:
            if attempt == 5:
                return problem
        useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
        if useradd is None:
            return f"useradd is missing: cannot create the test user {USER} for the unprivileged run"
        made = subprocess.run([useradd, "--system", "--user-group", "--create-home", "--home-dir", USER_HOME,
                               "--shell", "/usr/sbin/nologin", USER], capture_output=True, text=True)
        problem = f"useradd {USER} failed ({made.returncode}): {made.stderr.strip()}"
        if made.returncode != 0:
            time.sleep(0.5)
    who = Who("user", USER, entry.pw_uid, entry.pw_gid)
    closed = _closed_to(who)
    if closed:
        return closed
    return who


def _closed_to(who: Who) -> str:
    """Why `who` cannot run the project's python, mcpbox or the servers; "" when it can."""
    needed = {os.path.realpath(sys.executable): "x", sys.executable: "x", str(ROOT / "mcpbox" / "__init__.py"): "r",
              str(DRIVER): "r", str(ROOT / "tests" / "conftest.py"): "r"}
    servers = ROOT / ".cache" / "servers"
    if servers.exists():
        needed[str(servers)] = "x"
    checks: list[str] = []
    for path, mode in needed.items():
        parents = [str(parent) for parent in reversed(Path(path).parents)]
        checks += [f"x{parent}" for parent in parents] + [f"{mode}{path}"]
    checks = list(dict.fromkeys(checks))
    script = 'for p do m=${p%"${p#?}"}; f=${p#?}; [ -"$m" "$f" ] || echo "$f"; done'
    probe = subprocess.run(who.argv(["/bin/sh", "-c", script, "sh", *checks]), capture_output=True, text=True,
                           env={"PATH": MINIMAL_PATH}, cwd="/")
    if probe.returncode != 0:
        return f"cannot run a shell as {who.name}: {probe.stderr.strip()}"
    refused = probe.stdout.splitlines()
    if not refused:
        return ""
    first = refused[0]
    info = os.stat(first)
    owner = pwd.getpwuid(info.st_uid).pw_name if _known_uid(info.st_uid) else str(info.st_uid)
    what = [path for path in needed if path == first or path.startswith(first.rstrip("/") + "/")]
    return (f"{first} ({stat.filemode(info.st_mode)} {owner}) is closed to the test user {who.name}, who then "
            f"cannot reach {', '.join(what)}; the suite does not loosen it: for the unprivileged run, make the "
            f"venv (and .cache/servers) with a python and in a folder that others may read")


def _known_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _who(way: str) -> Who:
    if way == "root":
        if os.geteuid() != 0:
            pytest.skip("the root way needs the suite run as root")
        return Who("root", "root", 0, 0)
    user = _test_user()
    if isinstance(user, str):
        pytest.skip(user)
    return user


def _remove(path: Path) -> None:
    def writable_and_again(function: Any, name: str, _: Any) -> None:  # read-only dirs of a store, say
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        function(name)

    shutil.rmtree(path, onerror=writable_and_again)


@pytest.fixture(params=["root", "user"])
def way(request: pytest.FixtureRequest) -> Iterator[Workspace]:
    """A fresh workspace owned by whoever runs this way (root, or the unprivileged user), removed after."""
    who = _who(request.param)
    path = Path(tempfile.mkdtemp(prefix=f"mcpbox-e2e-{who.way}-"))
    try:
        if who.uid != os.geteuid():
            os.chown(path, who.uid, who.gid)  # the test's own fresh folder, handed to the user it is for
        yield Workspace(who, path)
    finally:
        _remove(path)
