"""Whose signature counts: the profile's identity policy as a sigstore verification policy.

sigstore-python's `Identity` matches one exact certificate SAN. A profile may
instead trust every release of a repository ("https://github.com/ORG/REPO",
ref `refs/tags/*`, optionally one workflow), which needs a policy of its own:
any object whose `verify(cert)` raises sigstore's `VerificationError`. Both
forms are one class here so that a mismatch always says what was expected and
what the certificate holds. sigstore calls `verify` only after the certificate
chain and its SCT have been checked, so the claims read here are authentic.
"""

import fnmatch
from typing import NamedTuple

from cryptography import x509
from sigstore.errors import VerificationError

from mcpbox.profile import Verify

FULCIO = "1.3.6.1.4.1.57264.1."
ISSUER_V1, ISSUER_V2 = FULCIO + "1", FULCIO + "8"
LEGACY_REPOSITORY, LEGACY_REF = FULCIO + "5", FULCIO + "6"  # GitHub-only, raw strings ("ORG/REPO")
SOURCE_REPOSITORY, SOURCE_REF = FULCIO + "12", FULCIO + "14"  # DER UTF8String, any forge
BUILD_CONFIG = FULCIO + "18"  # the top-level workflow: https://github.com/ORG/REPO/.github/workflows/X@REF
OTHERNAME_SAN = x509.ObjectIdentifier(FULCIO + "7")
GITHUB = "https://github.com/"


class Signer(NamedTuple):
    """What a Fulcio certificate says about who signed."""

    identity: str  # the SAN: a workflow URI or an e-mail address
    issuer: str
    repository: str | None
    ref: str | None
    workflow: str | None  # the workflow file's path in its repository

    def describe(self) -> str:
        parts = [f"identity {self.identity}", f"issuer {self.issuer}"]
        if self.repository:
            parts.append(f"repository {self.repository}")
        if self.ref:
            parts.append(f"ref {self.ref}")
        return ", ".join(parts)


class PolicyMismatch(VerificationError):
    """A valid certificate of someone other than the profile's signer."""

    def __init__(self, expected: str, found: Signer) -> None:
        super().__init__(f"expected {expected}; found {found.describe()}")
        self.expected = expected
        self.found = found


def repository_url(repository: str) -> str:
    """ORG/REPO is short for https://github.com/ORG/REPO."""
    return repository if repository.startswith("https://") else GITHUB + repository


def workflow_path(workflow: str) -> str:
    """release.yml is short for .github/workflows/release.yml."""
    return workflow if "/" in workflow else ".github/workflows/" + workflow


def expected_text(verify: Verify) -> str:
    if verify.identity is not None:
        return f"identity {verify.identity}, issuer {verify.issuer}"
    text = f"repository {repository_url(verify.repository or '')}"
    if verify.workflow:
        text += f", workflow {workflow_path(verify.workflow)}"
    if verify.ref:
        text += f", ref {verify.ref}"
    return text + f", issuer {verify.issuer}"


class SignerPolicy:
    """The profile's [verify] identity policy, in sigstore's VerificationPolicy shape."""

    def __init__(self, verify: Verify) -> None:
        self._verify = verify

    def verify(self, cert: x509.Certificate) -> None:
        found = signer_of(cert)
        if not matches(self._verify, cert, found):
            raise PolicyMismatch(expected_text(self._verify), found)


def matches(verify: Verify, cert: x509.Certificate, found: Signer) -> bool:
    issuers = [value for value in (_claim(cert, ISSUER_V2, der=True), _claim(cert, ISSUER_V1, der=False))
               if value is not None]
    if not issuers or any(issuer != verify.issuer for issuer in issuers):
        return False
    if verify.identity is not None:
        return verify.identity in _sans(cert)
    if found.repository != repository_url(verify.repository or ""):
        return False
    if verify.ref is not None and (found.ref is None or not fnmatch.fnmatchcase(found.ref, verify.ref)):
        return False
    if verify.workflow is not None:
        return found.workflow == workflow_path(verify.workflow)
    return True


def signer_of(cert: x509.Certificate) -> Signer:
    """Read the signer's claims (for matching and for messages), whatever policy applies."""
    sans = _sans(cert)
    issuer = _claim(cert, ISSUER_V2, der=True) or _claim(cert, ISSUER_V1, der=False) or "(none)"
    repository = _claim(cert, SOURCE_REPOSITORY, der=True)
    if repository is None:
        legacy = _claim(cert, LEGACY_REPOSITORY, der=False)
        repository = GITHUB + legacy if legacy else None
    ref = _claim(cert, SOURCE_REF, der=True) or _claim(cert, LEGACY_REF, der=False)
    build = _claim(cert, BUILD_CONFIG, der=True) or (sans[0] if sans else "")
    workflow = None
    if repository and build.startswith(repository + "/"):
        workflow = build[len(repository) + 1:].partition("@")[0]
    return Signer(sans[0] if sans else "(none)", issuer, repository, ref, workflow)


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    values: list[str] = [*names.get_values_for_type(x509.UniformResourceIdentifier),
                         *names.get_values_for_type(x509.RFC822Name)]
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id == OTHERNAME_SAN:
            values.append(_der_string(other.value) or other.value.decode(errors="replace"))
    return values


def _claim(cert: x509.Certificate, oid: str, *, der: bool) -> str | None:
    """A Fulcio claim: raw text (the first extensions) or a DER UTF8String (the later ones)."""
    try:
        value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return None
    raw = getattr(value, "value", b"")
    if der:
        return _der_string(raw)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _der_string(raw: bytes) -> str | None:
    """A DER UTF8String (tag 0x0c) with a short or long length; None if it is anything else."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    length, offset = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(raw[2:2 + count], "big"), 2 + count
    if offset + length != len(raw):
        return None
    try:
        return raw[offset:].decode()
    except UnicodeDecodeError:
        return None
