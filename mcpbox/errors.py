"""mcpbox's own failures, each with the exit status the CLI turns it into.

Exit statuses are part of the user contract (documented in the README): a
client config or a script can tell a broken profile from a host that cannot
sandbox from a missing command from a server whose signature does not verify,
and all of them from the server's own status.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_UNVERIFIED = 124
EXIT_CONFIG = 125
EXIT_SANDBOX = 126
EXIT_NOT_FOUND = 127


class McpboxError(Exception):
    """A failure with a one-line explanation meant for a person."""

    exit_status = EXIT_CONFIG


class ProfileError(McpboxError):
    """The profile cannot be read, parsed or validated."""

    exit_status = EXIT_CONFIG


class UsageError(McpboxError):
    exit_status = EXIT_USAGE


class ConfigFileError(McpboxError):
    """A client's config file (`mcpbox wrap`) cannot be read, parsed or written; it is left untouched."""

    exit_status = EXIT_CONFIG


class CommandNotFound(McpboxError):
    exit_status = EXIT_NOT_FOUND


class SandboxError(McpboxError):
    """The sandbox cannot be built on this host; the server is never run without it."""

    exit_status = EXIT_SANDBOX
