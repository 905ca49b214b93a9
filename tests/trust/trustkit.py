"""Shared pieces of the signature tests: the private test roots, signed artifacts, profiles, the audit log,
the public data's place."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import minting
from conftest import audit_lines as log_lines

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


def signed_file(root: minting.TestRoot, directory: Path, data: bytes, signer: minting.Signer = ME,
                **options: dt.timedelta) -> tuple[Path, Path]:
    """`directory`/server.py holding `data`, and beside it the bundle `sigstore sign` would make for it."""
    artifact = directory / "server.py"
    artifact.write_bytes(data)
    bundle = directory / "server.py.sigstore.json"
    bundle.write_bytes(root.sign_blob(data, signer, **options))
    return artifact, bundle


def signed_tree(root: minting.TestRoot, tree: Path, files: dict[str, bytes],
                signer: minting.Signer = ME) -> tuple[Path, Path]:
    """The tree `tree` holding `files`, and beside it a bundle signing the statement that lists them."""
    write_tree(tree, files)
    bundle = tree.with_name(f"{tree.name}.sigstore.json")
    bundle.write_bytes(root.sign_statement(minting.tree_statement(files), signer))
    return tree, bundle


def verify_fields(root: minting.TestRoot, artifact: Path, bundle: Path, signer: minting.Signer = ME,
                  **changes: str | None) -> dict[str, str]:
    """A [verify] section trusting `signer` under `root`; a change to None leaves that key out."""
    fields = {"artifact": str(artifact), "bundle": str(bundle), "identity": signer.identity,
              "issuer": signer.issuer, "trusted_root": str(root.path), **changes}
    return {key: value for key, value in fields.items() if value is not None}


def audit_lines(event: str | None = None) -> list[dict[str, object]]:
    """This test's audit log, or only its lines of `event` (a run's log holds the relay's lines too)."""
    lines = log_lines(Path(os.environ["XDG_STATE_HOME"]) / "mcpbox" / "audit.jsonl")
    return [line for line in lines if event is None or line.get("event") == event]
