"""The store's failures: each one line at the CLI edge, with the status `run` documents."""

from mcpbox.errors import EXIT_NOT_FOUND, McpboxError, UsageError


class SpecError(UsageError):
    """An `npx`/`uvx` command line mcpbox cannot map to one package (an option it does not support)."""


class InstallError(McpboxError):
    """The package could not be installed or found in the store: the server's command does not exist."""

    exit_status = EXIT_NOT_FOUND


class IntegrityError(InstallError):
    """A reinstalled pinned version is not the one pinned (its hash differs): it is not run."""
