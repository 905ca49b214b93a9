"""Where mcpbox keeps its files, following the XDG base directory spec."""

from __future__ import annotations

import os


def within(path: str, top: str) -> bool:
    """`path` is `top` or below it (both absolute and normalized; `/` holds every path)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _xdg(variable: str, fallback: str) -> str:
    value = os.environ.get(variable, "")
    return value if os.path.isabs(value) else os.path.join(os.path.expanduser("~"), fallback)


def config_dir() -> str:
    return os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), "mcpbox")


def cache_dir() -> str:
    return os.path.join(_xdg("XDG_CACHE_HOME", ".cache"), "mcpbox")


def state_dir() -> str:
    return os.path.join(_xdg("XDG_STATE_HOME", ".local/state"), "mcpbox")


def data_dir() -> str:
    return os.path.join(_xdg("XDG_DATA_HOME", ".local/share"), "mcpbox")


def servers_dir() -> str:
    """mcpbox's store of installed npm and PyPI servers (what `npx`/`uvx` entries run)."""
    return os.path.join(data_dir(), "servers")


def user_profiles_dir() -> str:
    return os.path.join(config_dir(), "profiles")


def shipped_profiles_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")


def write_private(path: str, data: bytes) -> None:
    """Replace `path` atomically with `data`, readable by the user only (mcpbox's cache, pins, trust root). The
    temporary file is made new (O_EXCL) and never through a symlink (O_NOFOLLOW): a link planted at its name
    cannot redirect the write. Its folders are made private when missing. OSError reaches the caller."""
    missing = []
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for folder in reversed(missing):  # each level private (makedirs gives its mode to the last only)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
    temporary = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
