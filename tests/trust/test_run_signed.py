"""`mcpbox run`, `mcpbox verify` and `mcpbox trust update` end to end: real bwrap, real verification.

The signed server is a small stdlib MCP server minted with the suite's own
Sigstore instance; its `initialize` reply names the build it is, so a test can
tell which bytes ran in the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minting
import tuf_repo
from trustkit import MCPBOX, ME, ROOT, audit_lines, signed_file, signed_tree, verify_fields, write_profile
from trustkit import test_root  # noqa: F401 (fixture)

PYTHON = "/usr/bin/python3"
SERVER = '''\
import json, os, sys
from build import NAME
HERE = sorted(name for name in os.listdir(os.path.dirname(os.path.abspath(__file__))) if name != "__pycache__")
for line in sys.stdin:
    request = json.loads(line)
    if request.get("method") == "initialize":
        result = {"protocolVersion": request["params"]["protocolVersion"], "capabilities": {},
                  "serverInfo": {"name": NAME, "version": " ".join(HERE)}}
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), flush=True)
'''
TREE = {"server.py": SERVER.encode(), "build.py": b"NAME = 'signed-build'\n"}
SINGLE = SERVER.replace("from build import NAME", "NAME = 'signed-file'").encode()
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}) + "\n"
RACER = '''\
from pathlib import Path
from mcpbox.trust import verify

verified = verify.{check}

def then_rewrite(*args, **kwargs):
    """The attacker's move, right after the check: rewrite the original and inject a file."""
    result = verified(*args, **kwargs)
    for path, text in REWRITES.items():
        Path(path).write_text(text)
    return result

REWRITES = {rewrites!r}
verify.{check} = then_rewrite
'''


def patched_mcpbox(directory: Path, patch: str) -> list[str]:
    """A command running mcpbox's CLI after `patch` (Python source) has changed a piece of it."""
    script = directory / "runner" / "patched_mcpbox.py"  # not beside a server script: its siblings are bound
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"import sys\n{patch}\nfrom mcpbox import cli\nsys.exit(cli.main(sys.argv[1:]))\n")
    return [sys.executable, str(script)]


def profile_for(root: minting.TestRoot, tmp_path: Path, artifact: Path, bundle: Path, **changes: str) -> Path:
    return write_profile(tmp_path / "signed.toml", verify_fields(root, artifact, bundle, **changes))


def mcpbox(arguments: list[str], stdin: str = "", command: list[str] | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command or [*MCPBOX, *arguments], input=stdin, capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env)


def server_info(stdout: str) -> tuple[str, str]:
    """The build name the running server was made with, and the files it sees beside itself."""
    info = json.loads(stdout.splitlines()[0])["result"]["serverInfo"]
    return info["name"], info["version"]


def test_a_signed_tree_starts_and_runs_from_the_verified_copy(test_root, tmp_path: Path) -> None:
    tree, bundle = signed_tree(test_root, tmp_path / "weather", TREE)
    profile = profile_for(test_root, tmp_path, tree, bundle)
    for attempt in ("first", "cached"):
        result = mcpbox(["run", "--profile", str(profile), "--", PYTHON, str(tree / "server.py")], INITIALIZE)
        assert result.returncode == 0, result.stderr
        assert server_info(result.stdout) == ("signed-build", "build.py server.py")
    decisions = [(line["decision"], line["cached"]) for line in audit_lines("verify")]
    assert decisions == [("allow", False), ("allow", True)]


def test_a_signed_file_starts(test_root, tmp_path: Path) -> None:
    server, bundle = signed_file(test_root, tmp_path, SINGLE)
    profile = profile_for(test_root, tmp_path, server, bundle)
    result = mcpbox(["run", "--profile", str(profile), "--", PYTHON, str(server)], INITIALIZE)
    assert result.returncode == 0, result.stderr
    assert server_info(result.stdout)[0] == "signed-file"


WATCHED = """\
from mcpbox.sandbox import spawn
abandon = spawn.Starting.abandon

def told(self):
    sys.stderr.write("dropped a sandbox\\n")
    abandon(self)

spawn.Starting.abandon = told
"""


def test_an_original_changed_since_its_cached_verification_is_verified_again(test_root, tmp_path: Path) -> None:
    """The sandbox started from the cached verification is dropped before its server runs: each build that
    runs appends its name to a trace the profile lets it write, and only the new build's name appears."""
    trace = tmp_path / "trace"
    trace.mkdir()
    traced = SERVER.replace("from build import NAME", f"from build import NAME\n"
                                                       f"open({str(trace)!r} + '/' + NAME + os.urandom(4).hex(), 'x')")
    tree, bundle = signed_tree(test_root, tmp_path / "weather", {**TREE, "server.py": traced.encode()})
    profile = write_profile(tmp_path / "signed.toml", verify_fields(test_root, tree, bundle),
                            sandbox={"read_write": [str(trace)]})
    run = [*patched_mcpbox(tmp_path, WATCHED), "run", "--profile", str(profile), "--", PYTHON, str(tree / "server.py")]
    first = mcpbox([], INITIALIZE, command=run)
    assert server_info(first.stdout)[0] == "signed-build", first.stdout + first.stderr
    signed_tree(test_root, tree, {"server.py": traced.encode(), "build.py": b"NAME = 'second-build'\n"})
    second = mcpbox([], INITIALIZE, command=run)
    assert second.returncode == 0, second.stderr
    assert second.stderr == "dropped a sandbox\n", "started from the cached verification, then dropped"
    assert server_info(second.stdout)[0] == "second-build"
    (tree / "build.py").write_text("NAME = 'tampered'\n")
    third = mcpbox([], INITIALIZE, command=run)
    assert third.returncode == 124 and third.stdout == ""
    assert third.stderr.startswith("dropped a sandbox\nmcpbox: ")
    assert "build.py differs from what was signed" in third.stderr
    assert sorted(name[:-8] for name in os.listdir(trace)) == ["second-build", "signed-build"]
    decisions = [(line["decision"], line.get("cached")) for line in audit_lines("verify")]
    assert decisions == [("allow", False), ("allow", False), ("deny", None)]


def test_a_cached_verification_whose_copy_is_gone_is_verified_again(test_root, tmp_path: Path) -> None:
    """Clearing the store (as the README allows) costs one fresh verification, not a broken launch."""
    tree, bundle = signed_tree(test_root, tmp_path / "weather", TREE)
    profile = profile_for(test_root, tmp_path, tree, bundle)
    run = ["run", "--profile", str(profile), "--", PYTHON, str(tree / "server.py")]
    assert mcpbox(run, INITIALIZE).returncode == 0
    store = Path(os.environ["XDG_CACHE_HOME"]) / "mcpbox" / "store"
    for directory, _, _ in os.walk(store):
        os.chmod(directory, 0o700)
    shutil.rmtree(store)
    again = mcpbox(run, INITIALIZE)
    assert again.returncode == 0, again.stderr
    assert server_info(again.stdout)[0] == "signed-build"
    assert [line["cached"] for line in audit_lines("verify")] == [False, False]


@pytest.mark.parametrize("tamper", ["changed", "injected", "wrong signer"])
def test_an_unverified_server_never_starts(test_root, tmp_path: Path, tamper: str) -> None:
    tree, bundle = signed_tree(test_root, tmp_path / "weather", TREE)
    marker = tmp_path / "started"
    hostile = f"open({str(marker)!r}, 'w').close()\n"  # would leave a trace on the host if it ever ran
    changes = {}
    if tamper == "changed":
        (tree / "build.py").write_text(hostile + "NAME = 'evil'\n")
    elif tamper == "injected":
        (tree / "sitecustomize.py").write_text(hostile)
    else:
        changes = {"identity": "someone-else@example.com"}
    profile = profile_for(test_root, tmp_path, tree, bundle, **changes)
    result = mcpbox(["run", "--profile", str(profile), "--", PYTHON, str(tree / "server.py")], INITIALIZE)
    assert result.returncode == 124
    assert result.stdout == "" and not marker.exists()
    [line] = result.stderr.splitlines()
    expected = {"changed": "build.py differs from what was signed (signed sha256 ",
                "injected": "sitecustomize.py is an extra file",
                "wrong signer": "expected identity someone-else@example.com"}[tamper]
    assert line.startswith("mcpbox: ") and expected in line
    [audit] = audit_lines("verify")
    assert audit["decision"] == "deny" and audit["reason"] == line.removeprefix("mcpbox: ")


@pytest.mark.parametrize(("shape", "check"), [("tree", "afresh"), ("file", "afresh"), ("executable", "afresh"),
                                              ("tree", "served"), ("executable", "served")])
def test_rewriting_the_original_after_verification_changes_nothing_that_runs(test_root, tmp_path: Path,
                                                                             shape: str, check: str) -> None:
    """Between the check (a new verification, or the cached one confirmed) and the start the original is
    rewritten: the sandbox still runs the verified bytes, started by the interpreter the verified copy names
    (an executable's shebang is read from the copy)."""
    command = [PYTHON]
    if shape == "tree":
        artifact, bundle = signed_tree(test_root, tmp_path / "weather", TREE)
        server = artifact / "server.py"
        rewrites = {str(artifact / "build.py"): "NAME = 'rewritten'\n",
                    str(artifact / "sitecustomize.py"): "raise SystemExit('injected code ran')\n"}
        expected = ("signed-build", "build.py server.py")
    elif shape == "file":
        artifact, bundle = signed_file(test_root, tmp_path, SINGLE)
        server = artifact
        rewrites = {str(server): SERVER.replace("from build import NAME", "NAME = 'rewritten'")}
        expected = ("signed-file", "server.py")
    else:  # only the copy's interpreter, outside /usr, is bound: the rewritten shebang's would not start it
        interpreter = tmp_path / "interpreter" / "bin" / "python"
        interpreter.parent.mkdir(parents=True)
        interpreter.write_text(f'#!/bin/sh\nexec {PYTHON} "$@"\n')
        interpreter.chmod(0o755)
        (tmp_path / "app").mkdir()
        artifact, bundle = signed_file(test_root, tmp_path / "app", f"#!{interpreter}\n".encode() + SINGLE)
        artifact.chmod(0o755)
        server = artifact
        rewrites = {str(server): f"#!{PYTHON}\n" + SERVER.replace("from build import NAME", "NAME = 'rewritten'")}
        expected = ("signed-file", "server.py")
        command = []
    profile = profile_for(test_root, tmp_path, artifact, bundle)
    run = ["run", "--profile", str(profile), "--", *command, str(server)]
    if check == "served":
        assert mcpbox(run, INITIALIZE).returncode == 0  # the verification the racing launch finds cached
    result = mcpbox([], INITIALIZE, command=[*patched_mcpbox(tmp_path, RACER.format(rewrites=rewrites, check=check)),
                                             *run])
    assert result.returncode == 0, result.stderr
    assert server_info(result.stdout) == expected
    assert "rewritten" in Path(next(iter(rewrites))).read_text(), "the original was rewritten before the start"
    assert audit_lines("verify")[-1]["cached"] == (check == "served")


def test_mcpbox_verify_prints_signer_log_time_and_digest(test_root, tmp_path: Path) -> None:
    tree, bundle = signed_tree(test_root, tmp_path / "weather", TREE)
    profile = profile_for(test_root, tmp_path, tree, bundle)
    result = mcpbox(["verify", "--profile", str(profile)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"verified: {tree} (a tree of 2 files)"
    assert lines[1] == f"signer:   {ME.identity} (issuer {ME.issuer})"
    assert lines[2] == "logged:   2024-06-01T12:00:05Z"
    assert lines[3].startswith("sha256:   ") and len(lines[3].split()[1]) == 64
    (tree / "build.py").write_text("NAME = 'evil'\n")
    failed = mcpbox(["verify", "--profile", str(profile)])
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith(f"mcpbox: {tree} is not the tree {ME.identity} signed: build.py differs")
    assert failed.stderr.count("\n") == 1


def test_mcpbox_verify_of_a_profile_without_verify_says_so(tmp_path: Path) -> None:
    profile = tmp_path / "plain.toml"
    profile.write_text("description = 'unsigned'\n")
    result = mcpbox(["verify", "--profile", str(profile)])
    assert result.returncode == 1
    assert result.stderr == f"mcpbox: profile {profile} has no [verify] section: nothing to verify\n"


def test_trust_update_without_network_fails_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = mcpbox(["trust", "update"], env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("mcpbox: cannot refresh the Sigstore trust root from "
                                    "https://tuf-repo-cdn.sigstore.dev: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "verification keeps using " in result.stderr


UPDATER = """\
from mcpbox.trust import root
root.TUF_URL = {url!r}  # the suite's own repository instead of Sigstore's public one
"""


def test_trust_update_keeps_the_root_its_tuf_repository_signs_and_profiles_then_use_it(test_root,
                                                                                      tmp_path: Path) -> None:
    """The suite's root published through a TUF repository on loopback: `trust update` fetches it with
    sigstore's TUF client and keeps it, a profile without `trusted_root` then verifies against it, and a
    repository serving other bytes than it signed changes nothing."""
    server, bundle = signed_file(test_root, tmp_path, SINGLE)
    plain = profile_for(test_root, tmp_path, server, bundle, trusted_root=None)
    assert mcpbox(["verify", "--profile", str(plain)]).returncode == 1, "the pinned public root must not verify it"
    published = test_root.path.read_bytes()
    repository = tuf_repo.Repository(tmp_path / "repository", published)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    kept = Path(os.environ["XDG_CONFIG_HOME"]) / "mcpbox" / "trust" / "trusted_root.json"
    with repository.serving() as url:
        repository.trust(tmp_path / "data", url)
        update = [*patched_mcpbox(tmp_path, UPDATER.format(url=url)), "trust", "update"]
        first = mcpbox([], command=update, env=env)
        assert first.returncode == 0, first.stderr
        digest = hashlib.sha256(published).hexdigest()
        assert first.stdout == f"trust root updated from {url}: {kept} (sha256 {digest})\n"
        assert kept.read_bytes() == published and kept.stat().st_mode & 0o777 == 0o600
        assert mcpbox([], command=update, env=env).stdout == f"the trust root is up to date: {kept}\n"
        assert b": " in published
        repository.tamper(b" " + published.replace(b": ", b":", 1))  # the same JSON and length, other bytes: only
        # the digest in the signed targets metadata tells them apart
        fresh_download = {**env, "XDG_CACHE_HOME": str(tmp_path / "other-cache")}  # not the good copy TUF kept
        tampered = mcpbox([], command=update, env=fresh_download)
    assert tampered.returncode == 1, tampered.stderr
    assert tampered.stderr.startswith(f"mcpbox: cannot refresh the Sigstore trust root from {url}: Observed hash ")
    assert tampered.stderr.endswith(f"; verification keeps using {kept}\n")
    assert kept.read_bytes() == published
    verified = mcpbox(["verify", "--profile", str(plain)])
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"verified: {server} (a file)")


HEAVY = ("sigstore", "cryptography", "hashlib", "_hashlib", "mcpbox.trust.signature", "mcpbox.trust.store")
PROBE = '''\
import sys
from mcpbox.profile import Verify
from mcpbox.trust import verify
result = verify.verified(Verify(**{fields!r}), None)
print(result.cached, sorted(name for name in sys.modules if name.split(".")[0] in {heavy!r} or name in {heavy!r}))
'''


def test_sigstore_is_imported_only_when_something_is_new(test_root, tmp_path: Path) -> None:
    tree, bundle = signed_tree(test_root, tmp_path / "weather", TREE)
    fields = verify_fields(test_root, tree, bundle)
    probe = [sys.executable, "-c", PROBE.format(fields=fields, heavy=HEAVY)]

    def launch() -> tuple[str, str]:
        result = mcpbox([], command=probe)
        assert result.returncode == 0, result.stderr
        cached, modules = result.stdout.split(" ", 1)
        return cached, modules

    cached, modules = launch()
    assert cached == "False" and "sigstore" in modules
    assert launch() == ("True", "[]\n"), "an unchanged, verified tree costs no heavy import"
    os.utime(tree / "build.py")  # changed metadata, same bytes, same bundle: staged again, no sigstore
    cached, modules = launch()
    assert cached == "False" and "sigstore" not in modules and "hashlib" in modules


def test_a_launch_without_verify_imports_nothing_of_it() -> None:
    result = mcpbox([], command=[sys.executable, "-X", "importtime", "-m", "mcpbox", "run", "--", "/bin/true"])
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "mcpbox.profile" in imported
    assert not {name for name in imported if name.startswith(("mcpbox.trust", "sigstore"))}
