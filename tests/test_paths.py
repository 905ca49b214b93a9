"""mcpbox's one atomic private write (cache entries, pins, the trust root)."""

from __future__ import annotations

from pathlib import Path

from mcpbox import paths


def test_a_private_write_makes_private_folders_and_replaces_a_planted_link_instead_of_following_it(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    target = tmp_path / "state" / "deeper" / "pins.json"
    paths.write_private(str(target), b"first")
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    target.unlink()
    target.symlink_to(victim)  # planted where mcpbox writes next
    paths.write_private(str(target), b"second")
    assert not target.is_symlink() and target.read_bytes() == b"second"
    assert victim.read_text() == "the user's file\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["pins.json"], "no temporary file is left"
