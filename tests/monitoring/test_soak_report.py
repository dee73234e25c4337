"""The soak's report is a typed value between the phases (#15): the soak-monitor flow returns its
JSON (the shape the migration's outcome has always carried), the deployment phase reads it back
once, and the production approval reads its fields; a result that is not a soak report, or whose
status the product never writes, is a message naming the run, never a KeyError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tasks.errors import ConfigError
from tasks.monitoring.metrics import last_soak_verdicts
from tasks.monitoring.soak import Sample, Thresholds, evaluate
from tasks.monitoring.soak_report import SoakReport
from tasks.statuses import SoakStatus
from tasks.update.approval_text import production_description
from tasks.update.plan import ImageChange, MigrationPlan
from tasks.validation import CheckOutcome, ValidationReport

# The keys the soak-monitor flow returned before it was typed (the migrate-*.json "soak" object).
SHAPE = {"run", "environment", "window", "expected", "slots", "samples", "missed", "gaps", "coverage", "status",
         "reasons", "store"}  # fmt: skip


def window(missed: set[int], slots: int = 10) -> SoakReport:
    samples = [
        Sample(
            i,
            "2026-12-01T00:00:00+00:00",
            None if i in missed else True,
            None if i in missed else 5.0,
            missed=i in missed,
        )
        for i in range(slots)
    ]
    verdict = evaluate(samples, 10, Thresholds(min_coverage=0.8, on_low_coverage="fail"))
    return SoakReport.of(verdict, "staging", "w1", 10, slots, "/state/soak/staging-w1.jsonl", "run-1")


def test_the_report_keeps_its_shape_and_reads_back_equal() -> None:
    report = window({3, 4})
    assert report.status == SoakStatus.PASSED and report.passed
    assert set(report.to_json()) == SHAPE and report.to_json()["status"] == "passed"
    assert report.to_json()["gaps"] == [[3, 4]]
    charted = SoakReport.from_json({**report.to_json(), "chart": "/state/soak/staging-w1.png"}, "soak-monitor run x")
    assert charted.chart == "/state/soak/staging-w1.png" and set(charted.to_json()) == SHAPE | {"chart"}
    assert SoakReport.from_json(report.to_json(), "soak-monitor run x") == report
    assert report.coverage_line() == "8 samples in 10 of 10 slots (80% coverage, 2 missed)"


def test_a_window_short_of_coverage_or_still_running_is_not_passed() -> None:
    assert window({1, 2, 3}).status == SoakStatus.FAILED
    running = window(set(), slots=4)
    assert running.status == SoakStatus.RUNNING and not running.passed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Completed", "soak-monitor run r1: not a soak report (str)"),
        ({"status": "passed"}, "soak-monitor run r1: not a soak report (KeyError"),
        ({**window(set()).to_json(), "status": "ok"}, "soak-monitor run r1: status: 'ok' is not a SoakStatus"),
    ],
)
def test_what_is_not_a_soak_report_says_so(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SoakReport.from_json(data, "soak-monitor run r1")


def test_the_production_approval_reads_the_typed_report() -> None:
    report = SoakReport.from_json({**window({3}).to_json(), "chart": "/state/soak/staging-w1.png"}, "soak run")
    plan = MigrationPlan(
        (
            ImageChange(
                "t",
                "dockerfiles/Dockerfile",
                "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
                "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
            ),
        )
    )
    validation = ValidationReport(("dockerfiles/Dockerfile",), (CheckOutcome("build", "passed", "built"),))
    text = production_description(plan, validation, "training:rel", "sha256:abc", None, report, "http://ui/runs/run-1")
    assert "### Staging soak: **passed**" in text
    assert "- 9 samples in 10 of 10 slots (90% coverage, 1 missed); store `/state/soak/staging-w1.jsonl`" in text
    assert "- chart: `/state/soak/staging-w1.png` ([the soak run's artifacts](http://ui/runs/run-1))" in text


def test_the_metrics_read_only_finished_soaks_and_skip_a_status_they_cannot_trust(tmp_path: Path) -> None:
    """The soak gauge reads each environment's newest finished soak from ``migrate-*.json``; a
    running window is no verdict, and a status the product never writes (a list, a typo) skips
    that file with a warning instead of stopping the metrics."""
    files = [
        ("migrate-1.json", {"environment": "staging", "status": "passed"}),
        ("migrate-2.json", {"environment": "staging", "status": ["passed"]}),
        ("migrate-3.json", {"environment": "staging", "status": "runing"}),
        ("migrate-4.json", {"environment": "staging", "status": "running"}),
        ("migrate-5.json", {"environment": "production", "status": "failed"}),
    ]
    for n, (name, soak) in enumerate(files):
        path = tmp_path / name
        path.write_text(json.dumps({"soak": soak}))
        os.utime(path, (1_000 + n, 1_000 + n))
    verdicts = last_soak_verdicts(tmp_path)
    assert {e: (v.status, Path(v.source).name) for e, v in verdicts.items()} == {
        "staging": (SoakStatus.PASSED, "migrate-1.json"),
        "production": (SoakStatus.FAILED, "migrate-5.json"),
    }
