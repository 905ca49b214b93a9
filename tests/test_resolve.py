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
