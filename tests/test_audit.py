"""The audit log: JSON lines, flushed per line, private, rotated by size."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from conftest import audit_lines
from mcpbox.audit import AuditLog


def test_each_decision_is_one_flushed_json_line(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "state" / "audit.jsonl"))
    log.write(direction="client", method="tools/call", decision="deny", rule="tools.deny")
    # Read before close: a crash after write() must lose nothing.
    lines = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert record["decision"] == "deny" and record["time"].endswith("Z")
    assert stat.S_IMODE(os.stat(tmp_path / "state" / "audit.jsonl").st_mode) == 0o600
    log.close()


def test_rotation_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=200, keep=2)
    for index in range(40):
        log.write(index=index, padding="x" * 40)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["index"] == 39


def test_unwritable_log_warns_once_and_does_not_raise(tmp_path: Path, capfd) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = AuditLog(str(blocker / "audit.jsonl"))
    log.write(a=1)
    log.write(a=2)
    assert capfd.readouterr().err.count("cannot write the audit log") == 1


def test_audit_rotation_keeps_writing(tmp_path):
    log = AuditLog(str(tmp_path / "a.jsonl"), max_bytes=300, keep=2)
    for index in range(20):
        log.write(direction="client", decision="allow", index=index)
    log.close()
    assert os.path.exists(tmp_path / "a.jsonl.1") and not os.path.exists(tmp_path / "a.jsonl.3")
    last = audit_lines(tmp_path / "a.jsonl")
    assert last[-1]["index"] == 19
