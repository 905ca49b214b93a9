"""Provenance of npx/uvx servers: the registry's attestation, checked against the profile's signer policy.

The registries are a loopback server this suite runs (tests/trust/registry.py), holding packages the test
packs and attestations minted by the suite's private Sigstore instance, so that each answer a real registry
or mirror gives can be produced: attested by the expected publisher, by another one, for another file; a
package published without provenance; a mirror that strips it. npm and pip install from it for real, in
mcpbox's installer sandbox. PyPI's own PEP 740 provenance of a real release is checked as well.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import minting
from registry import Registry, npm_integrity, pep740_attestation, statement
from trustkit import MCPBOX, RELEASE, SHARED, audit_lines, other_root, test_root  # noqa: F401 (fixtures)
from mcpbox import cli
from mcpbox import profile as profiles
from mcpbox.store import commands, pins, provenance
from mcpbox.store.spec import parse
from mcpbox.trust.errors import ContentMismatch, ProvenanceMissing, SignatureRejected

NAME, VERSION = "attested-server", "1.0.0"
SLSA = "https://slsa.dev/provenance/v1"
PYPI_PUBLISH = "https://docs.pypi.org/attestations/publish/v1"
GHA = minting.GHA
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bwrap")
needs_npm = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("bwrap") is None,
                               reason="needs npm and bwrap")


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry()
    yield served
    served.close()


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """`npm pack` of a package whose one bin says it started, on stderr."""
    source = tmp_path_factory.mktemp("src") / NAME
    source.mkdir()
    (source / "package.json").write_text(json.dumps({"name": NAME, "version": VERSION, "bin": {NAME: "index.js"}}))
    (source / "index.js").write_text(f"#!/usr/bin/env node\nconsole.error('{NAME} started')\n")
    (source / "index.js").chmod(0o755)
    out = source.parent / "out"
    out.mkdir()
    subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(out), str(source)], check=True,
                   capture_output=True)
    return (out / f"{NAME}-{VERSION}.tgz").read_bytes()


def publish_npm(registry: Registry, tarball: bytes, *, bundle: bytes | None, signed: bool = True) -> None:
    """The version as npm's registry serves it: `dist.signatures` when the registry signs its packages (npm's
    does, a stripping mirror does not), `dist.attestations` when the version has provenance."""
    dist: dict[str, object] = {"tarball": f"{registry.url}/{NAME}/-/{NAME}-{VERSION}.tgz",
                               "integrity": npm_integrity(tarball), "shasum": hashlib.sha1(tarball).hexdigest()}
    if signed:
        dist["signatures"] = [{"keyid": "SHA256:test", "sig": "MEUCIQ=="}]
    if bundle is not None:
        dist["attestations"] = {"url": f"{registry.url}/-/npm/v1/attestations/{NAME}@{VERSION}",
                                "provenance": {"predicateType": SLSA}}
        registry.json(f"/-/npm/v1/attestations/{NAME}@{VERSION}",
                      {"attestations": [{"predicateType": SLSA, "bundle": json.loads(bundle)}]})
    version = {"name": NAME, "version": VERSION, "bin": {NAME: "index.js"}, "dist": dist}
    registry.json(f"/{NAME}", {"name": NAME, "dist-tags": {"latest": VERSION}, "versions": {VERSION: version}})
    registry.json(f"/{NAME}/{VERSION}", version)
    registry.file(f"/{NAME}/-/{NAME}-{VERSION}.tgz", tarball)


def npm_bundle(root: minting.TestRoot, tarball: bytes, signer: minting.Signer = RELEASE) -> bytes:
    digest = hashlib.sha512(tarball).hexdigest()
    return root.sign_statement(statement(f"pkg:npm/{NAME}@{VERSION}", "sha512", digest, SLSA), signer)


def policy(root: minting.TestRoot, kind: str = "required", repository: str = "acme/weather-mcp") -> profiles.Verify:
    return profiles.Verify(repository=repository, workflow="release.yml", ref="refs/tags/*", issuer=GHA,
                           trusted_root=str(root.path), provenance=kind)  # type: ignore[arg-type]


def write_policy(path: Path, verify: profiles.Verify) -> Path:
    fields = {key: value for key, value in verify._asdict().items() if value is not None}
    path.write_text("[verify]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in fields.items()))
    return path


# the judgement, on real and minted attestations ------------------------------------------------------------

def test_pypi_pep740_provenance_of_a_real_release_verifies_for_its_publisher_only() -> None:
    data = SHARED / "pep740" / "pypi_attestations-0.0.19.tar.gz.provenance"
    if not data.exists():
        pytest.skip(f"the public Sigstore test data is not at {SHARED}")
    document = json.loads(data.read_text())
    bundles = tuple(provenance.pep740_bundle(attestation) for group in document["attestation_bundles"]
                    for attestation in group["attestations"])
    offer = provenance.Offer("attested", "https://pypi.org/simple/", bundles, "pypi_attestations-0.0.19.tar.gz",
                             "sha256", "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3")
    verify = profiles.Verify(repository="trailofbits/pypi-attestations", workflow="release.yml", issuer=GHA,
                             provenance="required")
    outcome = provenance.check(verify, offer, "pypi-attestations==0.0.19")
    assert outcome.kind == "attested"
    assert outcome.detail.startswith("https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml"
                                     "@refs/tags/v0.0.19 (logged 2024-")
    with pytest.raises(SignatureRejected, match="expected repository https://github.com/acme/other"):
        provenance.check(verify._replace(repository="acme/other"), offer, "pypi-attestations==0.0.19")
    other = "c9709ce6fd5b67b59b4a28758cf14d3f411803c4b89b6068b1f1a8e4ee94c8ef"  # another distribution's sha256
    with pytest.raises(ContentMismatch, match="signs another file than the one mcpbox pinned"):
        provenance.check(verify, offer._replace(digest=other), "pypi-attestations==0.0.19")


def test_npm_answers_are_told_apart_attested_none_and_stripped(registry: Registry, tarball: bytes,
                                                               test_root: minting.TestRoot) -> None:
    integrity = npm_integrity(tarball)
    publish_npm(registry, tarball, bundle=npm_bundle(test_root, tarball))
    attested = provenance.npm_offer(registry.url, NAME, VERSION, integrity)
    assert attested.kind == "attested" and len(attested.bundles) == 1
    assert provenance.check(policy(test_root), attested, f"{NAME}@{VERSION}").detail.startswith(RELEASE.identity)

    publish_npm(registry, tarball, bundle=None)
    none = provenance.npm_offer(registry.url, NAME, VERSION, integrity)
    publish_npm(registry, tarball, bundle=None, signed=False)
    stripped = provenance.npm_offer(registry.url, NAME, VERSION, integrity)
    assert (none.kind, stripped.kind) == ("none", "unoffered")
    with pytest.raises(ProvenanceMissing, match=f"{NAME}@{VERSION} was published without provenance"):
        provenance.check(policy(test_root), none, f"{NAME}@{VERSION}")
    with pytest.raises(ProvenanceMissing, match="offers no provenance \\(a mirror or proxy that strips it\\?\\)"):
        provenance.check(policy(test_root), stripped, f"{NAME}@{VERSION}")
    lenient = policy(test_root, "if-present")
    assert provenance.check(lenient, none, "p").kind == "none"
    assert provenance.check(lenient, stripped, "p").kind == "unoffered"


def test_an_attestation_of_another_file_or_signer_is_refused_even_if_present_is_all_that_is_asked(
        registry: Registry, tarball: bytes, test_root: minting.TestRoot, other_root: minting.TestRoot) -> None:
    integrity = npm_integrity(tarball)
    lenient = policy(test_root, "if-present")
    publish_npm(registry, tarball, bundle=npm_bundle(test_root, tarball + b"changed"))
    with pytest.raises(ContentMismatch, match=f"expected pkg:npm/{NAME}@{VERSION} sha512"):
        provenance.check(lenient, provenance.npm_offer(registry.url, NAME, VERSION, integrity), "p")
    publish_npm(registry, tarball, bundle=npm_bundle(test_root, tarball, minting.Signer.github("evil/fork", "refs/tags/v1")))
    with pytest.raises(SignatureRejected, match="found identity https://github.com/evil/fork/"):
        provenance.check(lenient, provenance.npm_offer(registry.url, NAME, VERSION, integrity), "p")
    publish_npm(registry, tarball, bundle=npm_bundle(other_root, tarball))
    with pytest.raises(SignatureRejected, match="does not verify against the trust root"):
        provenance.check(lenient, provenance.npm_offer(registry.url, NAME, VERSION, integrity), "p")


def test_pypi_answers_are_told_apart_attested_null_and_absent(registry: Registry,
                                                              test_root: minting.TestRoot) -> None:
    wheel = b"not really a wheel: only its digest matters here"
    sha256 = hashlib.sha256(wheel).hexdigest()
    filename = "attested_tool-1.0.0-py3-none-any.whl"
    bundle = test_root.sign_statement(statement(filename, "sha256", sha256, PYPI_PUBLISH), RELEASE)
    registry.json("/integrity/attested-tool/1.0.0/provenance",
                  {"version": 1, "attestation_bundles": [{"publisher": {"kind": "GitHub"},
                                                          "attestations": [pep740_attestation(bundle)]}]})
    for provenance_key, kind in (({"provenance": f"{registry.url}/integrity/attested-tool/1.0.0/provenance"},
                                  "attested"), ({"provenance": None}, "none"), ({}, "unoffered")):
        registry.json("/simple/attested-tool/", {"meta": {"api-version": "1.3"}, "name": "attested-tool", "files": [
            {"filename": filename, "url": f"/{filename}", "hashes": {"sha256": sha256}, **provenance_key}]},
            provenance.PYPI_JSON)
        offer = provenance.pypi_offer(f"{registry.url}/simple/", "attested-tool", sha256)
        assert offer.kind == kind
        assert len(offer.bundles) == (kind == "attested")
    lenient = policy(test_root, "if-present")
    assert provenance.check(lenient, offer, "attested-tool==1.0.0").kind == "unoffered"
    registry.json("/simple/attested-tool/", {"name": "attested-tool", "files": [
        {"filename": filename, "url": f"/{filename}", "hashes": {"sha256": sha256},
         "provenance": f"{registry.url}/integrity/attested-tool/1.0.0/provenance"}]}, provenance.PYPI_JSON)
    attested = provenance.pypi_offer(f"{registry.url}/simple/", "attested-tool", sha256)
    assert provenance.check(policy(test_root), attested, "attested-tool==1.0.0").detail.startswith(RELEASE.identity)


# end to end: npm and pip install from the loopback registry, in the installer sandbox ---------------------

@needs_npm
def test_a_required_provenance_pins_the_verified_outcome_and_later_runs_need_no_registry(
        registry: Registry, tarball: bytes, test_root: minting.TestRoot, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("npm_config_registry", registry.url + "/")
    publish_npm(registry, tarball, bundle=npm_bundle(test_root, tarball))
    path = write_policy(tmp_path / "attested.toml", policy(test_root))
    loaded = profiles.load(str(path))
    spec = parse(["npx", "-y", NAME])
    said: list[str] = []
    entry = commands.ensure(loaded.path, spec, said.append, "(first run)", loaded.profile)
    assert entry.version == VERSION and entry.integrity == npm_integrity(tarball)
    assert said[-1].startswith(f"mcpbox: {NAME}@{VERSION}: provenance verified, built by {RELEASE.identity}")
    pin = pins.get(loaded.path, spec)
    assert pin is not None and pin.provenance is not None and pin.provenance["kind"] == "attested"
    (line,) = audit_lines("provenance")
    assert (line["decision"], line["found"], line["package"]) == ("allow", "attested", f"{NAME}@{VERSION}")
    capsys.readouterr()
    assert cli.main(["verify", "--profile", str(path)]) == 0, "mcpbox verify checks the pinned package afresh"
    assert f"{NAME}@{VERSION}: provenance verified" in capsys.readouterr().out
    registry.close()
    said.clear()
    assert commands.ensure(loaded.path, spec, said.append, "(first run)", loaded.profile) == entry
    assert said == [] and len(audit_lines("provenance")) == 2, "the pinned outcome answers: no registry asked"


@needs_npm
@pytest.mark.parametrize(("served", "kind", "status", "said"), [
    ("another signer", "if-present", 124, "is not signed by the expected signer"),
    ("none", "required", 124, f"{NAME}@{VERSION} was published without provenance"),
    ("stripped", "required", 124, "offers no provenance (a mirror or proxy that strips it?)"),
    ("stripped", "if-present", 0, "offers no provenance (a mirror or proxy that strips it?)"),
])
def test_mcpbox_run_refuses_or_runs_by_what_the_registry_says(
        served: str, kind: str, status: int, said: str, registry: Registry, tarball: bytes,
        test_root: minting.TestRoot, tmp_path: Path) -> None:
    bundle = npm_bundle(test_root, tarball, minting.Signer.github("evil/fork", "refs/tags/v1")) \
        if served == "another signer" else None
    publish_npm(registry, tarball, bundle=bundle, signed=served != "stripped")
    path = write_policy(tmp_path / "p.toml", policy(test_root, kind))
    run = subprocess.run([*MCPBOX, "run", "--profile", str(path), "--", "npx", "-y", NAME], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, npm_config_registry=registry.url + "/"))
    assert run.returncode == status, run.stderr
    assert said in run.stderr and "Traceback" not in run.stderr
    assert (f"[server] {NAME} started" in run.stderr.splitlines()) == (status == 0)
    (line,) = audit_lines("provenance")
    assert line["decision"] == ("allow" if status == 0 else "deny")


def wheel(name: str, version: str) -> tuple[str, bytes]:
    """A pure-Python wheel with one console script that says it started (built by hand: no build backend)."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {f"{module}/__init__.py": f"def main():\n    import sys\n    print('{name} started', file=sys.stderr)\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mcpbox-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{info}/entry_points.txt": f"[console_scripts]\n{name} = {module}:main\n"}
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(path, text)
    return f"{module}-{version}-py3-none-any.whl", buffer.getvalue()


@needs_bwrap
def test_a_uvx_server_from_an_index_with_pep740_provenance_is_installed_verified_and_pinned(
        registry: Registry, test_root: minting.TestRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    filename, data = wheel("attested-tool", "1.0.0")
    sha256 = hashlib.sha256(data).hexdigest()
    bundle = test_root.sign_statement(statement(filename, "sha256", sha256, PYPI_PUBLISH), RELEASE)
    registry.file(f"/files/{filename}", data)
    registry.json("/integrity/attested-tool/1.0.0/provenance",
                  {"version": 1, "attestation_bundles": [{"publisher": {"kind": "GitHub"},
                                                          "attestations": [pep740_attestation(bundle)]}]})
    registry.json("/simple/attested-tool/", {"meta": {"api-version": "1.3"}, "name": "attested-tool", "files": [
        {"filename": filename, "url": f"{registry.url}/files/{filename}", "hashes": {"sha256": sha256},
         "provenance": f"{registry.url}/integrity/attested-tool/1.0.0/provenance"}]}, provenance.PYPI_JSON)
    monkeypatch.setenv("PIP_INDEX_URL", f"{registry.url}/simple/")
    path = write_policy(tmp_path / "tool.toml", policy(test_root))
    loaded = profiles.load(str(path))
    said: list[str] = []
    entry = commands.ensure(loaded.path, parse(["uvx", "attested-tool"]), said.append, "(first run)", loaded.profile)
    assert (entry.version, entry.integrity) == ("1.0.0", f"sha256:{sha256}")
    assert said[-1].startswith(f"mcpbox: attested-tool@1.0.0: provenance verified, built by {RELEASE.identity}")
    run = subprocess.run([entry.executable(None)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "attested-tool started" in run.stderr, "the installed wheel is what runs"


def test_a_provenance_policy_is_explained_and_refused_for_a_command_that_is_no_package(
        test_root: minting.TestRoot, tmp_path: Path) -> None:
    path = write_policy(tmp_path / "p.toml", policy(test_root, "if-present"))
    check = subprocess.run([*MCPBOX, "check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert ("signature:   an npx/uvx server's package (not its dependencies) is checked when its registry "
            "publishes it; it must have provenance built by any release of acme/weather-mcp") in check.stdout
    run = subprocess.run([*MCPBOX, "run", "--profile", str(path), "--", "/bin/true"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "[verify] provenance applies to npx/uvx servers (a package from a registry), not to /bin/true" in run.stderr
