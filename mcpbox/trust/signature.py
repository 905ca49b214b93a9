"""Check a sigstore bundle with sigstore-python, offline, against a trust root and the profile's signer.

This is the only module that imports sigstore (0.3-0.6 s), and it runs only
when a bundle, policy or trust root is new to mcpbox. It establishes who
signed and what: for a `hashedrekord` bundle (`sigstore sign FILE`) the
sha256 of the signed file; for a DSSE bundle the in-toto statement. Comparing
that with the staged bytes is the caller's job, so that one verdict serves
every launch until the bundle changes.
"""

import base64
import datetime as dt
import json
import re
from typing import Any, NamedTuple

from mcpbox.profile import Verify
from mcpbox.trust.errors import BundleError, SignatureRejected, TrustRootError


class Verdict(NamedTuple):
    identity: str
    issuer: str
    log_time: str  # when the transparency log (or a timestamp authority) saw the signature, UTC
    digest: str | None  # hashedrekord: the sha256 of the signed file
    payload_type: str | None  # DSSE: the signed statement
    payload: bytes | None

    def to_json(self) -> bytes:
        data = self._asdict()
        data["payload"] = base64.b64encode(self.payload).decode() if self.payload is not None else None
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Verdict":
        data = json.loads(raw)
        if data["payload"] is not None:
            data["payload"] = base64.b64decode(data["payload"])
        return cls(**data)


def check(verify: Verify, artifact: str, bundle_path: str, bundle_bytes: bytes, root_path: str,
          root_data: bytes) -> Verdict:
    """Who signed what, if the bundle verifies against the root (as read by mcpbox.trust.root) and the policy."""
    import logging

    logging.getLogger("sigstore").setLevel(logging.ERROR)  # a failure is raised and said in one line; no chatter
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore_models.common.v1 import HashAlgorithm
    from sigstore_models.trustroot import v1 as trustroot_v1

    from mcpbox.trust.policy import PolicyMismatch, SignerPolicy, expected_text, signer_of

    try:
        document = json.loads(bundle_bytes)
        bundle = Bundle.from_json(bundle_bytes)
    except Exception as error:
        raise BundleError(f"{bundle_path} is not a sigstore bundle mcpbox can read: {_tidy(error)}") from None
    try:
        verifier = Verifier(trusted_root=TrustedRoot(trustroot_v1.TrustedRoot.from_json(root_data)))
    except Exception as error:
        raise TrustRootError(f"the trust root {root_path} is not a usable trusted_root.json: {_tidy(error)}") \
            from None
    signer = signer_of(bundle.signing_certificate)
    digest = None if "dsseEnvelope" in document else _signed_digest(document, bundle_path)
    payload_type = payload = None
    try:
        if digest is None:
            payload_type, payload = verifier.verify_dsse(bundle, SignerPolicy(verify))
        else:
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest))
            verifier.verify_artifact(hashed, bundle, SignerPolicy(verify))
    except PolicyMismatch as mismatch:
        raise SignatureRejected(f"{artifact} is not signed by the expected signer: {mismatch}",
                                expected=mismatch.expected, found=mismatch.found.describe()) from None
    except Exception as error:  # whatever sigstore raises on hostile input is a rejection, never a crash
        raise SignatureRejected(
            f"the signature in {bundle_path} does not verify against the trust root {root_path}: {_tidy(error)} "
            f"(its certificate names {signer.describe()})",
            expected=f"{expected_text(verify)}, trust root {root_path}", found=signer.describe()) from None
    return Verdict(signer.identity, signer.issuer, _log_time(document, bundle), digest, payload_type, payload)


def _signed_digest(document: dict[str, Any], bundle_path: str) -> str:
    signature = document.get("messageSignature") or {}
    recorded = signature.get("messageDigest") or {}
    if recorded.get("algorithm") != "SHA2_256" or not recorded.get("digest"):
        raise BundleError(f"{bundle_path} does not record the sha256 of the file it signs; "
                          "sign with sigstore-python or cosign --new-bundle-format")
    try:
        return base64.b64decode(recorded["digest"], validate=True).hex()
    except ValueError:
        raise BundleError(f"{bundle_path} records a malformed message digest") from None


def _log_time(document: dict[str, Any], bundle: Any) -> str:
    """The log's integrated time (Rekor v1), else the first signed timestamp (Rekor v2 + TSA)."""
    entries = document.get("verificationMaterial", {}).get("tlogEntries") or [{}]
    integrated = entries[0].get("integratedTime")
    when: dt.datetime | None = None
    if integrated and int(integrated):
        when = dt.datetime.fromtimestamp(int(integrated), tz=dt.timezone.utc)
    else:
        data = bundle.verification_material.timestamp_verification_data
        if data is not None and data.rfc3161_timestamps:
            when = data.rfc3161_timestamps[0].tst_info.gen_time
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else "unknown"


def _tidy(error: BaseException) -> str:
    """sigstore's message on one short line, without the byte dumps some of them carry."""
    text = " ".join(str(part) for part in error.args) if error.args else type(error).__name__
    text = re.sub(r": expected log_index=.*", "", text, flags=re.S)
    text = " ".join(text.split())
    return text if len(text) <= 240 else text[:237] + "..."
