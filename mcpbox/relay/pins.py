"""First-seen definitions of a server's tools, prompts, templates and instructions (rug-pull defence).

Stored per server identity: the profile plus what it runs (the resolved
command, or a verified digest), so two servers under the default profile
never share pins. A definition that differs from its pin is reported and its
item hidden until the user accepts the change (`mcpbox pins reset`).
"""

from __future__ import annotations

import hashlib
import json
import os

from mcpbox import paths

NEW, SAME = "new", "same"


def identity_key(profile_path: str, what_runs: list[str]) -> str:
    return hashlib.sha256(json.dumps([profile_path, what_runs]).encode()).hexdigest()[:32]


def store_path(key: str) -> str:
    return os.path.join(paths.state_dir(), "pins", f"{key}.json")


class PinStore:
    def __init__(self, path: str, description: dict[str, object]) -> None:
        self.path = path
        self._description = description
        self._pins: dict[str, dict[str, str]] = {}
        self._dirty = False
        try:
            with open(path) as handle:
                stored = json.load(handle)
            self._pins = {str(k): v for k, v in stored.get("pins", {}).items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError):
            pass

    def check(self, kind: str, name: str, digests: dict[str, str]) -> str | list[str]:
        """NEW or SAME, or the fields whose fingerprint differs from the pinned one."""
        key = f"{kind}:{name}"
        known = self._pins.get(key)
        if known is None:
            self._pins[key] = digests
            self._dirty = True
            return NEW
        changed = sorted(field for field in known.keys() | digests.keys() if known.get(field) != digests.get(field))
        return changed or SAME

    @property
    def dirty(self) -> bool:
        """New pins not yet saved."""
        return self._dirty

    def save(self) -> None:
        """Write new pins, atomically; a store that cannot be written costs only the defence across runs."""
        if not self._dirty:
            return
        self._dirty = False
        try:
            paths.write_private(self.path, json.dumps({"server": self._description, "pins": self._pins}, indent=1,
                                                      sort_keys=True).encode())
        except OSError:
            pass
