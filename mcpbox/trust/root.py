"""Which Sigstore trust root verifies a signature, and `mcpbox trust update`.

Verification never touches the network. The public-good root comes from the
`trusted_root.json` shipped in this package, whose sha256 is pinned below and
checked before sigstore uses it; sigstore's own offline mode would instead copy
its embedded root into a cache under HOME and later trust that cache unchecked.
`mcpbox trust update` is the one online step: sigstore's TUF client fetches and
checks the current root, and mcpbox keeps it in its config directory, which it
reads only when the file is not writable by anyone else. A profile may name its
own root (`trusted_root = PATH`) for a private Sigstore deployment.
"""

from __future__ import annotations

import os
import stat

from mcpbox import paths
from mcpbox.profile import expand
from mcpbox.trust.errors import TrustRootError, TrustUpdateFailed

PINNED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trusted_root.json")
PINNED_SHA256 = "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"  # sigstore 4.5.1's embedded root
TUF_URL = "https://tuf-repo-cdn.sigstore.dev"


def updated_path() -> str:
    """Where `mcpbox trust update` keeps the refreshed public-good root."""
    return os.path.join(paths.config_dir(), "trust", "trusted_root.json")


def path_for(profile_root: str | None) -> str:
    """Which root applies: the profile's own, else a refreshed public-good root, else the pinned one."""
    if profile_root is not None:
        return expand(profile_root)
    refreshed = updated_path()
    return refreshed if os.path.lexists(refreshed) else PINNED


def read(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the root at `path` (from path_for) and the file they came from, so that a later change is
    noticed. The shipped root is checked against its pinned sha256 here, before sigstore can read it."""
    if path != PINNED:
        return _read_private(path)
    try:
        with open(PINNED, "rb") as handle:
            data, info = handle.read(), os.fstat(handle.fileno())
    except OSError as error:
        raise TrustRootError(f"cannot read mcpbox's pinned trust root {PINNED}: {error.strerror}; "
                             "reinstall mcpbox") from None
    import hashlib

    found = hashlib.sha256(data).hexdigest()
    if found != PINNED_SHA256:
        raise TrustRootError(f"the pinned trust root {PINNED} was altered (expected sha256 {PINNED_SHA256}, "
                             f"found {found}); reinstall mcpbox", expected=PINNED_SHA256, found=found)
    return data, info


def _read_private(path: str) -> tuple[bytes, os.stat_result]:
    """A root that someone else could rewrite would let them choose whom mcpbox trusts."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as error:
        raise TrustRootError(f"cannot read the trust root {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TrustRootError(f"the trust root {path} is not a regular file")
        if info.st_uid not in (os.geteuid(), 0) or info.st_mode & 0o022:
            raise TrustRootError(f"the trust root {path} may be changed by another user "
                                 f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}); "
                                 "make it yours and not group/other-writable")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(), info
    finally:
        os.close(fd)


def update() -> str:
    """Fetch the current public-good root through sigstore's TUF client; keep it only if it checks out."""
    try:
        from sigstore._internal.tuf import TrustUpdater
        from sigstore.models import TrustedRoot

        fetched = TrustUpdater(TUF_URL, offline=False).get_trusted_root_path()
        with open(fetched, "rb") as handle:
            data = handle.read()
        TrustedRoot.from_file(fetched)  # parses and checks the media type
    except Exception as error:  # TUF, network, parse: the one line says which
        current = path_for(None)
        if current != PINNED:
            _read_private(current)  # a broken refreshed root is the more urgent line to show
        raise TrustUpdateFailed(f"cannot refresh the Sigstore trust root from {TUF_URL}: {_innermost(error)}; "
                                f"verification keeps using {current}") from None
    target = updated_path()
    previous = _read_private(target)[0] if os.path.lexists(target) else None
    if previous == data:
        return f"the trust root is up to date: {target}"
    paths.write_private(target, data)
    import hashlib

    return f"trust root updated from {TUF_URL}: {target} (sha256 {hashlib.sha256(data).hexdigest()})"


def _innermost(error: BaseException) -> str:
    """The root cause of a chained error, on one line."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
