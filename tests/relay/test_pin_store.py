"""The pin store's file: what one run pins, the next reads back; what cannot be read starts empty."""

from __future__ import annotations

from mcpbox.relay.pins import NEW, SAME, PinStore


def test_pins_new_same_changed_and_survive_reload(tmp_path):
    path = str(tmp_path / "pins" / "a.json")
    store = PinStore(path, {"command": ["srv"]})
    d1, d2 = {"description": "d1", "name": "echo"}, {"description": "d2", "name": "echo"}
    assert store.check("tool", "echo", d1) == NEW
    assert store.check("tool", "echo", d1) == SAME
    assert store.check("tool", "echo", d2) == ["description"], "a change is named by the fields it touched"
    assert store.check("prompt", "echo", d2) == NEW, "kinds have separate names"
    store.save()
    reloaded = PinStore(path, {"command": ["srv"]})
    assert reloaded.check("tool", "echo", d1) == SAME
    assert reloaded.check("tool", "echo", {"name": "echo"}) == ["description"]
    assert reloaded.check("prompt", "echo", d2) == SAME
    assert PinStore(str(tmp_path / "pins" / "b.json"), {}).check("tool", "echo", d2) == NEW, "per identity file"


def test_pins_unsaved_are_lost_and_a_broken_store_starts_empty(tmp_path):
    path = tmp_path / "a.json"
    PinStore(str(path), {}).check("tool", "echo", {"description": "d1"})
    assert not path.exists()
    path.write_text("[not an object")
    assert PinStore(str(path), {}).check("tool", "echo", {"description": "d1"}) == NEW
