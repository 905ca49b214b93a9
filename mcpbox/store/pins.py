"""Which installed version each server runs: one pin per profile and package spec, moved only on request.

A server whose `npx -y PKG` keeps meaning "the latest" would change under its user at the registry's whim;
pinned, it runs the version it first ran until `mcpbox update` moves it. The pin holds the lockfile (or the
hashed requirements) too, so that a store wiped clean is refilled with exactly what was pinned.
"""

import hashlib
import json
import os
from typing import NamedTuple

from mcpbox import paths
from mcpbox.store.install import Installed
from mcpbox.store.spec import Spec


class Pin(NamedTuple):
    profile: str  # the profile's absolute path
    ecosystem: str
    package: str  # as the spec names it (a tarball's path for a local one)
    requested: str  # the spec's version as written ("" = the latest)
    bin: str | None
    name: str  # the package's name as installed
    version: str
    integrity: str
    lock: str
    provenance: dict[str, str] | None = None  # the outcome of its provenance check, and the policy it answered

    def spec(self) -> Spec:
        return Spec(self.ecosystem, self.package, self.requested, self.bin)  # type: ignore[arg-type]


def directory() -> str:
    return os.path.join(paths.state_dir(), "installs")


def _path(profile: str, spec: Spec) -> str:
    identity = json.dumps([os.path.abspath(profile), spec.ecosystem, spec.package, spec.version, spec.bin])
    return os.path.join(directory(), hashlib.sha256(identity.encode()).hexdigest()[:32] + ".json")


def get(profile: str, spec: Spec) -> Pin | None:
    return _read(_path(profile, spec))


def put(profile: str, spec: Spec, entry: Installed, provenance: dict[str, str] | None = None) -> Pin:
    pin = Pin(os.path.abspath(profile), spec.ecosystem, spec.package, spec.version, spec.bin, entry.package,
              entry.version, entry.integrity, entry.lock, provenance)
    paths.write_private(_path(profile, spec), json.dumps(pin._asdict()).encode())
    return pin


def every() -> list[Pin]:
    try:
        names = sorted(os.listdir(directory()))
    except FileNotFoundError:
        return []
    return [pin for pin in (_read(os.path.join(directory(), name)) for name in names if name.endswith(".json"))
            if pin is not None]


def _read(path: str) -> Pin | None:
    try:
        with open(path) as handle:
            return Pin(**json.load(handle))
    except (OSError, ValueError, TypeError):
        return None
