"""Shared pieces of the signature tests: the private test roots, profile writing, the public data's place."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import minting

ROOT = Path(__file__).resolve().parent.parent.parent
SHARED = ROOT.parent / "shared" / "sigstore"
MCPBOX = [sys.executable, "-m", "mcpbox"]
ME = minting.Signer("publisher@example.com", "https://issuer.example")
RELEASE = minting.Signer.github("acme/weather-mcp", "refs/tags/v1.2.0")


@pytest.fixture(scope="session")
def test_root(tmp_path_factory: pytest.TempPathFactory) -> minting.TestRoot:
    """The private Sigstore instance the suite mints with, and its trusted_root.json on disk."""
    root = minting.TestRoot("mcpbox-test")
    root.write(tmp_path_factory.mktemp("roots"))
    return root


@pytest.fixture(scope="session")
def other_root(tmp_path_factory: pytest.TempPathFactory) -> minting.TestRoot:
    """A second, unrelated instance: its bundles must not verify against the first."""
    root = minting.TestRoot("other-test")
    root.write(tmp_path_factory.mktemp("roots"))
    return root


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_profile(path: Path, verify: dict[str, str], **sections: dict[str, Any]) -> Path:
    lines = ["[verify]", *(f"{key} = {toml_value(value)}" for key, value in verify.items())]
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root
