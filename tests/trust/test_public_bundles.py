"""Verdicts on real, publicly signed Sigstore data that nobody on this project minted.

The data lives in ../shared/sigstore/ (its README lists every verdict checked
here); the two PyPI packages it signs are fetched with pip and checked against
their published sha256 first. Every verdict goes through mcpbox's own path:
the artifact is staged, the bundle verified offline against the pinned
public-good root (or the case's own root), and the signer matched with the
profile's policy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcpbox.profile import Verify
from mcpbox.trust import verify as trust
from mcpbox.trust.errors import ContentMismatch, SignatureRejected, Unverified
from trustkit import ROOT, SHARED

BEACON = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
          "extremely-dangerous-oidc-beacon.yml@refs/heads/main")
GHA = "https://token.actions.githubusercontent.com"
WHEEL = "rfc8785-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
WHEEL_SIGNER = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
SDIST = ("pypi-attestations==0.0.19", "pypi_attestations-0.0.19.tar.gz",
         "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3")
OTHER_SDIST = ("pypi-attestation-models==0.0.4a2", "pypi_attestation_models-0.0.4a2.tar.gz",
               "c9709ce6fd5b67b59b4a28758cf14d3f411803c4b89b6068b1f1a8e4ee94c8ef")
CASES = sorted(p.name for p in (SHARED / "conformance").iterdir() if p.is_dir()) if SHARED.is_dir() else []

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the public Sigstore test data is not at {SHARED}")


def check(artifact: Path, bundle: Path, **policy: str | None) -> trust.Verified:
    return trust.verified(Verify(artifact=str(artifact), bundle=str(bundle), **policy), None, fresh=True)


def case_policy(case: str) -> tuple[Path, Path, dict[str, str | None]]:
    """A conformance case's artifact, bundle and policy: its own files where it has them, else the suite's."""
    directory = SHARED / "conformance" / case
    artifact = directory / "artifact" if (directory / "artifact").exists() else SHARED / "conformance" / "a.txt"
    identity = (directory / "identity").read_text().strip() if (directory / "identity").exists() else BEACON
    issuer = (directory / "issuer").read_text().strip() if (directory / "issuer").exists() else GHA
    root = directory / "trusted_root.json"
    policy = {"identity": identity, "issuer": issuer, "trusted_root": str(root) if root.exists() else None}
    return artifact, directory / "bundle.sigstore.json", policy


def fetch(requirement: str, name: str, sha256: str, sdist: bool = False) -> Path:
    """A signed package from PyPI, kept in .cache/ and trusted only if its sha256 is the published one."""
    directory = ROOT / ".cache" / "signed-packages"
    path = directory / name
    if not path.exists():
        options = ["--no-binary", ":all:"] if sdist else []
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *options, requirement,
                                 "-d", str(directory)], capture_output=True, text=True, timeout=120)
        if result.returncode != 0 or not path.exists():
            pytest.skip(f"cannot fetch {requirement} from the package registry (offline?): "
                        f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    assert found == sha256, f"{path} is not the published {name}: sha256 {found}, expected {sha256}"
    return path


# -- conformance cases: every directory ending in _fail is rejected, every other verifies ----------------


@pytest.mark.parametrize("case", CASES)
def test_conformance_case(case: str) -> None:
    artifact, bundle, policy = case_policy(case)
    if case.endswith("_fail"):
        with pytest.raises(Unverified) as caught:
            check(artifact, bundle, **policy)
        assert "\n" not in str(caught.value)
    else:
        result = check(artifact, bundle, **policy)
        assert (result.identity, result.digest) == (policy["identity"],
                                                    hashlib.sha256(artifact.read_bytes()).hexdigest())


def test_conformance_happy_path_with_another_ref_is_rejected() -> None:
    with pytest.raises(SignatureRejected, match="expected identity .*@refs/heads/evil.*; found identity "
                                                ".*@refs/heads/main"):
        check(SHARED / "conformance" / "a.txt", SHARED / "conformance" / "happy-path-v0.3" / "bundle.sigstore.json",
              identity=BEACON.replace("refs/heads/main", "refs/heads/evil"), issuer=GHA)


def test_conformance_failures_are_rejected_for_their_own_reason() -> None:
    """Not just 'rejected': each case fails at the check it was built to trip."""
    reasons = {
        "wrong-material_fail": "is not the file .* signed: expected sha256",
        "checkpoint-wrong-roothash_fail": "Inclusion proof contains invalid root hash signature",
        "inclusion-proof-corrupted-hash_fail": "inclusion proof contains invalid root hash",
        "set-invalid-signature_fail": "SET: invalid inclusion promise",
        "signature-mismatch_fail": "Signature is invalid for input",
        "dsse-invalid-sig_fail": "DSSE: invalid signature",
        "integrated-time-in-future_fail": "not valid at validation time",
        "invalid-ct-key_fail": "failed to verify SCT",
        "bundle-from-wrong-instance_fail": "failed to build timestamp certificate chain",
        "wrong-hashedrekord-entry_fail": "transparency log entry is inconsistent",
        "rekor2-no-timestamp_fail": "must contain an inclusion promise or signed timestamp",
    }
    assert set(reasons) == {case for case in CASES if case.endswith("_fail")}
    for case, reason in reasons.items():
        artifact, bundle, policy = case_policy(case)
        with pytest.raises(Unverified, match=reason):
            check(artifact, bundle, **policy)


# -- the signed tree (model_signing) ---------------------------------------------------------------------

TREE = SHARED / "model-signing-tree" / "v1.1.0-sigstore"
TREE_SIGNER = {"identity": "stefanb@us.ibm.com", "issuer": "https://sigstore.verify.ibm.com/oauth2"}


def copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "v1.1.0-sigstore"
    shutil.copytree(TREE, copy)
    for path in (copy, *copy.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def test_model_signing_tree_verifies_without_its_ignored_files() -> None:
    result = check(TREE, TREE / "model.sig", **TREE_SIGNER)
    assert (result.kind, result.files, result.log_time) == ("tree", 2, "2025-10-10T02:12:20Z")
    staged = Path(result.staged)
    assert sorted(p.name for p in staged.iterdir()) == ["signme-1", "signme-2"]


def test_model_signing_tree_with_another_identity_is_rejected() -> None:
    with pytest.raises(SignatureRejected, match="found identity stefanb@us.ibm.com"):
        check(TREE, TREE / "model.sig", identity="someone@us.ibm.com", issuer=TREE_SIGNER["issuer"])


def test_model_signing_tree_with_a_changed_file_is_rejected(tmp_path: Path) -> None:
    copy = copy_tree(tmp_path)
    (copy / "signme-1").write_bytes(b"changed!")
    with pytest.raises(ContentMismatch, match="signme-1 differs from what was signed"):
        check(copy, copy / "model.sig", **TREE_SIGNER)


def test_model_signing_tree_with_an_extra_file_is_rejected(tmp_path: Path) -> None:
    copy = copy_tree(tmp_path)
    (copy / "sitecustomize.py").write_text("import os\n")
    with pytest.raises(ContentMismatch, match="sitecustomize.py is an extra file"):
        check(copy, copy / "model.sig", **TREE_SIGNER)


# -- the release wheel (hashedrekord) ---------------------------------------------------------------------

BUNDLE = SHARED / "release-wheel" / f"{WHEEL}.sigstore"


@pytest.fixture(scope="module")
def wheel() -> Path:
    return fetch("rfc8785==0.1.2", WHEEL, WHEEL_SHA256)


def test_release_wheel_verifies_by_exact_identity(wheel: Path) -> None:
    result = check(wheel, BUNDLE, identity=WHEEL_SIGNER, issuer=GHA)
    assert (result.identity, result.digest, result.log_time) == (WHEEL_SIGNER, WHEEL_SHA256, "2024-03-19T22:41:16Z")


def test_release_wheel_verifies_as_any_tagged_release_of_its_repository(wheel: Path) -> None:
    result = check(wheel, BUNDLE, repository="trailofbits/rfc8785.py", workflow="release.yml",
                   ref="refs/tags/v*", issuer=GHA)
    assert result.identity == WHEEL_SIGNER


@pytest.mark.parametrize(("policy", "reason"), [
    ({"identity": WHEEL_SIGNER.replace("v0.1.2", "v0.1.3"), "issuer": GHA}, "found identity .*@refs/tags/v0.1.2"),
    ({"identity": WHEEL_SIGNER, "issuer": "https://accounts.google.com"}, f"found identity .*, issuer {GHA}"),
    ({"repository": "trailofbits/rfc8785", "issuer": GHA}, "found .*repository https://github.com/trailofbits/rfc8785.py"),
    ({"repository": "trailofbits/rfc8785.py", "ref": "refs/heads/*", "issuer": GHA}, "ref refs/tags/v0.1.2"),
    ({"identity": WHEEL_SIGNER, "issuer": GHA, "trusted_root": str(SHARED / "trust" / "staging.trusted_root.json")},
     "does not verify against the trust root .*staging"),
])
def test_release_wheel_is_rejected_for_another_signer_or_root(wheel: Path, policy: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureRejected, match=reason):
        check(wheel, BUNDLE, **policy)


def test_release_wheel_with_one_byte_flipped_is_rejected(wheel: Path, tmp_path: Path) -> None:
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = tmp_path / WHEEL
    flipped.write_bytes(bytes(data))
    with pytest.raises(ContentMismatch, match=f"expected sha256 {WHEEL_SHA256}, found sha256 "):
        check(flipped, BUNDLE, identity=WHEEL_SIGNER, issuer=GHA)


# -- PEP 740 provenance (an attestation is a DSSE bundle in another wrapping) -----------------------------

PROVENANCE = SHARED / "pep740" / "pypi_attestations-0.0.19.tar.gz.provenance"


@pytest.fixture(scope="module")
def provenance_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attestation rewrapped as the sigstore bundle it is (envelope, certificate, log entry)."""
    [attestation] = json.loads(PROVENANCE.read_text())["attestation_bundles"][0]["attestations"]
    material = attestation["verification_material"]
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": material["certificate"]},
                                 "tlogEntries": material["transparency_entries"]},
        "dsseEnvelope": {"payload": attestation["envelope"]["statement"],
                         "payloadType": "application/vnd.in-toto+json",
                         "signatures": [{"sig": attestation["envelope"]["signature"]}]},
    }
    path = tmp_path_factory.mktemp("pep740") / "provenance.sigstore.json"
    path.write_text(json.dumps(bundle))
    assert base64.b64decode(attestation["envelope"]["statement"])
    return path


PUBLISHER = {"repository": "trailofbits/pypi-attestations", "workflow": "release.yml", "issuer": GHA}


def test_pep740_provenance_verifies_for_its_trusted_publisher(provenance_bundle: Path) -> None:
    sdist = fetch(SDIST[0], SDIST[1], SDIST[2], sdist=True)
    result = check(sdist, provenance_bundle, **PUBLISHER)
    assert result.digest == SDIST[2]


def test_pep740_provenance_of_another_publisher_is_rejected(provenance_bundle: Path) -> None:
    sdist = fetch(SDIST[0], SDIST[1], SDIST[2], sdist=True)
    with pytest.raises(SignatureRejected, match="found .*repository https://github.com/trailofbits/pypi-attestations"):
        check(sdist, provenance_bundle, **{**PUBLISHER, "repository": "trailofbits/rfc8785.py"})


def test_pep740_provenance_for_another_distribution_is_rejected(provenance_bundle: Path) -> None:
    other = fetch(OTHER_SDIST[0], OTHER_SDIST[1], OTHER_SDIST[2], sdist=True)
    with pytest.raises(ContentMismatch, match=f"expected sha256 {SDIST[2]}, found sha256 {OTHER_SDIST[2]}"):
        check(other, provenance_bundle, **PUBLISHER)
