"""The [verify] section: one policy form or the other, each complete, or the profile is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpbox import profile
from mcpbox.errors import ProfileError

PATHS = "artifact = '/opt/srv'\nbundle = '/opt/srv.sigstore.json'\n"
GHA = "issuer = 'https://token.actions.githubusercontent.com'\n"


@pytest.mark.parametrize(("body", "problem"), [
    (PATHS + GHA, "verify: give exactly one of 'identity' (an exact signer) or 'repository'"),
    (PATHS + GHA + "identity = 'a@b.c'\nrepository = 'o/r'\n", "verify: give exactly one of 'identity'"),
    (PATHS + "identity = 'a@b.c'\n", "verify.issuer: required key is missing"),
    (PATHS + GHA + "identity = 'a@b.c'\nref = 'refs/tags/*'\n", "verify.ref: only applies with 'repository'"),
    (PATHS + GHA + "identity = 'a@b.c'\nworkflow = 'release.yml'\n", "verify.workflow: only applies with"),
    (PATHS + GHA + "repository = 'just-a-name'\n", "verify.repository: 'just-a-name' is neither"),
    (PATHS + GHA + "repository = 'o/r'\nref = 'v1.*'\n", "verify.ref: 'v1.*' is not a git ref glob"),
    (PATHS + GHA + "identity = ''\n", "verify.identity: must not be empty"),
    ("artifact = 'srv'\nbundle = '/b'\nidentity = 'a@b.c'\n" + GHA, "verify.artifact: 'srv' is relative"),
    (PATHS + GHA + "identity = 'a@b.c'\ntrusted_root = 'root.json'\n", "verify.trusted_root: 'root.json' is relative"),
])
def test_an_incomplete_or_mixed_policy_is_refused(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[verify]\n" + body)
    with pytest.raises(ProfileError) as caught:
        profile.load(str(path))
    assert str(caught.value).startswith(f"profile {path}: {problem}")


@pytest.mark.parametrize("body", [
    PATHS + GHA + "identity = 'https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1'\n",
    PATHS + GHA + "repository = 'o/r'\n",
    PATHS + GHA + "repository = 'https://github.com/o/r'\nworkflow = 'release.yml'\nref = 'refs/tags/*'\n",
    "artifact = '~/mcp/srv'\nbundle = '~/mcp/srv.json'\nidentity = 'a@b.c'\ntrusted_root = '~/root.json'\n" + GHA,
])
def test_complete_policies_validate(tmp_path: Path, body: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[verify]\n" + body)
    assert profile.load(str(path)).profile.verify is not None
