"""The store at the command line: `run`'s npx/uvx rewrite, and `install`, `servers`, `update`.

Messages go to stderr on the `run` path: there stdout is the client's JSON-RPC stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from mcpbox import paths
from mcpbox import profile as profiles
from mcpbox.errors import UsageError
from mcpbox.store import install, pins
from mcpbox.store.errors import IntegrityError
from mcpbox.store.spec import Spec, parse
from mcpbox.trust.errors import Unverified

Say = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def command(loaded: profiles.LoadedProfile, argv: list[str]) -> list[str]:
    """`npx ... PKG ARGS` / `uvx ... PKG ARGS` -> the pinned store copy's executable and ARGS."""
    spec = parse(argv)
    entry = ensure(loaded.path, spec, _stderr, "(first run)", loaded.profile)
    return [entry.executable(spec.bin), *spec.args]


def ensure(profile_path: str, spec: Spec, say: Say, why: str,
           profile: profiles.Profile | None = None) -> install.Installed:
    """The entry the server (`profile_path` running `spec`) is pinned to; installed, and pinned, if need be.
    A profile asking for provenance (`[verify] provenance`) has it checked before the pin is made or used."""
    pin = pins.get(profile_path, spec)
    if pin is not None:
        entry = install.read(install.entry_path(pin.ecosystem, pin.name, pin.version))
        if entry is None:
            say(f"mcpbox: installing the pinned {pin.name}@{pin.version} into the store again ...")
            entry = install.install(spec, lock=pin.lock)
            if (entry.version, entry.integrity) != (pin.version, pin.integrity):
                raise IntegrityError(f"{pin.name}@{pin.version} was pinned with {pin.integrity}, the registry now "
                                     f"serves {entry.version} with {entry.integrity}; not run ('mcpbox update' "
                                     "accepts the change)")
        record = _provenance(profile, entry, pin.provenance, say)
        if record != pin.provenance:
            pins.put(profile_path, spec, entry, record)
        return entry
    entry = install.find(spec)
    if entry is None:
        say(f"mcpbox: installing {spec.requirement} into the store{' ' + why if why else ''} ...")
        entry = install.install(spec)
        _say_scripts(entry, say)
    pins.put(profile_path, spec, entry, _provenance(profile, entry, None, say))
    return entry


def _provenance(profile: profiles.Profile | None, entry: install.Installed, record: dict[str, str] | None,
                say: Say) -> dict[str, str] | None:
    """The provenance outcome to pin: an earlier one that answers the profile's policy, else a fresh check
    (online), audited; raises when the policy refuses the package."""
    if profile is None or profile.verify is None or profile.verify.provenance is None:
        return record
    from mcpbox.audit import write_one
    from mcpbox.store import provenance

    verify = profile.verify
    if provenance.holds(record, verify):
        return record
    package = f"{entry.package}@{entry.version}"
    audit = {"event": "provenance", "ecosystem": entry.ecosystem, "package": package, "policy": verify.provenance}
    try:
        outcome = provenance.check(verify, provenance.offer_for(entry.ecosystem, entry.package, entry.version,
                                                                entry.integrity), package)
    except Unverified as error:
        write_one(profile.audit.path, **audit, decision="deny", reason=str(error))
        raise
    write_one(profile.audit.path, **audit, decision="allow", found=outcome.kind, detail=outcome.detail)
    say(f"mcpbox: {package}: provenance verified, built by {outcome.detail}" if outcome.kind == "attested" else
        f"mcpbox: {outcome.detail}; run as pinned ([verify] provenance = \"if-present\")")
    return outcome.record(verify)


def verify_pinned(loaded: profiles.LoadedProfile) -> int:
    """`mcpbox verify` of a `provenance` profile: the packages pinned under it, checked afresh (online)."""
    from mcpbox.trust.errors import CheckFailed

    pinned = [pin for pin in pins.every() if pin.profile == os.path.abspath(loaded.path)]
    if not pinned:
        print(f"no npx/uvx server is pinned under {loaded.path} yet: its first run checks the provenance")
        return 0
    for pin in pinned:
        entry = install.read(install.entry_path(pin.ecosystem, pin.name, pin.version))
        if entry is None:
            raise CheckFailed(f"{pin.name}@{pin.version} is pinned but not in the store; run the server once")
        try:
            record = _provenance(loaded.profile, entry, None, print)
        except Unverified as error:
            raise CheckFailed(str(error)) from None
        pins.put(pin.profile, pin.spec(), entry, record)
    return 0


def _say_scripts(entry: install.Installed, say: Say) -> None:
    if entry.scripts:
        say(f"mcpbox: lifecycle scripts not run (npm --ignore-scripts): {', '.join(entry.scripts)}")


def spec_of(word: str) -> Spec:
    """An `install` argument: npm:NAME[@VERSION] (or just @scope/name...), pypi:NAME[==VERSION]."""
    ecosystem, _, name = word.partition(":") if word.startswith(("npm:", "pypi:")) else ("", "", word)
    if not ecosystem and word.startswith("@"):
        ecosystem = "npm"
    if ecosystem == "npm" and name:
        return parse(["npx", name])
    if ecosystem == "pypi" and name:
        return parse(["uvx", name])
    raise UsageError(f"{word!r}: write npm:NAME[@VERSION] or pypi:NAME[==VERSION]")


def install_specs(words: list[str]) -> int:
    """`mcpbox install`: fill the store ahead of a first run (no pin: no server is named)."""
    for spec in [spec_of(word) for word in words]:
        found = install.find(spec) if spec.exact else None
        if found is None:
            print(f"installing {spec.ecosystem} {spec.requirement} ...", flush=True)
            found = install.install(spec)
            _say_scripts(found, print)
        print(f"{spec.ecosystem} {found.package}@{found.version}: {_short(found.path)} "
              f"(runs: {', '.join(sorted(found.bins)) or 'nothing'})")
    return 0


def servers() -> int:
    """`mcpbox servers`: what the store holds, and which version each server is pinned to."""
    entries = install.installed()
    print(f"installed in {_short(paths.servers_dir())}:" if entries else
          f"nothing installed in {_short(paths.servers_dir())}")
    for entry in entries:
        scripts = f"  (scripts not run: {', '.join(entry.scripts)})" if entry.scripts else ""
        print(f"  {entry.ecosystem:<4}  {entry.package}@{entry.version}  runs {', '.join(sorted(entry.bins))}{scripts}")
    pinned = pins.every()
    if pinned:
        print("pinned (profile: what it runs -> version):")
    for pin in pinned:
        print(f"  {_profile_name(pin.profile)}: {_runner(pin)} -> {pin.version}")
    return 0


def update(name: str | None) -> int:
    """`mcpbox update [NAME]`: resolve each pinned spec again and move its pin to what it resolves to now."""
    chosen = [pin for pin in pins.every() if name in (None, pin.name, pin.package, _profile_name(pin.profile))]
    if not chosen:
        raise UsageError(f"no server pinned{f' by the name {name!r}' if name else ''}; see 'mcpbox servers'")
    refused = 0
    for pin in chosen:
        spec = pin.spec()
        entry = install.install(spec)
        where = f"{_profile_name(pin.profile)}: {_runner(pin)}"
        if (entry.version, entry.integrity) == (pin.version, pin.integrity):
            print(f"{where} {pin.version} (up to date)")
            continue
        _say_scripts(entry, print)
        try:
            record = _provenance(profiles.load(pin.profile).profile, entry, None, print)
        except Unverified as error:
            print(f"{where} stays at {pin.version}: {entry.version} is refused: {error}")
            refused += 1
            continue
        pins.put(pin.profile, spec, entry, record)
        print(f"{where} {pin.version} -> {entry.version}")
    return 1 if refused else 0


def _runner(pin: pins.Pin) -> str:
    spec = pin.spec()
    return f"{'npx' if spec.ecosystem == 'npm' else 'uvx'} {spec.requirement}"


def _profile_name(path: str) -> str:
    """A user profile by its name, as `--profile` takes it; any other by its path."""
    directory, file = os.path.split(path)
    return file.removesuffix(".toml") if directory == paths.user_profiles_dir() else path


def _short(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if paths.within(path, home) and home != "/" else path
