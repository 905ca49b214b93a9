"""Automatic binds: what a command needs, and never a place that holds the user's secrets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import EVERYTHING, TIME, require
from mcpbox.errors import CommandNotFound
from mcpbox.sandbox import resolve


def test_node_package_binds_its_node_modules_root() -> None:
    server = require(EVERYTHING)
    command = resolve.resolve([str(server)], "/nonexistent-home", os.environ["PATH"])
    root = str(server.parent.parent)
    assert root.endswith("node_modules")
    assert root in command.needs.binds
    assert command.argv[0] == str(server)


def test_venv_console_script_binds_venv_and_base_interpreter() -> None:
    server = require(TIME)
    command = resolve.resolve([str(server)], "/nonexistent-home", os.environ["PATH"])
    venv = str(server.parent.parent)
    base_prefix = os.path.realpath(sys.base_prefix)
    assert venv in command.needs.binds
    if not base_prefix.startswith("/usr"):
        assert base_prefix in command.needs.binds
    assert command.needs.path_dirs[0] == str(server.parent)


def test_script_given_to_interpreter_binds_only_the_file(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("canary")
    command = resolve.resolve([sys.executable, "-u", str(script)], "/nonexistent-home", os.environ["PATH"])
    assert str(script) in command.needs.binds
    assert str(tmp_path) not in command.needs.binds


def test_module_run_binds_no_script(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("")
    command = resolve.resolve([sys.executable, "-m", "mod"], "/nonexistent-home", os.environ["PATH"])
    assert all(not b.startswith(str(tmp_path)) for b in command.needs.binds)


def test_prefix_holding_secrets_is_never_widened(tmp_path: Path) -> None:
    prefix = tmp_path / "tool"
    (prefix / "bin").mkdir(parents=True)
    (prefix / ".ssh").mkdir()
    binary = prefix / "bin" / "server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    command = resolve.resolve([str(binary)], "/nonexistent-home", os.environ["PATH"])
    assert command.needs.binds == [str(binary)]


@pytest.mark.parametrize("home_relative", ["", "."])
def test_home_and_its_ancestors_are_never_widened(tmp_path: Path, home_relative: str) -> None:
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    binary = home / "bin" / "server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    command = resolve.resolve([str(binary)], str(home), os.environ["PATH"])
    assert command.needs.binds == [str(binary)]


def test_shebang_env_interpreter_is_resolved_on_path(tmp_path: Path) -> None:
    script = tmp_path / "tool.py"
    script.write_text("#!/usr/bin/env python3\n")
    script.chmod(0o755)
    search_path = f"{Path(sys.base_prefix) / 'bin'}:/usr/bin"
    command = resolve.resolve([str(script)], "/nonexistent-home", search_path)
    python = os.path.realpath(str(Path(sys.base_prefix) / "bin" / "python3"))
    assert str(script) in command.needs.binds
    if not python.startswith("/usr"):
        assert any(python.startswith(b) for b in command.needs.binds)


def test_missing_command_is_a_clear_error() -> None:
    with pytest.raises(CommandNotFound, match="'no-such-server' is not on PATH"):
        resolve.resolve(["no-such-server"], "/nonexistent-home", "/usr/bin")
    with pytest.raises(CommandNotFound, match="does not exist"):
        resolve.resolve(["/no/such/server"], "/nonexistent-home", "/usr/bin")


def test_a_script_in_a_project_binds_its_root_and_a_loose_one_its_sibling_modules(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "dist").mkdir(parents=True)
    (project / "package.json").write_text("{}")
    (project / "dist" / "index.js").write_text("")
    command = resolve.resolve(["node", str(project / "dist" / "index.js")], "/nonexistent-home", "/usr/bin:/bin")
    assert str(project) in command.needs.binds
    loose = tmp_path / "loose"
    (loose / "pkg").mkdir(parents=True)
    for name in ("server.py", "helper.py", "pkg/__init__.py", "notes.txt"):
        (loose / name).write_text("")
    command = resolve.resolve([sys.executable, str(loose / "server.py")], "/nonexistent-home", os.environ["PATH"])
    bound = {bind for bind in command.needs.binds if bind.startswith(str(loose))}
    assert bound == {str(loose / "server.py"), str(loose / "helper.py"), str(loose / "pkg")}


def test_a_project_root_holding_secrets_is_not_bound(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    (project / ".aws").mkdir()
    (project / "server.py").write_text("")
    command = resolve.resolve([sys.executable, str(project / "server.py")], "/nonexistent-home", os.environ["PATH"])
    assert str(project) not in command.needs.binds and str(project / "server.py") in command.needs.binds


def test_argument_paths_are_bound_with_the_guards_and_the_rest_said(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "projects" / "repo").mkdir(parents=True)
    (home / "notes.db").write_text("")
    monkeypatch.chdir(home / "projects")
    monkeypatch.setenv("HOME", str(home))
    argv = [sys.executable, "-m", "server", "--repository=./repo", f"{home}/notes.db", "~", str(home / ".ssh"),
            f"{home}/new.db", "memory", "/usr/share", "--flag"]
    command = resolve.resolve(argv, str(home), os.environ["PATH"])
    assert command.arguments == [str(home / "projects" / "repo"), str(home / "notes.db")]
    assert [line for _, line in command.notes] == [
        "the argument ~ is not bound: it is a system root, the home folder or above it; name it in [sandbox] "
        "read_only or read_write if the server must have it",
        f"the argument {home}/.ssh is not bound: it lies in a folder for secrets; name it in [sandbox] read_only "
        "or read_write if the server must have it",
        f"the argument {home}/new.db does not exist, so nothing is bound for it; if the server is to create it, "
        "set [sandbox] writable_args = true (its folder is then bound)"]
    writable = resolve.resolve(argv, str(home), os.environ["PATH"], writable_args=True)
    assert writable.arguments == [str(home / "projects" / "repo")], "a file's folder: here the home, refused"
    assert sum("is not bound: it is a system root, the home folder" in line for _, line in writable.notes) == 3


def test_a_venv_made_from_the_system_python_is_bound(tmp_path: Path) -> None:
    """Its bin/python links into /usr: the venv (its site-packages) must be bound all the same."""
    system = Path("/usr/bin/python3")
    if not system.exists():
        pytest.skip("no /usr/bin/python3")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {system.parent}\n")
    (venv / "bin" / "python").symlink_to(system)
    command = resolve.resolve([str(venv / "bin" / "python"), "-m", "server"], "/nonexistent-home", "/usr/bin:/bin")
    assert str(venv) in command.needs.binds
    assert resolve.resolve(["/bin/sh", "-c", "true"], "/nonexistent-home", "/usr/bin:/bin").needs.binds == []
