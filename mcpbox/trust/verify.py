"""Verify before anything starts, and serve an unchanged, verified artifact from a cache in a few ms.

A launch whose artifact, bundle, policy and trust root are all as they were at
the last successful verification reuses it: the cache entry (mcpbox.cache:
stored next to its exact input, used only on a byte-for-byte match) is keyed
by the bundle's bytes, the policy, the trust root's bytes and the code that
decides, and holds the (device, inode, mode, size, mtime, ctime) of every
file and directory of the original as it was staged. Those are compared with
a fresh lstat of each; ctime cannot be set back by a user, so a changed,
added or removed file is noticed and the artifact is verified again. Nothing
heavy is imported on that path: no sigstore, no cryptography, no hashlib.

Otherwise the artifact is staged (mcpbox.trust.store) and its digests compared
with what the bundle signs; sigstore runs only when the bundle, policy or root
is new (a second cache holds its verdicts). Either way what runs is the staged
copy, bound read-only at the original path. Every decision is one audit line.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from typing import NamedTuple

from mcpbox import cache
from mcpbox.profile import Verify
from mcpbox.trust import root as trust_root
from mcpbox.trust.errors import ArtifactError, BundleError, CheckFailed, ContentMismatch, Unverified

STAT = struct.Struct("<QQIQqq")
CODE = tuple(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
             for name in ("verify.py", "signature.py", "policy.py", "manifest.py", "store.py", "root.py"))


class Verified(NamedTuple):
    artifact: str  # the original path: where the sandbox sees the staged copy
    staged: str  # the copy in mcpbox's store that runs
    kind: str  # "file" or "tree"
    digest: str  # sha256 of the file, or of the tree's listing
    files: int
    identity: str
    issuer: str
    log_time: str
    cached: bool  # served from an earlier verification of the unchanged artifact


def verified(verify: Verify, audit_path: str | None, *, fresh: bool = False) -> Verified:
    """The artifact staged and verified (or unchanged since it was); Unverified otherwise. Audited both ways."""
    artifact = os.path.normpath(os.path.expanduser(verify.artifact))
    try:
        result = _verified(verify, artifact, fresh)
    except Unverified as error:
        _audit(audit_path, decision="deny", artifact=artifact, bundle=verify.bundle, reason=str(error),
               expected=error.expected, found=error.found)
        raise
    _audit(audit_path, decision="allow", artifact=artifact, bundle=verify.bundle, identity=result.identity,
           issuer=result.issuer, sha256=result.digest, log_time=result.log_time, cached=result.cached)
    return result


def report(profile_name: str) -> int:
    """`mcpbox verify`: the check alone, always done afresh; status 1 and the reason when it fails."""
    from mcpbox import profile as profiles

    loaded = profiles.load(profile_name)
    if loaded.profile.verify is None:
        raise CheckFailed(f"profile {loaded.path} has no [verify] section: nothing to verify")
    try:
        result = verified(loaded.profile.verify, loaded.profile.audit.path, fresh=True)
    except Unverified as error:
        raise CheckFailed(str(error)) from None
    what = f"a tree of {result.files} files" if result.kind == "tree" else "a file"
    print(f"verified: {result.artifact} ({what})\n"
          f"signer:   {result.identity} (issuer {result.issuer})\n"
          f"logged:   {result.log_time}\n"
          f"sha256:   {result.digest}")
    return 0


def _verified(verify: Verify, artifact: str, fresh: bool) -> Verified:
    bundle_path = os.path.normpath(os.path.expanduser(verify.bundle))
    bundle = _read_bundle(bundle_path)
    root = trust_root.choose(verify.trusted_root)
    key = b"\0".join([b"mcpbox-verified-1", *map(cache.source_of, CODE),
                      json.dumps(verify._asdict(), sort_keys=True).encode(), os.fsencode(artifact),
                      root.data, bundle])
    if not fresh:
        served = _served(key)
        if served is not None:
            return served
    return _verify_new(verify, artifact, bundle_path, bundle, root, key, fresh)


def _served(key: bytes) -> Verified | None:
    """The earlier verification, if every watched path is exactly as it was and the staged copy is intact."""
    value = cache.read("verified", key)
    if value is None:
        return None
    header, _, identity = value.partition(b"\n")
    try:
        entry = json.loads(header)
        if _identity(entry["watched"]) != identity or not _intact(entry["staged"]):
            return None
        return Verified(**{**entry["result"], "cached": True})
    except (ValueError, KeyError, TypeError):
        return None


def _identity(watched: list[str]) -> bytes | None:
    try:
        return b"".join([_pack(os.lstat(path)) for path in watched])
    except OSError:
        return None


def _pack(info: os.stat_result) -> bytes:
    return STAT.pack(info.st_dev, info.st_ino, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _intact(staged: str) -> bool:
    """Still there, ours and read-only to others (the store is the user's, like the cache)."""
    try:
        info = os.lstat(staged)
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o222 and not stat.S_ISLNK(info.st_mode)


def _verify_new(verify: Verify, artifact: str, bundle_path: str, bundle: bytes, root: trust_root.TrustRoot,
                key: bytes, fresh: bool) -> Verified:
    from mcpbox.trust import manifest, signature, store

    kind = _kind(artifact)
    verdict_key = b"\0".join([b"mcpbox-signature-1", *map(cache.source_of, CODE),
                              json.dumps(verify._asdict(), sort_keys=True).encode(), root.data, bundle])
    cached = None if fresh else cache.read("signatures", verdict_key)
    verdict = None
    if cached is not None:
        try:
            verdict = signature.Verdict.from_json(cached)
        except (ValueError, KeyError, TypeError):
            verdict = None
    if verdict is None:
        verdict = signature.check(verify, artifact, bundle_path, bundle, root)
        cache.write("signatures", verdict_key, verdict.to_json())
    if kind == "tree":
        if verdict.payload is None or verdict.payload_type is None:
            raise BundleError(f"{artifact} is a directory, but {bundle_path} signs a single file; a tree needs a "
                              "DSSE bundle over an in-toto statement listing its files")
        listed = manifest.tree(manifest.statement(verdict.payload_type, verdict.payload))
        inside = os.path.relpath(bundle_path, artifact) if bundle_path.startswith(artifact + "/") else None
        staged = store.stage_tree(artifact, lambda rel: rel == inside or listed.ignores(rel))
        manifest.compare(listed, staged.files, artifact, verdict.identity)
    else:
        staged = store.stage_file(artifact)
        if verdict.payload is not None and verdict.payload_type is not None:
            signed = manifest.subject_digests(manifest.statement(verdict.payload_type, verdict.payload))
        else:
            signed = {verdict.digest or ""}
        if staged.digest not in signed:
            expected = " or ".join(sorted(signed)) or "(none)"
            raise ContentMismatch(f"{artifact} is not the file {verdict.identity} signed: expected sha256 "
                                  f"{expected}, found sha256 {staged.digest}",
                                  expected=f"sha256 {expected}", found=f"sha256 {staged.digest}")
    result = Verified(artifact, staged.path, kind, staged.digest, len(staged.files), verdict.identity,
                      verdict.issuer, verdict.log_time, cached=False)
    entry = {"staged": staged.path, "watched": [path for path, _ in staged.watched],
             "result": {k: v for k, v in result._asdict().items() if k != "cached"}}
    identity = b"".join(_pack(info) for _, info in staged.watched)
    cache.write("verified", key, json.dumps(entry).encode() + b"\n" + identity)
    return result


def _kind(artifact: str) -> str:
    """A file or a tree, reached by its real path: the sandbox binds the copy exactly there."""
    try:
        info = os.lstat(artifact)
    except OSError as error:
        raise ArtifactError(f"cannot read the artifact {artifact}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or os.path.realpath(artifact) != artifact:
        raise ArtifactError(f"the artifact {artifact} is reached through a symlink; give its real path "
                            f"{os.path.realpath(artifact)} in [verify] artifact")
    if stat.S_ISDIR(info.st_mode):
        return "tree"
    if stat.S_ISREG(info.st_mode):
        return "file"
    raise ArtifactError(f"the artifact {artifact} is neither a regular file nor a directory")


def _read_bundle(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise BundleError(f"cannot read the signature bundle {path}: {error.strerror}") from None


def _audit(path: str | None, **record: object) -> None:
    from mcpbox.audit import AuditLog

    log = AuditLog(path)
    try:
        log.write(event="verify", **{k: v for k, v in record.items() if v is not None})
    finally:
        log.close()
