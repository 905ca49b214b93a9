"""A private Sigstore instance for the tests: its own CA, Rekor and CT log keys, and bundles minted offline.

Everything sigstore-python checks is produced for real with the `cryptography`
package: a Fulcio-style leaf certificate (OIDC issuer extensions, SAN,
codeSigning, an embedded SCT signed by the test CT log), a Rekor v1
hashedrekord or dsse entry with an RFC 6962 inclusion proof, a signed
checkpoint and an inclusion promise, and a trusted_root.json naming those keys.
Nothing here is a mock: the verifier mcpbox ships accepts these bundles only
because every signature and proof in them holds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from pathlib import Path
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FULCIO = "1.3.6.1.4.1.57264.1."
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
GHA = "https://token.actions.githubusercontent.com"
SIGNED_AT = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)  # old on purpose: bundles keep verifying
CERT_LIFETIME = dt.timedelta(minutes=10)
IN_TOTO = "application/vnd.in-toto+json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def der_utf8(value: str) -> bytes:
    raw = value.encode()
    return b"\x0c" + _der_length(len(raw)) + raw


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


class Signer(NamedTuple):
    """Who the leaf certificate says signed: the SAN, the OIDC issuer and any GitHub claims."""

    identity: str
    issuer: str
    claims: dict[str, str] = {}  # Fulcio extension number ("12", "14", ...) -> value (DER UTF8String kind)

    @classmethod
    def github(cls, repository: str, ref: str, workflow: str = ".github/workflows/release.yml") -> Signer:
        """A GitHub Actions release workflow of `repository` ("ORG/REPO") at `ref`."""
        url = f"https://github.com/{repository}"
        signer_uri = f"{url}/{workflow}@{ref}"
        return cls(signer_uri, GHA, {
            "9": signer_uri,  # build signer URI
            "12": url,  # source repository URI
            "14": ref,  # source repository ref
            "18": signer_uri,  # build config URI
        })


class TestRoot:
    """One private Sigstore deployment: CA, Rekor log and CT log keys, and its trusted_root.json."""

    def __init__(self, name: str = "mcpbox-test") -> None:
        self.name = name
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-ca")])
        ca_public = self.ca_key.public_key()
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(ca_public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
            .not_valid_after(dt.datetime(2090, 1, 1, tzinfo=dt.timezone.utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_public), critical=False)
            .sign(self.ca_key, hashes.SHA384())
        )
        self.rekor_id = sha256(spki(self.rekor_key.public_key()))
        self.ct_id = sha256(spki(self.ct_key.public_key()))
        self.log_index = 1000  # entries already in the test log before ours
        self.path: Path | None = None  # its trusted_root.json, once written

    def write(self, directory: Path) -> Path:
        self.path = directory / f"{self.name}.trusted_root.json"
        self.path.write_bytes(self.trusted_root_json())
        return self.path

    def trusted_root(self) -> dict[str, Any]:
        def log(url: str, key: ec.EllipticCurvePrivateKey, key_id: bytes) -> dict[str, Any]:
            return {
                "baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(spki(key.public_key())), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": b64(key_id)},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(f"https://rekor.{self.name}.invalid", self.rekor_key, self.rekor_id)],
            "certificateAuthorities": [{
                "subject": {"organization": self.name, "commonName": f"{self.name}-ca"},
                "uri": f"https://fulcio.{self.name}.invalid",
                "certChain": {"certificates": [{"rawBytes": b64(self.ca_cert.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [log(f"https://ctfe.{self.name}.invalid", self.ct_key, self.ct_id)],
            "timestampAuthorities": [],
        }

    def trusted_root_json(self) -> bytes:
        return json.dumps(self.trusted_root(), indent=2).encode()

    # -- the certificate -------------------------------------------------------------------------

    def leaf(self, signer: Signer, not_before: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        if "@" in signer.identity and "://" not in signer.identity:
            san: x509.GeneralName = x509.RFC822Name(signer.identity)
        else:
            san = x509.UniformResourceIdentifier(signer.identity)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([])).issuer_name(self.ca_cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_before + CERT_LIFETIME)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO + "1"), signer.issuer.encode()),
                           critical=False)
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO + "8"), der_utf8(signer.issuer)),
                           critical=False)
        )
        for number, value in signer.claims.items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO + number), der_utf8(value)), critical=False)
        precert = builder.sign(self.ca_key, hashes.SHA384())
        sct = self._sct(precert.tbs_certificate_bytes, not_before)
        cert = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, sct), critical=False).sign(
            self.ca_key, hashes.SHA384())
        assert cert.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        return key, cert

    def _sct(self, tbs: bytes, when: dt.datetime) -> bytes:
        """An RFC 6962 precertificate SCT list from the test CT log, as the extension's DER value."""
        millis = int(when.timestamp() * 1000)
        issuer_key_hash = sha256(spki(self.ca_key.public_key()))
        signed = (struct.pack("!BBQH", 0, 0, millis, 1) + issuer_key_hash
                  + len(tbs).to_bytes(3, "big") + tbs + struct.pack("!H", 0))
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (b"\x00" + self.ct_id + struct.pack("!QH", millis, 0)
               + b"\x04\x03" + struct.pack("!H", len(signature)) + signature)
        sct_list = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        return b"\x04" + _der_length(len(sct_list)) + sct_list

    # -- the log ---------------------------------------------------------------------------------

    def _tlog_entry(self, kind: str, body: bytes, integrated: int) -> dict[str, Any]:
        """Our entry among others in a small RFC 6962 tree: inclusion proof, checkpoint, promise."""
        self.log_index += 1
        index, size = 5, 11  # our leaf's place in the checkpointed tree
        leaves = [sha256(b"\x00" + f"other entry {i}".encode()) for i in range(size)]
        leaves[index] = sha256(b"\x00" + body)
        root_hash = _tree_hash(leaves)
        proof = _inclusion_path(index, leaves)
        note = f"{self.name}-rekor - 42\n{size}\n{b64(root_hash)}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + f"\n\u2014 {self.name}-rekor {b64(self.rekor_id[:4] + note_signature)}\n"
        promise = json.dumps({
            "body": b64(body), "integratedTime": integrated, "logID": self.rekor_id.hex(),
            "logIndex": self.log_index,
        }, sort_keys=True, separators=(",", ":")).encode()  # RFC 8785 for these keys and values
        return {
            "logIndex": str(self.log_index),
            "logId": {"keyId": b64(self.rekor_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {"signedEntryTimestamp": b64(self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256())))},
            "inclusionProof": {
                "logIndex": str(index), "rootHash": b64(root_hash), "treeSize": str(size),
                "hashes": [b64(h) for h in proof], "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": b64(body),
        }

    # -- bundles ---------------------------------------------------------------------------------

    def sign_blob(self, content: bytes, signer: Signer, *, signed_at: dt.datetime = SIGNED_AT,
                  log_delay: dt.timedelta = dt.timedelta(seconds=5)) -> bytes:
        """A v0.3 bundle with a hashedrekord entry for `content` (what `sigstore sign FILE` makes)."""
        key, cert = self.leaf(signer, signed_at)
        signature = key.sign(content, ec.ECDSA(hashes.SHA256()))
        digest = sha256(content)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = _canonical({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {"data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                     "signature": {"content": b64(signature), "publicKey": {"content": b64(pem)}}},
        })
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self._tlog_entry("hashedrekord", body, int((signed_at + log_delay).timestamp()))],
            },
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
                                 "signature": b64(signature)},
        }
        return json.dumps(bundle, indent=2).encode()

    def sign_statement(self, statement: dict[str, Any], signer: Signer, *, signed_at: dt.datetime = SIGNED_AT,
                       log_delay: dt.timedelta = dt.timedelta(seconds=5)) -> bytes:
        """A v0.3 bundle with a DSSE envelope over an in-toto statement and its dsse log entry."""
        key, cert = self.leaf(signer, signed_at)
        payload = json.dumps(statement).encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(IN_TOTO), IN_TOTO.encode(), len(payload), payload)
        signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
        envelope = {"payload": b64(payload), "payloadType": IN_TOTO, "signatures": [{"sig": b64(signature)}]}
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = _canonical({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {"envelopeHash": {"algorithm": "sha256", "value": sha256(_canonical(envelope)).hex()},
                     "payloadHash": {"algorithm": "sha256", "value": sha256(payload).hex()},
                     "signatures": [{"signature": b64(signature), "verifier": b64(pem)}]},
        })
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self._tlog_entry("dsse", body, int((signed_at + log_delay).timestamp()))],
            },
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle, indent=2).encode()


def tree_statement(files: dict[str, bytes]) -> dict[str, Any]:
    """An in-toto statement naming every file of a tree by relative path and sha256."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": sha256(data).hex()}} for name, data in sorted(files.items())],
        "predicateType": "https://mcpbox.invalid/test-tree/v1",
        "predicate": {},
    }


def model_signing_statement(name: str, files: dict[str, bytes], ignore: list[str]) -> dict[str, Any]:
    """What the `model_signing` tool signs for a tree (predicate https://model_signing/signature/v1.0)."""
    resources = [{"name": path, "algorithm": "sha256", "digest": sha256(data).hex()}
                 for path, data in sorted(files.items())]
    whole = sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hex()
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": whole}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"resources": resources, "serialization": {
            "method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": ignore}},
    }


def corrupt_proof(bundle: bytes) -> bytes:
    """Flip one bit of one inclusion-proof hash (the Merkle path no longer reaches the root)."""
    data = json.loads(bundle)
    proof = data["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    first = bytearray(base64.b64decode(proof["hashes"][0]))
    first[0] ^= 1
    proof["hashes"][0] = b64(bytes(first))
    return json.dumps(data, indent=2).encode()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 6962, section 2.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_tree_hash(leaves[:k]), _tree_hash(leaves[k:]))


def _inclusion_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """The audit path of leaf m, lowest level first (RFC 6962, section 2.1.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return _inclusion_path(m, leaves[:k]) + [_tree_hash(leaves[k:])]
    return _inclusion_path(m - k, leaves[k:]) + [_tree_hash(leaves[:k])]
