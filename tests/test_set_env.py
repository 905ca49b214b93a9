"""`[sandbox.set_env]`: a profile sets a variable's value for the server (a state file, a cache folder, git's
safe.directory), with '~/' meaning the user's home, without the client's config; a secret-named one is
redacted like a passed-through secret."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import MCPBOX, write_profile

PRINT = "import os, sys; print('MEMORY=' + os.environ['MEMORY_FILE_PATH'], 'PLAIN=' + os.environ['PLAIN'], " \
        "'TOKEN=' + os.environ['SERVICE_TOKEN'], sep='\\n', file=sys.stderr)"


def test_set_values_reach_the_server_expanded_and_a_secret_one_is_redacted(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "set.toml", """
[sandbox]
env = ["LANG"]
[sandbox.set_env]
MEMORY_FILE_PATH = "~/.local/share/mcp/memory.jsonl"
PLAIN = "a~/b//c"
SERVICE_TOKEN = "s3cr3t-value-from-the-profile"
""")
    done = subprocess.run([*MCPBOX, "run", "--profile", str(profile), "--", "/usr/bin/python3", "-c", PRINT],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert f"[server] MEMORY={os.path.expanduser('~')}/.local/share/mcp/memory.jsonl" in lines
    assert "[server] PLAIN=a~/b//c" in lines, "only a leading '~/' is expanded, and nothing is normalized"
    assert "s3cr3t-value-from-the-profile" not in done.stderr and "[server] TOKEN=[redacted:SERVICE_TOKEN]" in lines
    check = subprocess.run([*MCPBOX, "check", str(profile)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert (f"environment: LANG from the host; set by the profile: MEMORY_FILE_PATH={os.path.expanduser('~')}/"
            ".local/share/mcp/memory.jsonl, PLAIN=a~/b//c, SERVICE_TOKEN=(a secret)") in check.stdout
    assert "s3cr3t" not in check.stdout


def test_a_set_value_that_injects_code_or_doubles_a_passed_name_is_refused(tmp_path: Path) -> None:
    for body, said in (('[sandbox.set_env]\nNODE_OPTIONS = "--require /x"\n', "sandbox.set_env: NODE_OPTIONS injects"),
                       ('[sandbox]\nenv = ["LANG"]\n[sandbox.set_env]\nLANG = "C"\n',
                        "sandbox.set_env.LANG: also passed from the host by sandbox.env")):
        profile = write_profile(tmp_path / "bad.toml", body)
        check = subprocess.run([*MCPBOX, "check", str(profile)], capture_output=True, text=True)
        assert check.returncode == 125 and said in check.stderr and check.stderr.count("\n") == 1, check.stderr
