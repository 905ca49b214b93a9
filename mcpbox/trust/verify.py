"""Verify before the server runs, and serve an unchanged, verified artifact from a cache in a few ms.

A launch whose artifact, bundle, policy, trust root and deciding code are all
as they were at the last successful verification reuses it. The cache entry
(mcpbox.cache: stored next to its exact input, used only on a byte-for-byte
match) is keyed by the policy and the paths involved, this code's included; it
holds the (type and mode, device, inode, size, mtime, ctime) of this code, of
the bundle, of the trust root and of every file and directory of the original
as they were read when staged, and those must equal a fresh lstat of each.
ctime cannot be set back by a user, so a changed, added or removed file,
bundle, root or module is noticed and verified again. Nothing heavy is
imported on that path: no sigstore, no cryptography, no hashlib, not even
struct; no file is read but the cache entry. `mcpbox run` looks the entry up
(`earlier`) before bwrap starts and checks it (`served`) while bwrap builds
the sandbox, which holds the server until that check has passed.

Otherwise the artifact is staged (mcpbox.trust.store) and its digests compared
with what the bundle signs; sigstore runs only when the bundle, policy or root
bytes are new (a second cache, keyed by those bytes, holds its verdicts).
Either way what runs is the staged copy, bound read-only at the original path;
the cache only decides whether an earlier verification still describes the
original. Every decision is one audit line.
"""

import marshal
import os
import stat
import sys
from operator import attrgetter, eq
from typing import NamedTuple

from mcpbox import cache
from mcpbox import profile as profiles
from mcpbox.profile import Verify
from mcpbox.trust import root as trust_root
from mcpbox.trust.errors import ArtifactError, BundleError, CheckFailed, ContentMismatch, Unverified

FIELDS = ("st_mode", "st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
"""What must be as it was: a rewritten, touched, replaced or retyped file, and an entry added to or removed
from a directory (its mtime and ctime), all show in these. Each is stored as an unsigned 64-bit word in
native byte order, which a memoryview reads in place, without importing struct."""
FINGERPRINT = attrgetter(*FIELDS)
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
    found = None if fresh else earlier(verify)
    result = None if found is None else served(found, audit_path)
    return result if result is not None else afresh(verify, audit_path, fresh=fresh)


class Earlier(NamedTuple):
    """A cached verification not yet known to hold. `served` tells, and may be asked after the sandbox was
    started with it (nothing of the server runs before its release), so that the lstat of every watched
    path overlaps bwrap's own work."""

    result: Verified
    bundle: str
    paths: list[bytes]
    fingerprints: bytes


def earlier(verify: Verify) -> Earlier | None:
    """The entry of the last successful verification with this policy, paths and code, if there is one and
    its copy is intact.

    The entry is marshal data (builtin, and cheaper to load than JSON): the result's fields but the artifact
    (the key holds it) and `cached`, the watched paths and their fingerprints. The cache serves only entries of this user that no one else can
    change, and a malformed one is a miss."""
    artifact, bundle = _artifact_and_bundle(verify)
    value = cache.read("verified", _key(verify, artifact, bundle, trust_root.path_for(verify.trusted_root)))
    if value is None:
        return None
    try:
        fields, paths, fingerprints = marshal.loads(value)
        result = Verified(artifact, *fields, cached=True)  # the key holds the artifact: not stored again
        if not isinstance(result.staged, str) or not _intact(result.staged):  # the copy bwrap is about to bind
            return None
    except (ValueError, EOFError, TypeError):  # a malformed entry
        return None
    return Earlier(result, bundle, paths, fingerprints)


def served(found: Earlier, audit_path: str | None) -> Verified | None:
    """The earlier verification, audited, if the code, the bundle, the root and every watched path are as
    they were; None when something changed and the artifact must be verified afresh."""
    if not _unchanged(found.paths, found.fingerprints):
        return None
    _audit_allowed(found.result, found.bundle, audit_path)
    return found.result


def afresh(verify: Verify, audit_path: str | None, *, fresh: bool = False) -> Verified:
    """Stage the artifact and check the copy against the signature (a verdict cached for the same bundle,
    policy and root is reused unless `fresh`); audited both ways."""
    artifact, bundle = _artifact_and_bundle(verify)
    try:
        result = _verify_new(verify, artifact, bundle, fresh)
    except Unverified as error:
        _audit(audit_path, decision="deny", artifact=artifact, bundle=bundle, reason=str(error),
               expected=error.expected, found=error.found)
        raise
    _audit_allowed(result, bundle, audit_path)
    return result


def report(profile_name: str) -> int:
    """`mcpbox verify`: the check alone, always done afresh; status 1 and the reason when it fails."""
    loaded = profiles.load(profile_name)
    if loaded.profile.verify is None:
        raise CheckFailed(f"profile {loaded.path} has no [verify] section: nothing to verify")
    if loaded.profile.verify.artifact is None:
        from mcpbox.store import commands

        return commands.verify_pinned(loaded)
    try:
        result = afresh(loaded.profile.verify, loaded.profile.audit.path, fresh=True)
    except Unverified as error:
        raise CheckFailed(str(error)) from None
    what = f"a tree of {result.files} files" if result.kind == "tree" else "a file"
    print(f"verified: {result.artifact} ({what})\n"
          f"signer:   {result.identity} (issuer {result.issuer})\n"
          f"logged:   {result.log_time}\n"
          f"sha256:   {result.digest}")
    return 0


def _artifact_and_bundle(verify: Verify) -> tuple[str, str]:
    return profiles.expand(verify.artifact), profiles.expand(verify.bundle)


def _policy(verify: Verify) -> bytes:
    """The policy's fields in the NamedTuple's order, for the cache keys: the repr of a tuple of strings and
    None is exact."""
    return repr(tuple(verify)).encode()


def _key(verify: Verify, artifact: str, bundle: str, root_path: str) -> bytes:
    return b"\0".join([b"mcpbox-verified-6", _policy(verify), *map(os.fsencode, (artifact, bundle, root_path, *CODE))])


def _unchanged(paths: list[bytes], fingerprints: bytes) -> bool:
    """Every path's lstat has its recorded fingerprint: the hot loop of a cached launch.

    One chain of C iterators, so no bytecode runs per path, and nothing is kept: each stat result is
    compared with the next six stored words and dropped, so a 2,000-file tree costs little more than its
    lstat calls (half of that time is the kernel's). A directory replaced by a symlink shows in its own
    fingerprint, so following symlinks in a path's parents hides nothing."""
    try:
        if len(fingerprints) != 8 * len(FIELDS) * len(paths):
            return False
        words = iter(memoryview(fingerprints).cast("Q"))
        stored = zip(*[words] * len(FIELDS))  # one iterator zipped with itself: consecutive groups of six
        return all(map(eq, map(FINGERPRINT, map(os.lstat, paths)), stored))
    except (OSError, ValueError, TypeError):  # gone, or a malformed entry (down to a path holding a NUL)
        return False


def _words(info: os.stat_result) -> bytes:
    """A fingerprint as stored. A value outside 0..2**64 (only an mtime before 1970) is stored wrapped and
    never matches: such an artifact is verified afresh at every launch, slower but never wrong."""
    return b"".join((value % 2**64).to_bytes(8, sys.byteorder) for value in FINGERPRINT(info))


def _intact(staged: str) -> bool:
    """Still there, ours and read-only to others (the store is the user's, like the cache)."""
    try:
        info = os.lstat(staged)
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o222 and not stat.S_ISLNK(info.st_mode)


def _verify_new(verify: Verify, artifact: str, bundle_path: str, fresh: bool) -> Verified:
    from mcpbox.trust import manifest, signature, store

    kind = _kind(artifact)
    root_path = trust_root.path_for(verify.trusted_root)
    code_info = list(map(os.lstat, CODE))  # before the code is read: a later upgrade shows
    bundle, bundle_info = _read_bundle(bundle_path)
    root, root_info = trust_root.read(root_path)
    verdict_key = b"\0".join([b"mcpbox-signature-3", *map(cache.source_of, CODE), _policy(verify), root, bundle])
    cached = None if fresh else cache.read("signatures", verdict_key)
    try:
        verdict = None if cached is None else signature.Verdict.from_json(cached)
    except (ValueError, KeyError, TypeError):  # a damaged entry is a miss
        verdict = None
    if verdict is None:
        verdict = signature.check(verify, artifact, bundle_path, bundle, root_path, root)
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
    paths = [*CODE, bundle_path, root_path, *(f"{artifact}/{rel}" if rel else artifact for rel, _ in staged.watched)]
    stats = [*code_info, bundle_info, root_info, *(info for _, info in staged.watched)]
    entry = (result[1:-1], list(map(os.fsencode, paths)), b"".join(map(_words, stats)))  # but artifact, cached
    cache.write("verified", _key(verify, artifact, bundle_path, root_path), marshal.dumps(entry))
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


def _audit_allowed(result: Verified, bundle: str, audit_path: str | None) -> None:
    _audit(audit_path, decision="allow", artifact=result.artifact, bundle=bundle, identity=result.identity,
           issuer=result.issuer, sha256=result.digest, log_time=result.log_time, cached=result.cached)


def _audit(path: str | None, **record: object) -> None:
    from mcpbox.audit import write_one

    write_one(path, event="verify", **record)
