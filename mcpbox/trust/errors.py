"""Why a server was not verified: one line for a person, the parts for the audit log.

Every failure of verification is an `Unverified` (exit status 124 from
`mcpbox run`): the server never starts. The subclasses say which part failed,
so a caller can tell "the files are not what was signed" from "the signature
is not the publisher's" without parsing the message.
"""

from __future__ import annotations

from mcpbox.errors import EXIT_UNVERIFIED, McpboxError


class Unverified(McpboxError):
    """The server is not what its publisher signed, or that cannot be established."""

    exit_status = EXIT_UNVERIFIED

    def __init__(self, message: str, *, expected: str | None = None, found: str | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class ArtifactError(Unverified):
    """The artifact cannot be read and staged as regular files (missing, a symlink, a device...)."""


class BundleError(Unverified):
    """The bundle or the statement it signs is missing, malformed or of a kind mcpbox does not accept."""


class SignatureRejected(Unverified):
    """The signature, its certificate chain, log proof or the signer's identity does not verify."""


class ContentMismatch(Unverified):
    """The bytes differ from what was signed: a changed, missing or extra file, or another digest."""


class TrustRootError(Unverified):
    """The trust root cannot be read, is writable by others, or is not the pinned one."""


class CheckFailed(McpboxError):
    """`mcpbox verify` reports any verification failure with status 1."""

    exit_status = 1


class TrustUpdateFailed(McpboxError):
    """`mcpbox trust update` could not fetch or check a new trust root; the current one stays."""

    exit_status = 1


class ProvenanceMissing(Unverified):
    """`provenance = "required"`, and the package was published without any, or its registry offers none."""


class ProvenanceUnavailable(Unverified):
    """The registry could not be asked for the package's provenance: the install is not trusted blind."""
