"""mcpbox's own failures, each with the exit status the CLI turns it into.

Exit statuses are part of the user contract (documented in the README): a
client config or a script can tell a broken profile from a host that cannot
sandbox from a missing command from a server whose signature does not verify,
and all of them from the server's own status.
"""

from __future__ import annotations

import sys

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug in mcpbox, not in what it was given
EXIT_RELAY = 74  # sysexits' EX_IOERR: the client's end of the relay failed
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
    """The command line is incomplete (as argparse's own errors, which exit with the same status)."""

    exit_status = EXIT_USAGE


class ConfigFileError(McpboxError):
    """A client's config file (`mcpbox wrap`) cannot be read, parsed or written; it is left untouched."""

    exit_status = EXIT_CONFIG


class CommandNotFound(McpboxError):
    exit_status = EXIT_NOT_FOUND


class SandboxError(McpboxError):
    """The sandbox cannot be built on this host; the server is never run without it."""

    exit_status = EXIT_SANDBOX


class RelayError(McpboxError):
    """mcpbox cannot go on relaying (the client's stdout fails with something other than its going away).

    Raised out of the relay loop; the sandbox is ended and its cgroups removed before the line is shown.
    """

    exit_status = EXIT_RELAY


# C0 and C1 controls but tab, shown as escapes: a peer's words must not drive the terminal a log is read on
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if code != 0x09}


def one_line(text: str) -> str:
    """`mcpbox: TEXT` as a single line: a path or a peer's words holding a line break cannot make it look like
    two messages, or like another program's, nor a control character reach the terminal."""
    return "mcpbox: " + " ".join(text.splitlines()).translate(_CONTROLS)


def said(text: str) -> bytes:
    """mcpbox's line as bytes, for what writes raw bytes (the pump, the firewall's notes)."""
    return (one_line(text) + "\n").encode()


def say(text: str) -> None:
    """mcpbox's one line on stderr (clients keep it in their logs). It never raises: a client may have closed
    stderr, and a line lost must not stop the server."""
    try:
        sys.stderr.write(one_line(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # ValueError: a closed sys.stderr
        pass
