"""The installer's sandbox: an npm package's install scripts never run, and the install never sees the home.

The packages are tarballs the test makes (`npm pack` of a tiny package dir), so no registry is involved:
one wants a `postinstall` that leaves a marker, one wants a `preinstall` that copies `~/.npmrc`, where a
canary token lies. Neither marker nor copy may appear anywhere, the canary must be in no file of the store,
and one line names the package that wanted a script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import MCPBOX
from mcpbox import cli
from mcpbox.store import install, pins, sandboxed
from mcpbox.store.spec import parse

CANARY = "npm_CANARYTOKEN0123456789abcdefABCDEF"
pytestmark = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("bwrap") is None,
                                reason="needs npm and bwrap")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home holding a canary ~/.npmrc, and mcpbox's store and pins below the test's own directory."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text(f"//registry.npmjs.org/:_authToken={CANARY}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return home


def pack(tmp_path: Path, name: str, scripts: dict[str, str]) -> Path:
    """`npm pack` of a package with one bin (it says its name on stderr) and the given lifecycle scripts."""
    source = tmp_path / "src" / name
    source.mkdir(parents=True)
    (source / "package.json").write_text(json.dumps(
        {"name": name, "version": "1.0.0", "bin": {name: "index.js"}, "scripts": scripts}))
    (source / "index.js").write_text(f"#!/usr/bin/env node\nconsole.error('{name} started')\n")
    (source / "index.js").chmod(0o755)
    out = tmp_path / "tarballs"
    out.mkdir(exist_ok=True)
    subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(out), str(source)], check=True,
                   capture_output=True)
    return out / f"{name}-1.0.0.tgz"


def files_holding(top: Path, text: str) -> list[Path]:
    return [path for path in top.rglob("*") if path.is_file() and not path.is_symlink()
            and text.encode() in path.read_bytes()]


def test_a_postinstall_script_does_not_run_and_one_line_names_it(home: Path, tmp_path: Path) -> None:
    tarball = pack(tmp_path, "wants-postinstall", {"postinstall": "touch postinstall-ran $HOME/../postinstall-ran"})
    run = subprocess.run([*MCPBOX, "run", "--", "npx", "-y", str(tarball)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, env=os.environ.copy())
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert f"mcpbox: installing {tarball} into the store (first run) ..." in lines
    assert "mcpbox: lifecycle scripts not run (npm --ignore-scripts): wants-postinstall (postinstall)" in lines
    assert "[server] wants-postinstall started" in lines, "the installed bin is what ran"
    entry = install.installed("npm", "wants-postinstall")[0]
    assert entry.version == "1.0.0" and entry.scripts == ("wants-postinstall (postinstall)",)
    assert not list(Path(entry.path).rglob("postinstall-ran")) and not (tmp_path / "postinstall-ran").exists()


def test_a_preinstall_that_reads_the_npmrc_neither_runs_nor_could_read_it(home: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    tarball = pack(tmp_path, "reads-npmrc", {"preinstall": "cp $HOME/.npmrc npmrc-copy; touch preinstall-ran"})
    assert cli.main(["install", f"npm:{tarball}"]) == 0
    out = capsys.readouterr().out
    assert "mcpbox: lifecycle scripts not run (npm --ignore-scripts): reads-npmrc (preinstall)" in out
    store = Path(install.installed("npm", "reads-npmrc")[0].path)
    assert not list(store.rglob("npmrc-copy")) and not list(store.rglob("preinstall-ran"))
    assert files_holding(Path(os.environ["XDG_DATA_HOME"]), CANARY) == []


def test_the_installer_sandbox_has_no_home_and_writes_only_its_entry(home: Path, tmp_path: Path) -> None:
    entry, elsewhere = tmp_path / "entry", tmp_path / "elsewhere"
    entry.mkdir()
    elsewhere.mkdir()
    read = sandboxed.run(["/bin/cat", str(home / ".npmrc")], str(entry))
    assert read.status != 0 and CANARY not in read.stdout + read.stderr
    wrote = sandboxed.run(["/bin/sh", "-c", f"touch {entry}/inside; touch {elsewhere}/outside"], str(entry))
    assert wrote.status != 0
    assert (entry / "inside").exists() and not (elsewhere / "outside").exists()


def test_a_later_run_uses_the_pin_and_a_wiped_store_is_refilled_with_the_pinned_lock(
        home: Path, tmp_path: Path) -> None:
    tarball = pack(tmp_path, "pinned-one", {})
    profile = str(tmp_path / "p.toml")
    spec = parse(["npx", "-y", str(tarball)])
    from mcpbox.store import commands

    said: list[str] = []
    first = commands.ensure(profile, spec, said.append, "(first run)")
    assert said == [f"mcpbox: installing {tarball} into the store (first run) ..."]
    pin = pins.get(profile, spec)
    assert pin is not None and (pin.name, pin.version, pin.integrity) == ("pinned-one", "1.0.0", first.integrity)
    said.clear()
    assert commands.ensure(profile, spec, said.append, "(first run)") == first and said == []
    shutil.rmtree(first.path)
    again = commands.ensure(profile, spec, said.append, "(first run)")
    assert said == ["mcpbox: installing the pinned pinned-one@1.0.0 into the store again ..."]
    assert (again.version, again.integrity) == (first.version, first.integrity)
