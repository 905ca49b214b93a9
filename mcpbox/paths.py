"""Where mcpbox keeps its files, following the XDG base directory spec."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home() / fallback


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "mcpbox"


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "mcpbox"


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "mcpbox"


def user_profiles_dir() -> Path:
    return config_dir() / "profiles"


def shipped_profiles_dir() -> Path:
    return Path(__file__).resolve().parent / "profiles"
