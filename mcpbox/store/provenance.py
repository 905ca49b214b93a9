"""Provenance of a store package: the registry's Sigstore attestation that it was built by the profile's signer.

npm publishes SLSA provenance for packages built on a CI with an OIDC identity (`npm publish --provenance`);
PyPI publishes PEP 740 attestations for trusted publishers. Either is a DSSE bundle whose in-toto statement
names the package file by its digest, so a verified attestation whose subject is the exact tarball or wheel
mcpbox pinned says which repository, workflow and ref built what runs. It is checked with the same signer
policy and trust root as `[verify]`, and only for the package the server names: its dependencies are pinned
by hash (the lockfile, `--require-hashes`) but not attested.

Three answers are kept apart because they call for different actions:
- attested: the registry has attestations for the package; every one must verify, and name the file;
- none: the registry offers provenance, and this package has none (npm: the registry signs its packages but
  this version carries no `dist.attestations`; PyPI: the index's file entry says `"provenance": null`);
- unoffered: the registry offers no provenance at all (a mirror or proxy that strips it): nothing is known
  about the package, and a user behind such a mirror must be told so rather than that the package has none.

The outcome is recorded in the server's pin with the policy it answered, so later runs read it offline.
"""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple

from mcpbox.profile import Verify
from mcpbox.trust.errors import BundleError, ContentMismatch, ProvenanceMissing, ProvenanceUnavailable

NPM_PROVENANCE = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")
PYPI_JSON = "application/vnd.pypi.simple.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
NPM_DEFAULT = "https://registry.npmjs.org/"
PYPI_DEFAULT = "https://pypi.org/simple/"
TIMEOUT = 30.0


class Offer(NamedTuple):
    """What a registry holds about one package file's provenance."""

    kind: str  # "attested", "none" or "unoffered"
    registry: str  # where it was asked, for messages
    bundles: tuple[bytes, ...] = ()  # Sigstore bundles (JSON) of every attestation
    subject: str = ""  # the in-toto subject name that must be signed
    algorithm: str = ""  # "sha512" (npm) or "sha256" (PyPI)
    digest: str = ""  # hex: the pinned package file's digest


class Outcome(NamedTuple):
    """What a check found; recorded in the pin beside the policy it answered."""

    kind: str  # "attested", "none" or "unoffered"
    detail: str  # the signer, or why there is nothing

    def record(self, verify: Verify) -> dict[str, str]:
        return {"policy": policy_key(verify), "kind": self.kind, "detail": self.detail}


def policy_key(verify: Verify) -> str:
    return repr(tuple(verify))


def holds(record: dict[str, str] | None, verify: Verify) -> bool:
    """A pin's earlier outcome answers this policy: the same policy, and an outcome it accepts."""
    if not record or record.get("policy") != policy_key(verify):
        return False
    return record.get("kind") == "attested" or verify.provenance == "if-present"


def check(verify: Verify, offer: Offer, package: str) -> Outcome:
    """Judge a registry's offer under the profile's policy (no I/O but sigstore's own verification)."""
    if offer.kind != "attested":
        reason = (f"{package} was published without provenance ({offer.registry} has none for it)"
                  if offer.kind == "none" else
                  f"{offer.registry} offers no provenance (a mirror or proxy that strips it?), so {package}'s "
                  "cannot be checked")
        if verify.provenance == "required":
            raise ProvenanceMissing(f"{reason}; [verify] provenance = \"required\" refuses it (use a registry "
                                    "that serves provenance, or set provenance = \"if-present\")",
                                    expected="provenance", found=offer.kind)
        return Outcome(offer.kind, reason)
    signers = {_verified_signer(verify, offer, bundle, package) for bundle in offer.bundles}
    return Outcome("attested", "; ".join(sorted(signers)))


def _verified_signer(verify: Verify, offer: Offer, bundle: bytes, package: str) -> str:
    from mcpbox.trust import manifest, signature
    from mcpbox.trust import root as trust_root

    root_path = trust_root.path_for(verify.trusted_root)
    root, _ = trust_root.read(root_path)
    verdict = signature.check(verify, package, f"the provenance of {package} on {offer.registry}", bundle,
                              root_path, root)
    if verdict.payload is None or verdict.payload_type is None:
        raise BundleError(f"the provenance of {package} on {offer.registry} is not a signed in-toto statement")
    statement = manifest.statement(verdict.payload_type, verdict.payload)
    named = [subject.get("digest", {}).get(offer.algorithm, "").lower()
             for subject in statement.get("subject") or [] if isinstance(subject, dict)
             and subject.get("name") == offer.subject and isinstance(subject.get("digest"), dict)]
    if offer.digest not in named:
        found = ", ".join(named) or "no subject of that name"
        raise ContentMismatch(f"the provenance of {package} on {offer.registry} signs another file than the one "
                              f"mcpbox pinned: expected {offer.subject} {offer.algorithm} {offer.digest}, found "
                              f"{found}", expected=f"{offer.algorithm} {offer.digest}", found=found)
    return f"{verdict.identity} (logged {verdict.log_time})"


def offer_for(ecosystem: str, package: str, version: str, integrity: str) -> Offer:
    """Ask the registry the installer used (the user's npm registry or pip indexes) about the pinned file."""
    from mcpbox.store import install

    if ecosystem == "npm":
        return npm_offer(install.npm_registry() or NPM_DEFAULT, package, version, integrity)
    options, _ = install.pip_index()
    indexes = [value for option, value in zip(options, options[1:], strict=False)
               if option in ("--index-url", "--extra-index-url")]
    if "--index-url" not in options:
        indexes.insert(0, PYPI_DEFAULT)
    sha256 = integrity.removeprefix("sha256:")
    missing: ProvenanceUnavailable | None = None
    for index in indexes:
        try:
            return pypi_offer(index, package, sha256)
        except ProvenanceUnavailable as error:
            missing = error
    assert missing is not None
    raise missing


# npm ------------------------------------------------------------------------------------------------------

def npm_offer(registry: str, name: str, version: str, integrity: str) -> Offer:
    """The registry's version document says whether this version is attested (`dist.attestations`) and
    whether the registry signs its packages at all (`dist.signatures`, which npm's registry adds to every
    version and mirrors that rewrite `dist` drop)."""
    base = registry.rstrip("/") + "/"
    document = _get_json(base + name.replace("/", "%2f") + "/" + urllib.parse.quote(version), "application/json")
    if document is None:
        raise ProvenanceUnavailable(f"{registry} has no {name}@{version} to ask about its provenance")
    dist = document.get("dist") if isinstance(document.get("dist"), dict) else {}
    algorithm, _, encoded = integrity.partition("-")
    digest = base64.b64decode(encoded).hex() if algorithm == "sha512" else ""
    subject = "pkg:npm/" + name.replace("@", "%40", 1) + "@" + version
    attestations = dist.get("attestations")
    if not isinstance(attestations, dict):
        kind = "none" if dist.get("signatures") else "unoffered"
        return Offer(kind, registry, subject=subject, algorithm="sha512", digest=digest)
    url = attestations.get("url") or f"{base}-/npm/v1/attestations/{name.replace('/', '%2f')}@{version}"
    listed = _get_json(url, "application/json")
    bundles = tuple(json.dumps(item["bundle"]).encode()
                    for item in (listed or {}).get("attestations") or []
                    if isinstance(item, dict) and item.get("predicateType") in NPM_PROVENANCE
                    and isinstance(item.get("bundle"), dict))
    if not bundles:
        raise ProvenanceUnavailable(f"{registry} says {name}@{version} has provenance, but {url} holds none")
    return Offer("attested", registry, bundles, subject, "sha512", digest)


# PyPI -----------------------------------------------------------------------------------------------------

def pypi_offer(index: str, name: str, sha256: str) -> Offer:
    """The index's file entry (PEP 691 JSON) of the pinned wheel: `provenance` names its PEP 740 attestations,
    is null when the file has none, and is absent where the index does not implement PEP 740."""
    base = index.rstrip("/") + "/"
    project = _get_json(f"{base}{name}/", PYPI_JSON)
    if project is None:
        raise ProvenanceUnavailable(f"{index} has no project {name} to ask about its provenance")
    entry = next((item for item in project.get("files") or [] if isinstance(item, dict)
                  and (item.get("hashes") or {}).get("sha256") == sha256), None)
    if entry is None:
        raise ProvenanceUnavailable(f"{index} lists no file of {name} with the pinned sha256 {sha256}")
    filename = entry.get("filename", "")
    if "provenance" not in entry:
        return Offer("unoffered", index, subject=filename, algorithm="sha256", digest=sha256)
    if entry["provenance"] is None:
        return Offer("none", index, subject=filename, algorithm="sha256", digest=sha256)
    provenance = _get_json(urllib.parse.urljoin(base + name + "/", entry["provenance"]), "application/json")
    bundles = tuple(pep740_bundle(attestation)
                    for group in (provenance or {}).get("attestation_bundles") or []
                    for attestation in group.get("attestations") or [])
    if not bundles:
        raise ProvenanceUnavailable(f"{index} names provenance for {filename}, but it holds no attestation")
    return Offer("attested", index, bundles, filename, "sha256", sha256)


def pep740_bundle(attestation: dict[str, Any]) -> bytes:
    """A PEP 740 attestation as the Sigstore bundle it abbreviates: one DSSE envelope over an in-toto statement,
    its signing certificate and its transparency log entries."""
    try:
        material, envelope = attestation["verification_material"], attestation["envelope"]
        bundle = {"mediaType": BUNDLE_V03,
                  "verificationMaterial": {"certificate": {"rawBytes": material["certificate"]},
                                           "tlogEntries": material["transparency_entries"]},
                  "dsseEnvelope": {"payload": envelope["statement"], "payloadType": "application/vnd.in-toto+json",
                                   "signatures": [{"sig": envelope["signature"]}]}}
    except (KeyError, TypeError):
        raise BundleError("a PEP 740 attestation of the index lacks its certificate, log entries or envelope") \
            from None
    return json.dumps(bundle).encode()


def _get_json(url: str, accept: str) -> dict[str, Any] | None:
    """The JSON object at `url`; None when the registry says it has no such thing (404)."""
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "mcpbox"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code in (404, 410):
            return None
        raise ProvenanceUnavailable(f"cannot ask {url} for provenance: HTTP {error.code} {error.reason}") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise ProvenanceUnavailable(f"cannot ask {url} for provenance: {reason}") from None
    if not isinstance(document, dict):
        raise ProvenanceUnavailable(f"{url} answered something other than a JSON object")
    return document
