"""`read_write` binds behave as their user expects: the server can change what the user who ran mcpbox owns
there, what it writes belongs to that user on the host, and it persists from one run to the next.

As root the sandbox runs as a fresh uid, and only the idmapped mount of each writable bind makes this hold
(mcpbox.sandbox.idmap); the folders here are made by the test with their default modes, never loosened.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import MCPBOX, write_profile
from mcpbox import doctor as host
from mcpbox.sandbox import idmap

PYTHON = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(not os.path.exists(PYTHON), reason=f"needs {PYTHON}")

SERVER = r"""
import errno, json, os, sys
folder = sys.argv[1]
seen = {}
def attempt(name, action):
    try:
        action()
        seen[name] = "ok"
    except OSError as error:
        seen[name] = errno.errorcode[error.errno]
attempt("append", lambda: open(os.path.join(folder, "kept.txt"), "a").write(sys.argv[2] + "\n"))
attempt("mkdir", lambda: os.makedirs(os.path.join(folder, "made", "deeper"), exist_ok=True))
def replace():
    with open(os.path.join(folder, "state.tmp"), "w") as handle:
        handle.write(sys.argv[2])
    os.replace(os.path.join(folder, "state.tmp"), os.path.join(folder, "state.json"))
attempt("replace", replace)
attempt("others", lambda: open(os.path.join(folder, "others.txt"), "a").write("changed\n"))
seen["owner_seen"] = os.stat(os.path.join(folder, "kept.txt")).st_uid == os.getuid()
print(json.dumps(seen), file=sys.stderr)
"""


def run(profile: Path, folder: Path, word: str) -> dict[str, object]:
    done = subprocess.run([*MCPBOX, "run", "--profile", str(profile), "--", PYTHON, "-c", SERVER, str(folder), word],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "not mapped to root" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("[server] {")]
    return json.loads(line.removeprefix("[server] "))


def test_a_writable_bind_is_the_users_own_inside_and_its_files_stay_the_users_across_runs(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()  # the default mode: writable by its owner only
    (folder / "kept.txt").write_text("the user's line\n")
    (folder / "others.txt").write_text("someone else's\n")
    other = 54321 if os.getuid() == 0 else None
    if other is not None:
        os.chown(folder / "others.txt", other, other)
    profile = write_profile(tmp_path / "rw.toml", f'[sandbox]\nread_write = ["{folder}"]\n')
    first = run(profile, folder, "first")
    assert first == {"append": "ok", "mkdir": "ok", "replace": "ok", "owner_seen": True,
                     "others": "EACCES" if other is not None else "ok"}
    second = run(profile, folder, "second")
    assert second["replace"] == "ok" and second["append"] == "ok", "a file of the first run is replaced in the next"
    assert (folder / "kept.txt").read_text() == "the user's line\nfirst\nsecond\n"
    assert (folder / "state.json").read_text() == "second"
    made = [folder / "kept.txt", folder / "state.json", folder / "made", folder / "made" / "deeper"]
    assert {(path.stat().st_uid, path.stat().st_gid) for path in made} == {(os.getuid(), os.getgid())}
    if other is not None:
        assert (folder / "others.txt").read_text() == "someone else's\n"
        assert (folder / "others.txt").stat().st_uid == other


@pytest.mark.skipif(os.getuid() != 0, reason="idmapped mounts are made only when mcpbox runs as root")
def test_a_filesystem_that_cannot_be_idmapped_is_said_in_one_line(tmp_path: Path) -> None:
    prepared = idmap.prepare(["/proc"], 1_900_000_000, 1_900_000_000)
    assert prepared.trees == {} and prepared.problem is not None and prepared.problem.startswith("cannot idmap /proc")
    (result,) = host.check_writable_binds(host.Host())
    assert result.status == host.OK and "idmapped mounts:" in result.detail


def test_the_sandbox_still_cannot_write_beside_a_writable_bind(tmp_path: Path) -> None:
    folder, beside = tmp_path / "granted", tmp_path / "beside"
    folder.mkdir()
    beside.mkdir()
    profile = write_profile(tmp_path / "rw.toml", f'[sandbox]\nread_write = ["{folder}"]\n')
    code = f"open({str(beside / 'x')!r}, 'w')"
    done = subprocess.run([*MCPBOX, "run", "--profile", str(profile), "--", PYTHON, "-c", code],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and not (beside / "x").exists(), done.stderr


ARGUMENT_SERVER = r"""
import errno, json, os, sys
from helper import WORD  # a sibling module of this script: its source tree is bound too
folder = sys.argv[1]
seen = {"word": WORD, "listed": sorted(os.listdir(folder))}
try:
    open(os.path.join(folder, "written.txt"), "w").write("by the server\n")
    seen["write"] = "ok"
except OSError as error:
    seen["write"] = errno.errorcode[error.errno]
print(json.dumps(seen), file=sys.stderr)
"""


@pytest.mark.parametrize("writable", [False, True])
def test_a_folder_on_the_command_line_is_bound_read_only_unless_the_profile_says_writable_args(
        tmp_path: Path, writable: bool) -> None:
    source, folder = tmp_path / "src", tmp_path / "given"
    source.mkdir()
    folder.mkdir()
    (source / "server.py").write_text(ARGUMENT_SERVER)
    (source / "helper.py").write_text("WORD = 'imported'\n")
    (folder / "present.txt").write_text("here\n")
    profile = write_profile(tmp_path / "args.toml", f"[sandbox]\nwritable_args = {str(writable).lower()}\n")
    done = subprocess.run([*MCPBOX, "run", "--profile", str(profile), "--", PYTHON, str(source / "server.py"),
                           str(folder)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("[server] {")]
    seen = json.loads(line.removeprefix("[server] "))
    assert seen["word"] == "imported" and "present.txt" in seen["listed"]
    assert seen["write"] == ("ok" if writable else "EROFS")
    assert (folder / "written.txt").exists() == writable
    if writable:
        assert (folder / "written.txt").stat().st_uid == os.getuid()


def test_a_missing_state_folder_in_the_home_is_made_and_a_secret_one_is_not(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    for entry, status in (("~/.local/share/mcp-test/state", 0), ("~/.ssh/state", 125), ("/nonexistent/x", 125)):
        profile = write_profile(tmp_path / "state.toml", f'[sandbox]\nread_write = ["{entry}"]\n')
        done = subprocess.run([*MCPBOX, "run", "--profile", str(profile), "--", "/bin/true"], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert done.returncode == status, done.stderr
        path = Path(entry.replace("~", str(home), 1))
        assert path.is_dir() == (status == 0)
        said = f"mcpbox: made {path} for [sandbox] read_write" if status == 0 else "does not exist"
        assert said in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert (home / ".local" / "share" / "mcp-test" / "state").stat().st_mode & 0o777 == 0o700
