"""`mcpbox pins list | diff | accept`: the pinned definitions of each server, and the changes it made, for a
person to decide on.

A server is named as the firewall names it in its notes: its profile's name and the start of its store's key
(`default@3f2a9c1d`); its profile's name alone names all its stores. An item is `KIND:NAME` (`tool:echo`) or
just its NAME. `diff` shows each changed field, the description (or any text) as a line diff, other fields
old and new one after the other; `accept` pins the changed definition, so the next run shows the item again.
"""

import difflib
import json
from typing import Any

from mcpbox.errors import UsageError, say
from mcpbox.relay.pins import PinStore, stores


def matching(name: str) -> list[PinStore]:
    found = [store for store in stores() if name in (store.name, store.name.split("@")[0])
             or store.name.split("@")[1].startswith(name)]
    if not found:
        known = ", ".join(sorted(store.name for store in stores())) or "none yet"
        raise UsageError(f"no pinned server named {name!r} (known: {known}); see 'mcpbox pins list'")
    return found


def list_all() -> int:
    every = stores()
    if not every:
        print("no server has pins yet: mcpbox pins what a server shows the first time it runs")
        return 0
    for store in every:
        items = store.items()
        changed = sorted(key for key, entry in items.items() if "pending" in entry)
        command = " ".join(map(str, store.description.get("command", []) or [])) or "?"
        print(f"{store.name}  {len(items)} pinned  {command}")
        for key in changed:
            print(f"    changed: {key} (hidden; 'mcpbox pins diff {store.name}')")
    return 0


def diff(name: str) -> int:
    shown = 0
    for store in matching(name):
        for key, entry in sorted(store.items().items()):
            if "pending" in entry:
                shown += 1
                print("\n".join(describe_change(store.name, key, entry)))
    if not shown:
        print(f"no changed definitions for {name}")
    return 0


def accept(name: str, item: str | None) -> int:
    chosen = matching(name)
    if item is None and len(chosen) > 1:
        raise UsageError(f"{name!r} names {len(chosen)} servers ({', '.join(s.name for s in chosen)}); "
                         "give one of those names")
    accepted = 0
    for store in chosen:
        for key, entry in list(store.items().items()):
            if "pending" in entry and item in (None, key, key.split(":", 1)[1]) and store.accept(key):
                accepted += 1
                print(f"{store.name}: accepted the changed {key}; its next run shows it again")
        store.save()
    if not accepted:
        raise UsageError(f"nothing to accept for {name}{f' {item}' if item else ''}; see 'mcpbox pins diff {name}'")
    return 0


def describe_change(server: str, key: str, entry: dict[str, Any]) -> list[str]:
    """A changed item as lines: each changed field, text as a diff."""
    old = entry.get("definition") or {}
    pending = entry["pending"]
    new = pending.get("definition") or {}
    digests, pinned = pending.get("digests", {}), entry.get("digests", {})
    fields = sorted(field for field in set(digests) | set(pinned) if digests.get(field) != pinned.get(field))
    lines = [f"{server} {key}: changed {', '.join(fields)}"]
    for field in fields:
        before, after = old.get(field), new.get(field)
        if before is None and old == {}:
            lines.append(f"  {field}: (the pinned text was not kept by this mcpbox version) -> {_short(after)}")
        elif isinstance(before, str) and isinstance(after, str):
            lines.append(f"  {field}:")
            lines += ["    " + line.rstrip("\n") for line in difflib.unified_diff(
                before.splitlines(), after.splitlines(), "pinned", "now", lineterm="", n=2)]
        else:
            lines += [f"  {field} pinned: {_short(before)}", f"  {field} now:    {_short(after)}"]
    return lines


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 400 else text[:397] + "..."


def main(action: str, name: str | None, item: str | None) -> int:
    if action == "list":
        return list_all()
    if name is None:
        say(f"pins {action}: name a server (see 'mcpbox pins list')")
        return 2
    return diff(name) if action == "diff" else accept(name, item)
