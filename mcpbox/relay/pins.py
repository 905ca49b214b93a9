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


class Pins:
    """The pins of one server, in memory: per item, the digest of each pinned field and the definition they were
    taken of, and, once the server changed it, the changed definition waiting for the user (`mcpbox pins
    accept`). The firewall checks and updates them; saving them is the pump's (`PinStore.save`)."""

    def __init__(self) -> None:
        self._pins: dict[str, dict[str, object]] = {}
        self._dirty = False

    def check(self, kind: str, name: str, digests: dict[str, str],
              definition: dict[str, object] | None = None) -> str | list[str]:
        """NEW or SAME, or the fields whose fingerprint differs from the pinned one (the changed definition is
        then kept beside the pinned one, for `pins diff` and `pins accept`)."""
        key = f"{kind}:{name}"
        known = self._pins.get(key)
        if known is None:
            self._pins[key] = {"digests": digests, "definition": definition}
            self._dirty = True
            return NEW
        pinned = known["digests"]
        assert isinstance(pinned, dict)
        changed = sorted(field for field in pinned.keys() | digests.keys() if pinned.get(field) != digests.get(field))
        if not changed:
            return SAME
        pending = {"digests": digests, "definition": definition}
        if known.get("pending") != pending:
            known["pending"] = pending
            self._dirty = True
        return changed

    def items(self) -> dict[str, dict[str, object]]:
        """Item key ("tool:NAME") -> {"digests", "definition", and "pending" when it changed}."""
        return self._pins

    def accept(self, key: str) -> bool:
        """Pin an item's changed definition (the user trusts the change); False if it has none."""
        entry = self._pins.get(key)
        if entry is None or "pending" not in entry:
            return False
        pending = entry.pop("pending")
        assert isinstance(pending, dict)
        entry.update(pending)
        self._dirty = True
        return True

    @property
    def dirty(self) -> bool:
        """New pins or changes not yet saved."""
        return self._dirty


class PinStore(Pins):
    """A server's pins in their file under the state folder."""

    def __init__(self, path: str, description: dict[str, object]) -> None:
        super().__init__()
        self.path = path
        self._description = description
        try:
            with open(path) as handle:
                stored = json.load(handle)
            self._description = stored.get("server", description) or description
            self._pins = {str(k): _entry(v) for k, v in stored.get("pins", {}).items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError):
            pass

    @property
    def description(self) -> dict[str, object]:
        return self._description

    @property
    def name(self) -> str:
        """How `mcpbox pins` names this server: its profile's name and the start of its store's key."""
        profile = str(self._description.get("profile", "?"))
        key = os.path.basename(self.path).removesuffix(".json")
        return f"{os.path.basename(profile).removesuffix('.toml')}@{key[:8]}"

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


def _entry(stored: dict[str, object]) -> dict[str, object]:
    """A stored item; a store written before definitions were kept holds its digests only."""
    return stored if isinstance(stored.get("digests"), dict) else {"digests": stored, "definition": None}


def stores() -> list[PinStore]:
    """Every server's pins on this machine."""
    directory = os.path.join(paths.state_dir(), "pins")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [PinStore(os.path.join(directory, name), {}) for name in names if name.endswith(".json")]
