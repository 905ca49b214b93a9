"""What a signed statement says a tree (or a file) holds: path -> sha256, and what it leaves out.

Two statement shapes are accepted, both in-toto statements inside a DSSE
envelope:

- an in-toto Statement (v1 or v0.1) whose subjects are the tree's files, each
  named by its POSIX path relative to the tree's root, with a sha256 digest;
- the `model_signing` tool's `https://model_signing/signature/v1.0` predicate:
  its `resources` list the files and `serialization.ignore_paths` names paths
  (files or whole directories) the publisher chose to leave out.

A tree matches only if its files are exactly the listed ones: a missing, a
changed and an extra file each fail it (an injected `sitecustomize.py` must).
Ignored paths are neither compared nor staged, so they never run. Pure
functions: no I/O, no sigstore.
"""

import json
import re
from typing import Any, NamedTuple

from mcpbox.trust.errors import BundleError, ContentMismatch

IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
MODEL_SIGNING = "https://model_signing/signature/v1.0"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Manifest(NamedTuple):
    files: dict[str, str]  # relative POSIX path -> sha256 (hex)
    ignored: tuple[str, ...]  # relative paths left out, with everything below them

    def ignores(self, path: str) -> bool:
        return any(path == entry or path.startswith(entry + "/") for entry in self.ignored)


def statement(payload_type: str, payload: bytes) -> dict[str, Any]:
    if payload_type != IN_TOTO_PAYLOAD:
        raise BundleError(f"the signed envelope holds {payload_type!r}, not an in-toto statement")
    try:
        document = json.loads(payload)
    except ValueError:
        raise BundleError("the signed in-toto statement is not valid JSON") from None
    if not isinstance(document, dict) or document.get("_type") not in STATEMENT_TYPES:
        raise BundleError("the signed payload is not an in-toto statement (its _type is "
                          f"{document.get('_type') if isinstance(document, dict) else None!r})")
    return document


def file_digests(document: dict[str, Any]) -> set[str]:
    """The sha256 a statement signs for a single file: a subject's, or model_signing's one resource."""
    if document.get("predicateType") == MODEL_SIGNING:
        files = _model_signing(document.get("predicate")).files
        if len(files) != 1:
            raise BundleError(f"the model_signing manifest lists {len(files)} files; a single-file artifact "
                              "needs a manifest of that one file")
        return set(files.values())
    return {digest.lower() for digest in map(_sha256_of, _subjects(document)) if isinstance(digest, str)}


def tree(document: dict[str, Any]) -> Manifest:
    """The files a signed statement lists for a directory tree."""
    if document.get("predicateType") == MODEL_SIGNING:
        return _model_signing(document.get("predicate"))
    files: dict[str, str] = {}
    for subject in _subjects(document):
        if not isinstance(subject, dict):
            raise BundleError("the signed statement has a subject that is not an object")
        _add(files, subject.get("name"), _sha256_of(subject))
    if not files:
        raise BundleError("the signed statement lists no files")
    return Manifest(files, ())


def _subjects(document: dict[str, Any]) -> list[Any]:
    subjects = document.get("subject")
    return subjects if isinstance(subjects, list) else []


def _sha256_of(subject: Any) -> Any:
    digest = subject.get("digest") if isinstance(subject, dict) else None
    return digest.get("sha256") if isinstance(digest, dict) else None


def _model_signing(predicate: Any) -> Manifest:
    if not isinstance(predicate, dict):
        raise BundleError("the model_signing predicate is not an object")
    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict):
        raise BundleError("the model_signing predicate has no serialization")
    method = serialization.get("method")
    if method != "files" or serialization.get("hash_type") != "sha256":
        raise BundleError(f"the model_signing manifest hashes by {method!r}/{serialization.get('hash_type')!r}; "
                          "mcpbox verifies whole files hashed with sha256 ('files', 'sha256')")
    files: dict[str, str] = {}
    resources = predicate.get("resources")
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict) or resource.get("algorithm") != "sha256":
            raise BundleError("the model_signing manifest has a resource that is not a sha256 file digest")
        _add(files, resource.get("name"), resource.get("digest"))
    ignored = []
    ignore_paths = serialization.get("ignore_paths") or []
    if not isinstance(ignore_paths, list):
        raise BundleError("the model_signing manifest's ignore_paths is not a list")
    for entry in ignore_paths:
        path = entry.strip("/") if isinstance(entry, str) else ""
        if not _safe(path):
            raise BundleError(f"the model_signing manifest ignores an unsafe path {entry!r}")
        ignored.append(path)
    if not files:
        raise BundleError("the signed statement lists no files")
    return Manifest(files, tuple(ignored))


def _add(files: dict[str, str], name: Any, digest: Any) -> None:
    if not isinstance(name, str) or not _safe(name):
        raise BundleError(f"the signed statement names an unsafe or non-relative path {name!r}")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest.lower()):
        raise BundleError(f"the signed statement has no sha256 digest for {name}")
    if name in files:
        raise BundleError(f"the signed statement lists {name} twice")
    files[name] = digest.lower()


def _safe(path: str) -> bool:
    """Relative, normalized, inside the tree: no '', '.', '..' components (so no leading '/', and not empty)."""
    return "\0" not in path and all(part not in ("", ".", "..") for part in path.split("/"))


def compare(manifest: Manifest, found: dict[str, str], artifact: str, signer: str) -> None:
    """The staged tree must hold exactly the listed files with the listed digests."""
    changed = sorted(p for p in manifest.files.keys() & found.keys() if manifest.files[p] != found[p])
    missing = sorted(manifest.files.keys() - found.keys())
    extra = sorted(found.keys() - manifest.files.keys())
    problems = [(f"{p} differs from what was signed (signed sha256 {manifest.files[p]}, found {found[p]})",
                 f"{p} sha256 {manifest.files[p]}", f"{p} sha256 {found[p]}") for p in changed]
    problems += [(f"{p} is missing (signed sha256 {manifest.files[p]})",
                  f"{p} sha256 {manifest.files[p]}", f"{p} missing") for p in missing]
    problems += [(f"{p} is an extra file that the signed manifest does not list (sha256 {found[p]})",
                  f"no {p}", f"{p} sha256 {found[p]}") for p in extra]
    if not problems:
        return
    what, expected, got = problems[0]
    more = f"; and {len(problems) - 1} more difference(s)" if len(problems) > 1 else ""
    raise ContentMismatch(f"{artifact} is not the tree {signer} signed: {what}{more}",
                          expected=expected, found=got)
