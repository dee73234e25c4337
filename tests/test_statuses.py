"""Statuses are enums (#15): one module (tasks/statuses.py) says what each can be; a member writes
its documented string to JSON and Markdown, so files on disk keep their shape; a file or answer
holding a status the product never writes is a message naming where it was read, not a status
nobody handles; and no product module declares a status as a free string set of its own."""

from __future__ import annotations

import ast
import enum
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from tasks import statuses
from tasks.deploy.approvals import ApprovalRecord, Approvals
from tasks.deploy.ledger import Deployment, ImageRecord, Ledger
from tasks.errors import ConfigError
from tasks.research.consumers import ConsumerPlan
from tasks.statuses import CheckStatus, DeploymentStatus, StatusError, parse
from tasks.validation import ValidationReport
from tests.conftest import REPO_ROOT

ENUMS = [
    v for v in vars(statuses).values() if isinstance(v, type) and issubclass(v, enum.StrEnum) and v is not enum.StrEnum
]
PRODUCT = ("baseimage", "flows", "tasks", "services", "deployments")


def test_every_status_writes_its_documented_string() -> None:
    assert {e.__name__ for e in ENUMS} >= {
        "CheckStatus",
        "SupportStatus",
        "PlanAction",
        "ConsumerAction",
        "SoakStatus",
        "DeploymentStatus",
        "DecisionOutcome",
        "ApprovalKind",
        "LookupStatus",
    }
    for kind in ENUMS:
        for member in kind:
            assert json.dumps({"status": member}) == json.dumps({"status": member.value})
            assert f"{member}" == member.value and member == member.value


def test_a_status_the_product_never_writes_is_a_message_naming_where() -> None:
    assert parse(CheckStatus, "skipped", "x") is CheckStatus.SKIPPED
    with pytest.raises(
        StatusError, match=r"check gpu-detect: 'ok' is not a CheckStatus \(one of: passed, failed, skipped\)"
    ):
        ValidationReport.from_summaries(
            [{"checks": [{"name": "gpu-detect", "status": "ok", "message": ""}]}], "subflow"
        )
    assert issubclass(StatusError, ConfigError), "bad input: the command prints it, never a traceback"
    with pytest.raises(StatusError, match="consumer inference: action: 'maybe' is not a ConsumerAction"):
        ConsumerPlan.from_json(
            {"decisions": [{"consumer": "inference", "version": "1.20.0", "action": "maybe", "reason": ""}]}
        )


def test_ledgers_read_back_as_enums_and_name_their_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, "staging")
    ledger.append(Deployment("staging", DeploymentStatus.DEPLOYED, ImageRecord("training:1"), None))
    (record,) = ledger.history()
    assert record.status is DeploymentStatus.DEPLOYED
    assert json.loads(ledger.path.read_text())["history"][0]["status"] == "deployed", "the file's shape is unchanged"
    data = json.loads(ledger.path.read_text())
    data["history"][0]["status"] = "done"
    ledger.path.write_text(json.dumps(data))
    with pytest.raises(StatusError, match=rf"{ledger.path}: deployment at .*: 'done' is not a DeploymentStatus"):
        ledger.history()

    approvals = Approvals(tmp_path, "production")
    approvals.record(ApprovalRecord("production", "training:1", None, "ana"))
    (approval,) = approvals.all()
    assert approval.kind is statuses.ApprovalKind.APPROVAL
    body = json.loads(approvals.path.read_text())
    assert body["approvals"][0] == asdict(approval) and body["approvals"][0]["kind"] == "approval"


def _status_literals(path: Path) -> list[str]:
    """Literal[...] annotations whose strings are all values of one status enum."""
    sets = [{m.value for m in kind} for kind in ENUMS]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            values = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
            if len(values) >= 2 and any(values <= s for s in sets):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: Literal{sorted(values)}")
    return found


def test_no_module_declares_a_status_as_a_free_string_set() -> None:
    found = [
        hit for package in PRODUCT for path in (REPO_ROOT / package).rglob("*.py") for hit in _status_literals(path)
    ]
    assert not found, "use the enum in tasks/statuses.py:\n" + "\n".join(found)
