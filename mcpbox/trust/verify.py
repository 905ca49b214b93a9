"""Verify before anything starts, and serve an unchanged, verified artifact from a cache in a few ms.

A launch whose artifact, bundle, policy and trust root are all as they were at
the last successful verification reuses it. The cache entry (mcpbox.cache:
stored next to its exact input, used only on a byte-for-byte match) is keyed
by the policy, the paths involved and the code that decides; it holds the
(device, inode, size, mtime, ctime) of the bundle, of the trust root and of
every file and directory of the original as they were read when staged, and
those must equal a fresh lstat of each. ctime cannot be set back by a user, so
a changed, added or removed file, bundle or root is noticed and verified
again. Nothing heavy is imported on that path: no sigstore, no cryptography,
no hashlib; not even the bundle is read.

Otherwise the artifact is staged (mcpbox.trust.store) and its digests compared
with what the bundle signs; sigstore runs only when the bundle, policy or root
bytes are new (a second cache, keyed by those bytes, holds its verdicts).
Either way what runs is the staged copy, bound read-only at the original path;
the cache only decides whether an earlier verification still describes the
original. Every decision is one audit line.
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

STAT = struct.Struct("<QQQqq")
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
    bundle = os.path.normpath(os.path.expanduser(verify.bundle))
    try:
        result = _verified(verify, artifact, bundle, fresh)
    except Unverified as error:
        _audit(audit_path, decision="deny", artifact=artifact, bundle=bundle, reason=str(error),
               expected=error.expected, found=error.found)
        raise
    _audit(audit_path, decision="allow", artifact=artifact, bundle=bundle, identity=result.identity,
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


def _verified(verify: Verify, artifact: str, bundle_path: str, fresh: bool) -> Verified:
    root_path = trust_root.path_for(verify.trusted_root)
    key = b"\0".join([b"mcpbox-verified-2", *map(cache.source_of, CODE),
                      json.dumps(verify._asdict(), sort_keys=True).encode(),
                      *map(os.fsencode, (artifact, bundle_path, root_path))])
    if not fresh:
        served = _served(key, artifact, (bundle_path, root_path))
        if served is not None:
            return served
    return _verify_new(verify, artifact, bundle_path, key, fresh)


def _served(key: bytes, artifact: str, inputs: tuple[str, str]) -> Verified | None:
    """The earlier verification, if the bundle, the root and every watched path are exactly as they were."""
    value = cache.read("verified", key)
    if value is None:
        return None
    header, _, identity = value.partition(b"\n")
    try:
        entry = json.loads(header)
        if _identity(artifact, entry["watched"], inputs) != identity or not _intact(entry["staged"]):
            return None
        return Verified(**{**entry["result"], "cached": True})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _identity(artifact: str, watched: list[list[str]] | None, inputs: tuple[str, str]) -> bytes | None:
    """(device, inode, size, mtime, ctime) of the bundle, the root, the artifact and, for a tree, of each
    directory and then its files (looked up from the directory's descriptor: the hot loop of a cached
    launch, ~1.5 us a file)."""
    lstat, pack = os.lstat, STAT.pack
    try:
        found = [lstat(path) for path in (*inputs, artifact)] if watched is None else [lstat(p) for p in inputs]
        for directory, names in watched or ():
            fd = os.open(f"{artifact}/{directory}" if directory else artifact,
                         os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                found.append(os.fstat(fd))
                found += [lstat(name, dir_fd=fd) for name in names.split("/")] if names else []
            finally:
                os.close(fd)
    except OSError:
        return None
    return b"".join([pack(s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for s in found])


def _by_directory(watched: list[tuple[str, os.stat_result]]) -> tuple[list[list[str]], list[os.stat_result]]:
    """A tree's watched paths as [directory, "name/name/..."] pairs, and their stats in checking order."""
    directories: dict[str, list[str]] = {}
    stats = dict(watched)
    for rel, info in watched:
        if stat.S_ISDIR(info.st_mode):
            directories.setdefault(rel, [])
        else:
            parent, _, name = rel.rpartition("/")
            directories.setdefault(parent, []).append(name)
    order: list[os.stat_result] = []
    for directory, names in directories.items():
        order.append(stats[directory])
        order += [stats[f"{directory}/{name}" if directory else name] for name in names]
    return [[directory, "/".join(names)] for directory, names in directories.items()], order


def _pack(info: os.stat_result) -> bytes:
    return STAT.pack(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _intact(staged: str) -> bool:
    """Still there, ours and read-only to others (the store is the user's, like the cache)."""
    try:
        info = os.lstat(staged)
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o222 and not stat.S_ISLNK(info.st_mode)


def _verify_new(verify: Verify, artifact: str, bundle_path: str, key: bytes, fresh: bool) -> Verified:
    from mcpbox.trust import manifest, signature, store

    kind = _kind(artifact)
    bundle, bundle_info = _read_bundle(bundle_path)
    root = trust_root.choose(verify.trusted_root)
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
            signed = manifest.file_digests(manifest.statement(verdict.payload_type, verdict.payload))
        else:
            signed = {verdict.digest or ""}
        if staged.digest not in signed:
            expected = " or ".join(sorted(signed)) or "(none)"
            raise ContentMismatch(f"{artifact} is not the file {verdict.identity} signed: expected sha256 "
                                  f"{expected}, found sha256 {staged.digest}",
                                  expected=f"sha256 {expected}", found=f"sha256 {staged.digest}")
    result = Verified(artifact, staged.path, kind, staged.digest, len(staged.files), verdict.identity,
                      verdict.issuer, verdict.log_time, cached=False)
    watched, stats = _by_directory(staged.watched) if kind == "tree" else (None, [staged.watched[0][1]])
    entry = {"staged": staged.path, "watched": watched,
             "result": {k: v for k, v in result._asdict().items() if k != "cached"}}
    identity = b"".join(map(_pack, [bundle_info, root.info, *stats]))
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


def _read_bundle(path: str) -> tuple[bytes, os.stat_result]:
    """The bundle's bytes and the identity of the file they came from, read through one descriptor."""
    try:
        with open(path, "rb") as handle:
            return handle.read(), os.fstat(handle.fileno())
    except OSError as error:
        raise BundleError(f"cannot read the signature bundle {path}: {error.strerror}") from None


def _audit(path: str | None, **record: object) -> None:
    from mcpbox.audit import AuditLog

    log = AuditLog(path)
    try:
        log.write(event="verify", **{k: v for k, v in record.items() if v is not None})
    finally:
        log.close()
