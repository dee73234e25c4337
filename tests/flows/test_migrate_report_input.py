"""`baseimage migrate --report FILE` with a file that is not a review report: one line naming the
file and what to pass, exit 2, and no flow run started (so no traceback in its logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseimage.cli import main
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"findings": []}), "not a review report (no images list)"),
        (json.dumps({"schema": 99, "images": []}), "report schema 99 is newer than this baseimage reads"),
    ],
)
def test_a_bad_report_is_one_message(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    report = tmp_path / "review.json"
    report.write_text(content)
    config = str(REPO_ROOT / "config" / "policy.yaml")
    code = main(["migrate", "--report", str(report), "--dry-run", "--config", config, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--report {report}: {message}" in err
    assert "Traceback" not in err and not list(tmp_path.glob("migrate-*.json")), "no migration ran"
