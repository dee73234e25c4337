"""The rollback's record is typed (#15): each environment put back, the code revert and the whole
record are values (tasks/deploy/rollback_record.py) whose JSON is the shape ``rollback.json``, the
rollback flow's result and a migration's ``migrate-<run>.json: rollback`` have always had; a
record an earlier run wrote reads back equal, and a file that is not one is a message naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.deploy.rollback_record import CodeRevert, EnvironmentRestore, RollbackRecord
from tasks.errors import ConfigError

# As the untyped rollback flow wrote them (keys in the file's order).
RESTORED = {
    "environment": "staging",
    "from": "training:new (0123456789ab)",
    "logs": "/state/rollbacks/r1/staging-logs-1.txt",
    "log_tail": ["ready"],
    "action": "restored",
    "to": "training:old (ba9876543210)",
    "health": "ok",
}
FAILED = {"environment": "production", "action": "FAILED", "error": "production: restoring x did not end healthy"}
RECORD = {
    "id": "migrate-abc",
    "reason": "staging soak: failed",
    "runs": ["20261201T000000000000Z"],
    "environments": [RESTORED, FAILED],
    "code": {"action": "none: baseimage/cuda-12.9.1 is not merged into main; main is unchanged", "branch": "b"},
    "incident": "/state/incidents/migrate-abc.md",
}


def test_the_record_keeps_the_shape_it_always_had() -> None:
    record = RollbackRecord.from_json({**RECORD, "record": "/state/rollbacks/migrate-abc/rollback.json"}, "r")
    assert [r.action for r in record.environments] == ["restored", "FAILED"]
    assert json.dumps(record.to_json()) == json.dumps(RECORD), "same keys, same order, same values"
    assert record.result() == {**RECORD, "record": "/state/rollbacks/migrate-abc/rollback.json"}
    assert record.summary == (
        "staging restored; production FAILED; code: none: baseimage/cuda-12.9.1 is not merged into main; main is unchanged"
    )
    assert CodeRevert("reverted", "baseimage/rollback-x", "sha").to_json() == {
        "action": "reverted",
        "branch": "baseimage/rollback-x",
        "commit": "sha",
    }
    assert CodeRevert("none: no migration commit given").to_json() == {"action": "none: no migration commit given"}
    assert EnvironmentRestore.failed("production", FAILED["error"]).to_json() == FAILED


def test_a_rollback_that_itself_failed_is_said_as_before() -> None:
    failed = RollbackRecord("migrate-abc", "why", error="Crashed: worker died")
    assert failed.result() == {"error": "Crashed: worker died"}
    assert RollbackRecord.from_json({"error": "Crashed: worker died"}, "r").error == "Crashed: worker died"


@pytest.mark.parametrize("data", [["not", "a", "record"], {"reason": "no id"}])
def test_a_file_that_is_not_a_record_names_itself(tmp_path: Path, data: object) -> None:
    path = tmp_path / "rollback.json"
    with pytest.raises(ConfigError, match=f"{path}: not a rollback record"):
        RollbackRecord.from_json(data, str(path))
