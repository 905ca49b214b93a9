"""Verification against bundles the suite mints offline with its own Sigstore instance.

Each case is a real sigstore-python verification of a real bundle: the good
ones verify only because every signature, proof and certificate in them
holds, and each bad one is rejected for its own reason, named in one line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

import pytest

import minting
from mcpbox.profile import Verify
from mcpbox.trust import verify as trust
from mcpbox.trust.errors import ArtifactError, BundleError, ContentMismatch, SignatureRejected, TrustRootError
from trustkit import ME, RELEASE, audit_lines, signed_file, signed_tree, verify_fields, write_tree
from trustkit import other_root, test_root  # noqa: F401 (fixtures)

SERVER = b"print('the signed server')\n"
TREE = {"server.py": b"import lib.util\n", "lib/__init__.py": b"", "lib/util.py": b"ANSWER = 42\n"}


def policy(root: minting.TestRoot, artifact: Path, bundle: Path, signer: minting.Signer = ME,
           **changes: str | None) -> Verify:
    return Verify(**verify_fields(root, artifact, bundle, signer, **changes))


# -- what verifies -------------------------------------------------------------------------------------


def test_good_file_verifies_and_the_staged_copy_is_what_was_signed(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    result = trust.verified(policy(test_root, artifact, bundle), None)
    assert (result.kind, result.identity, result.issuer, result.cached) == ("file", ME.identity, ME.issuer, False)
    assert result.log_time == "2024-06-01T12:00:05Z"
    staged = Path(result.staged)
    assert staged.read_bytes() == SERVER and staged != artifact
    assert not staged.stat().st_mode & 0o222, "the verified copy is read-only"
    store = Path(os.environ["XDG_CACHE_HOME"]) / "mcpbox" / "store"
    assert staged.is_relative_to(store) and store.stat().st_mode & 0o777 == 0o700
    [line] = audit_lines()
    assert (line["event"], line["decision"], line["identity"]) == ("verify", "allow", ME.identity)


def test_good_tree_verifies_and_only_its_listed_files_are_staged(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    result = trust.verified(policy(test_root, artifact, bundle), None)
    assert (result.kind, result.files) == ("tree", 3)
    staged = Path(result.staged)
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == sorted(TREE)
    assert all((staged / name).read_bytes() == data for name, data in TREE.items())


def test_a_tree_holding_its_own_bundle_verifies_without_staging_it(test_root, tmp_path: Path) -> None:
    artifact = write_tree(tmp_path / "server", TREE)
    bundle = artifact / "server.sigstore.json"
    bundle.write_bytes(test_root.sign_statement(minting.tree_statement(TREE), ME))
    result = trust.verified(policy(test_root, artifact, bundle), None)
    assert not (Path(result.staged) / "server.sigstore.json").exists()


def test_model_signing_tree_leaves_ignored_paths_out(test_root, tmp_path: Path) -> None:
    """model_signing's ignore_paths: not compared and never staged, even a symlink or a whole directory."""
    artifact = write_tree(tmp_path / "model", {**TREE, "notes.txt": b"unsigned", ".git/HEAD": b"ref: x\n"})
    (artifact / "link").symlink_to("/etc/passwd")
    bundle = artifact / "model.sig"
    statement = minting.model_signing_statement("model", TREE, [".git", "notes.txt", "link", "model.sig"])
    bundle.write_bytes(test_root.sign_statement(statement, ME))
    result = trust.verified(policy(test_root, artifact, bundle), None)
    staged = Path(result.staged)
    assert sorted(p.name for p in staged.iterdir()) == ["lib", "server.py"]


def test_a_file_signed_through_an_in_toto_statement_verifies_by_its_subject_digest(test_root, tmp_path) -> None:
    artifact = tmp_path / "server.py"
    artifact.write_bytes(SERVER)
    bundle = tmp_path / "server.intoto.json"
    bundle.write_bytes(test_root.sign_statement(minting.tree_statement({"server.py": SERVER}), ME))
    assert trust.verified(policy(test_root, artifact, bundle), None).kind == "file"
    artifact.write_bytes(b"print('other')\n")
    with pytest.raises(ContentMismatch, match="expected sha256 [0-9a-f]{64}, found sha256 [0-9a-f]{64}"):
        trust.verified(policy(test_root, artifact, bundle), None)


@pytest.mark.parametrize("repository", ["acme/weather-mcp", "https://github.com/acme/weather-mcp"])
def test_any_release_of_a_repository_verifies(test_root, tmp_path: Path, repository: str) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER, signer=RELEASE)
    rule = policy(test_root, artifact, bundle, identity=None, repository=repository, ref="refs/tags/v*",
                  workflow="release.yml", issuer=minting.GHA)
    assert trust.verified(rule, None).identity == RELEASE.identity


def test_verification_never_touches_the_network(test_root, tmp_path: Path, monkeypatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("verification tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    assert trust.verified(policy(test_root, artifact, bundle), None, fresh=True).kind == "tree"


# -- what does not ---------------------------------------------------------------------------------------


def test_tampered_file_is_refused_with_both_digests(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    artifact.write_bytes(SERVER + b"import os; os.system('curl evil')\n")
    with pytest.raises(ContentMismatch) as caught:
        trust.verified(policy(test_root, artifact, bundle), None)
    message = str(caught.value)
    assert f"{artifact} is not the file {ME.identity} signed" in message
    assert minting.sha256(SERVER).hex() in message and minting.sha256(artifact.read_bytes()).hex() in message
    assert "\n" not in message
    [line] = audit_lines()
    assert line["decision"] == "deny" and line["expected"] == f"sha256 {minting.sha256(SERVER).hex()}"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda tree: (tree / "lib" / "util.py").write_bytes(b"ANSWER = 666\n"), "lib/util.py differs from what was signed"),
    (lambda tree: (tree / "lib" / "util.py").unlink(), "lib/util.py is missing"),
    (lambda tree: (tree / "sitecustomize.py").write_bytes(b"import evil\n"),
     "sitecustomize.py is an extra file that the signed manifest does not list"),
    (lambda tree: (tree / "lib" / "evil.pth").write_bytes(b"import evil\n"),
     "lib/evil.pth is an extra file"),
])
def test_changed_missing_and_extra_files_fail_a_tree(test_root, tmp_path: Path, change, expected: str) -> None:
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    change(artifact)
    with pytest.raises(ContentMismatch, match=expected):
        trust.verified(policy(test_root, artifact, bundle), None)


@pytest.mark.parametrize("special", ["symlink", "fifo"])
def test_symlinks_and_special_files_in_a_tree_are_refused(test_root, tmp_path: Path, special: str) -> None:
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    if special == "symlink":
        (artifact / "lib" / "util.py").unlink()
        (artifact / "lib" / "util.py").symlink_to(tmp_path / "elsewhere.py")
        (tmp_path / "elsewhere.py").write_bytes(TREE["lib/util.py"])  # same bytes: still refused
    else:
        os.mkfifo(artifact / "pipe")
    with pytest.raises(ArtifactError, match=f"{artifact}/(lib/util.py is a symlink|pipe is a special file)"):
        trust.verified(policy(test_root, artifact, bundle), None)


def test_wrong_identity_says_who_was_expected_and_who_signed(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER, signer=minting.Signer("mallory@example.com", ME.issuer))
    with pytest.raises(SignatureRejected) as caught:
        trust.verified(policy(test_root, artifact, bundle), None)
    assert str(caught.value) == (
        f"{artifact} is not signed by the expected signer: expected identity {ME.identity}, issuer {ME.issuer}; "
        f"found identity mallory@example.com, issuer {ME.issuer}")


def test_wrong_issuer_is_refused(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER,
                                   signer=minting.Signer(ME.identity, "https://accounts.evil"))
    with pytest.raises(SignatureRejected, match="expected identity .*, issuer https://issuer.example; found "
                                                "identity publisher@example.com, issuer https://accounts.evil"):
        trust.verified(policy(test_root, artifact, bundle), None)


@pytest.mark.parametrize(("signer", "found"), [
    (minting.Signer.github("mallory/weather-mcp", "refs/tags/v1.2.0"), "repository https://github.com/mallory/"),
    (minting.Signer.github("acme/weather-mcp", "refs/heads/main"), "ref refs/heads/main"),
    (minting.Signer.github("acme/weather-mcp", "refs/tags/v1.2.0", ".github/workflows/debug.yml"),
     "identity https://github.com/acme/weather-mcp/.github/workflows/debug.yml"),
    (minting.Signer(RELEASE.identity, "https://accounts.evil", RELEASE.claims), "issuer https://accounts.evil"),
])
def test_wrong_repository_ref_workflow_or_issuer_is_refused(test_root, tmp_path: Path, signer, found: str) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER, signer=signer)
    rule = policy(test_root, artifact, bundle, identity=None, repository="acme/weather-mcp", ref="refs/tags/*",
                  workflow="release.yml", issuer=minting.GHA)
    with pytest.raises(SignatureRejected) as caught:
        trust.verified(rule, None)
    assert "expected repository https://github.com/acme/weather-mcp, workflow .github/workflows/release.yml, " \
           "ref refs/tags/*, issuer https://token.actions.githubusercontent.com; found " in str(caught.value)
    assert found in str(caught.value)


def test_a_bundle_from_another_trust_root_is_refused(test_root, other_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(other_root, tmp_path, SERVER)
    with pytest.raises(SignatureRejected) as caught:
        trust.verified(policy(test_root, artifact, bundle), None)
    message = str(caught.value)
    assert f"does not verify against the trust root {test_root.path}" in message
    assert f"its certificate names identity {ME.identity}" in message
    assert trust.verified(policy(other_root, artifact, bundle), None).identity == ME.identity


def test_log_time_outside_the_certificate_validity_is_refused(test_root, tmp_path: Path) -> None:
    """Logged 20 minutes after signing, by a certificate that lived 10: no proof it signed while valid."""
    artifact, bundle = signed_file(test_root, tmp_path, SERVER, log_delay=dt.timedelta(minutes=20))
    with pytest.raises(SignatureRejected, match="not valid at validation time"):
        trust.verified(policy(test_root, artifact, bundle), None)


def test_corrupted_log_proof_is_refused(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    bundle.write_bytes(minting.corrupt_proof(bundle.read_bytes()))
    with pytest.raises(SignatureRejected, match="invalid log entry: inclusion proof contains invalid root hash"):
        trust.verified(policy(test_root, artifact, bundle), None)


def test_an_unsigned_server_never_verifies(test_root, tmp_path: Path) -> None:
    artifact = tmp_path / "server.py"
    artifact.write_bytes(SERVER)
    with pytest.raises(BundleError, match="cannot read the signature bundle .*: No such file"):
        trust.verified(policy(test_root, artifact, tmp_path / "server.py.sigstore.json"), None)
    (tmp_path / "junk.json").write_text("{\"mediaType\": \"nope\"}")
    with pytest.raises(BundleError, match="is not a sigstore bundle mcpbox can read"):
        trust.verified(policy(test_root, artifact, tmp_path / "junk.json"), None)


def test_a_file_bundle_does_not_verify_a_tree(test_root, tmp_path: Path) -> None:
    artifact = write_tree(tmp_path / "server", TREE)
    bundle = tmp_path / "b.json"
    bundle.write_bytes(test_root.sign_blob(b"anything", ME))
    with pytest.raises(BundleError, match="is a directory, but .* signs a single file"):
        trust.verified(policy(test_root, artifact, bundle), None)


@pytest.mark.parametrize("name", ["../outside.py", "/etc/passwd", "lib/../../x", "a//b"])
def test_a_statement_naming_paths_outside_the_tree_is_refused(test_root, tmp_path: Path, name: str) -> None:
    artifact = write_tree(tmp_path / "server", TREE)
    statement = minting.tree_statement(TREE)
    statement["subject"].append({"name": name, "digest": {"sha256": "00" * 32}})
    bundle = tmp_path / "b.json"
    bundle.write_bytes(test_root.sign_statement(statement, ME))
    with pytest.raises(BundleError, match="unsafe or non-relative path"):
        trust.verified(policy(test_root, artifact, bundle), None)


def test_an_artifact_reached_through_a_symlink_is_refused(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    (tmp_path / "alias.py").symlink_to(artifact)
    with pytest.raises(ArtifactError, match="reached through a symlink; give its real path"):
        trust.verified(policy(test_root, tmp_path / "alias.py", bundle), None)


# -- trust roots ----------------------------------------------------------------------------------------


def test_a_trust_root_others_may_write_is_refused(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    loose = tmp_path / "loose.trusted_root.json"
    loose.write_bytes(test_root.trusted_root_json())
    loose.chmod(0o666)
    with pytest.raises(TrustRootError, match="may be changed by another user"):
        trust.verified(policy(test_root, artifact, bundle, trusted_root=str(loose)), None)


def test_an_altered_pinned_root_is_refused(test_root, tmp_path: Path, monkeypatch) -> None:
    """The shipped public-good root is checked against its pinned sha256 before sigstore reads it."""
    from mcpbox.trust import root

    altered = tmp_path / "trusted_root.json"
    altered.write_bytes(test_root.trusted_root_json())  # a root the attacker controls
    monkeypatch.setattr(root, "PINNED", str(altered))
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    with pytest.raises(TrustRootError, match="pinned trust root .* was altered"):
        trust.verified(policy(test_root, artifact, bundle, trusted_root=None), None)


def test_the_pinned_root_is_sigstores_public_good_root() -> None:
    import hashlib

    from mcpbox.trust import root

    data = Path(root.PINNED).read_bytes()
    assert hashlib.sha256(data).hexdigest() == root.PINNED_SHA256
    assert json.loads(data)["tlogs"][0]["baseUrl"] == "https://rekor.sigstore.dev"


def test_a_refreshed_root_replaces_the_pinned_one(test_root, tmp_path: Path) -> None:
    """What `mcpbox trust update` writes is what verification uses when the profile names no root."""
    from mcpbox.trust import root

    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    without_root = policy(test_root, artifact, bundle, trusted_root=None)
    with pytest.raises(SignatureRejected, match="trust root .*/mcpbox/trust/trusted_root.json"):
        trust.verified(without_root, None)  # the pinned public-good root does not know the test CA
    refreshed = Path(root.updated_path())
    refreshed.parent.mkdir(parents=True)
    refreshed.write_bytes(test_root.trusted_root_json())
    assert trust.verified(without_root, None).identity == ME.identity


# -- the cache ------------------------------------------------------------------------------------------


def test_an_unchanged_artifact_is_served_from_the_cache(test_root, tmp_path: Path) -> None:
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    first = trust.verified(policy(test_root, artifact, bundle), None)
    again = trust.verified(policy(test_root, artifact, bundle), None)
    assert again.cached and again._replace(cached=False) == first


@pytest.mark.parametrize("change", ["rewrite", "touch", "add", "remove", "replace", "retype", "bundle", "policy"])
def test_any_change_is_noticed_and_verified_again(test_root, tmp_path: Path, change: str) -> None:
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    rule = policy(test_root, artifact, bundle)
    trust.verified(rule, None)
    assert trust.verified(rule, None).cached
    if change == "rewrite":  # same size, same mtime: only the ctime tells
        target = artifact / "lib" / "util.py"
        stamp = target.stat().st_mtime_ns
        target.write_bytes(b"ANSWER = 43\n")
        os.utime(target, ns=(stamp, stamp))
        with pytest.raises(ContentMismatch, match="lib/util.py differs"):
            trust.verified(rule, None)
        return
    if change == "touch":
        os.utime(artifact / "server.py")
    elif change == "add":
        (artifact / "lib" / "sitecustomize.py").write_bytes(b"")
        with pytest.raises(ContentMismatch, match="sitecustomize.py is an extra file"):
            trust.verified(rule, None)
        return
    elif change == "remove":
        (artifact / "lib" / "util.py").unlink()
        with pytest.raises(ContentMismatch, match="lib/util.py is missing"):
            trust.verified(rule, None)
        return
    elif change == "replace":  # another file (inode) with the same bytes, size and mtime, renamed over it
        target = artifact / "server.py"
        before = target.stat()
        twin = artifact / "server.py.new"
        twin.write_bytes(target.read_bytes())
        os.utime(twin, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(twin, target)
        assert target.stat().st_ino != before.st_ino
    elif change == "retype":  # a symlink to the same bytes where the file was
        target = artifact / "lib" / "util.py"
        (tmp_path / "util.py").write_bytes(target.read_bytes())
        target.unlink()
        target.symlink_to(tmp_path / "util.py")
        with pytest.raises(ArtifactError, match="lib/util.py is a symlink"):
            trust.verified(rule, None)
        return
    elif change == "bundle":
        bundle.write_bytes(test_root.sign_statement(minting.tree_statement(TREE), ME))
    else:
        rule = rule._replace(identity="someone@else.example")
        with pytest.raises(SignatureRejected):
            trust.verified(rule, None)
        return
    assert not trust.verified(rule, None).cached


def test_a_change_of_the_deciding_code_is_noticed(test_root, tmp_path: Path, monkeypatch) -> None:
    """mcpbox changed in place (an upgrade, an edit): what older code decided is not served."""
    code = tmp_path / "verify.py"
    code.write_bytes(Path(trust.CODE[0]).read_bytes())
    monkeypatch.setattr(trust, "CODE", (str(code),))
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    rule = policy(test_root, artifact, bundle)
    trust.verified(rule, None)
    assert trust.verified(rule, None).cached
    code.write_bytes(code.read_bytes() + b"\n")
    assert not trust.verified(rule, None).cached


def test_a_damaged_cache_entry_is_a_miss(test_root, tmp_path: Path) -> None:
    from mcpbox import cache

    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    rule = policy(test_root, artifact, bundle)
    first = trust.verified(rule, None)
    [entry] = (Path(os.environ["XDG_CACHE_HOME"]) / "mcpbox" / "verified").iterdir()
    key, separator, value = entry.read_bytes().partition(cache.SEPARATOR)
    entry.write_bytes(key + separator + value[:len(value) // 2])
    again = trust.verified(rule, None)
    assert not again.cached and again._replace(cached=False) == first


def test_a_file_dated_before_1970_verifies_afresh_each_time(test_root, tmp_path: Path) -> None:
    """Its mtime does not fit the cache's unsigned fingerprint: never served from the cache, never wrong."""
    artifact, bundle = signed_tree(test_root, tmp_path / "server", TREE)
    os.utime(artifact / "server.py", ns=(-86_400 * 10**9, -86_400 * 10**9))
    rule = policy(test_root, artifact, bundle)
    assert not trust.verified(rule, None).cached
    assert not trust.verified(rule, None).cached


def test_a_removed_store_entry_is_staged_again(test_root, tmp_path: Path) -> None:
    from mcpbox.trust import store

    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    first = trust.verified(policy(test_root, artifact, bundle), None)
    store._discard(first.staged)
    again = trust.verified(policy(test_root, artifact, bundle), None)
    assert not again.cached and Path(again.staged).read_bytes() == SERVER


def test_half_built_copies_of_a_killed_run_are_swept(test_root, tmp_path: Path) -> None:
    from mcpbox.trust import store

    left = Path(store.store_dir()) / "tmp" / "tree-killed"
    (left / "lib").mkdir(parents=True)
    (left / "lib" / "x.py").write_text("half")
    (left / "lib").chmod(0o555)
    recent = Path(store.store_dir()) / "tmp" / "tree-running"
    recent.mkdir()
    os.utime(left, (0, 0))
    artifact, bundle = signed_file(test_root, tmp_path, SERVER)
    trust.verified(policy(test_root, artifact, bundle), None)
    assert not left.exists(), "an hour-old half-built copy is removed"
    assert recent.exists(), "a copy another mcpbox may be building right now is left alone"


def test_a_file_signed_with_model_signing_verifies_by_its_one_resource(test_root, tmp_path: Path) -> None:
    artifact = tmp_path / "server.py"
    artifact.write_bytes(SERVER)
    bundle = tmp_path / "server.sig"
    bundle.write_bytes(test_root.sign_statement(minting.model_signing_statement("server.py", {"server.py": SERVER},
                                                                                 []), ME))
    assert trust.verified(policy(test_root, artifact, bundle), None).digest == minting.sha256(SERVER).hex()
    whole_tree = tmp_path / "tree.sig"
    whole_tree.write_bytes(test_root.sign_statement(minting.model_signing_statement("t", TREE, []), ME))
    with pytest.raises(BundleError, match="lists 3 files; a single-file artifact needs a manifest of that one"):
        trust.verified(policy(test_root, artifact, whole_tree), None)


@pytest.mark.parametrize("subject", [{"name": "x", "digest": "not-a-map"}, "just a string", {"name": "x"}])
def test_a_malformed_statement_is_refused_in_one_line(test_root, tmp_path: Path, subject: object) -> None:
    artifact = write_tree(tmp_path / "server", TREE)
    statement = minting.tree_statement(TREE)
    statement["subject"].append(subject)
    bundle = tmp_path / "b.json"
    bundle.write_bytes(test_root.sign_statement(statement, ME))
    with pytest.raises(BundleError) as caught:
        trust.verified(policy(test_root, artifact, bundle), None)
    assert "\n" not in str(caught.value)
