"""The watch's judgements as tables (unit tier): NVIDIA's list, the newer-patch rule, the flag,
the banner, the deletion date, a re-pushed tag's requirement change and fleet fit, and the
fleet's driver branch."""

from __future__ import annotations

from datetime import date

import pytest

from tasks.monitoring.findings import (
    ReleaseSignals,
    Repush,
    Severity,
    Where,
    admits,
    days_severity,
    driver_branch_finding,
    newest_patch,
    release_findings,
    repush_finding,
    requirement_change,
)
from tasks.research.facts import load_facts

FACTS = load_facts()
TODAY = date(2026, 12, 1)
HERE = Where("staging", "svc-1", "nvidia/cuda:12.6.0-runtime-ubuntu22.04")
REQ_126 = "cuda>=12.6 brand=tesla,driver>=470,driver<471 brand=tesla,driver>=535,driver<536 brand=tesla,driver>=550,driver<551"


@pytest.mark.parametrize(
    ("cuda", "listed", "flag", "banner", "newer", "kinds"),
    [
        ("12.6.0", False, False, (), "12.6.3", ["newer-patch", "deletion-date"]),  # NVIDIA's way: no flag
        ("12.6.0", True, False, (), None, ["nvidia-eol", "deletion-date"]),
        (
            "12.1.0",
            True,
            True,
            ("** DEPRECATION NOTICE! **",),
            None,
            ["nvidia-eol", "eol-flag", "banner", "deletion-date"],
        ),
        ("12.6.3", False, False, (), None, []),
        ("12.9.1", False, False, (), None, []),
        ("13.0.0", True, False, (), "13.0.2", ["nvidia-eol", "newer-patch"]),  # EOL, no deletion date known
    ],
)
def test_release_findings(
    cuda: str, listed: bool, flag: bool, banner: tuple[str, ...], newer: str | None, kinds: list[str]
) -> None:
    unsupported = {cuda: "newer version available"} if listed else {}
    signals = ReleaseSignals(cuda, unsupported, "test list", flag, banner, newer)
    found = release_findings(HERE, signals, FACTS, TODAY)
    assert [f.kind for f in found] == kinds
    assert all(f.deprecated for f in found if f.kind != "deletion-date")


def test_the_deletion_date_says_days_left_and_is_critical_when_past() -> None:
    (_, deletion) = release_findings(HERE, ReleaseSignals("12.6.0", {}, "", False, (), "12.6.3"), FACTS, TODAY)
    assert deletion.estimated_deletion == date(2025, 3, 5) and deletion.days_left == -636
    assert deletion.severity is Severity.CRITICAL
    assert "2025-03-05 (636 days ago)" in deletion.message


@pytest.mark.parametrize(
    ("days", "severity"), [(-5, "critical"), (30, "critical"), (31, "warning"), (90, "warning"), (91, "info")]
)
def test_days_severity(days: int, severity: str) -> None:
    assert days_severity(days).label == severity


@pytest.mark.parametrize(
    ("current", "tags", "newest"),
    [
        ("12.6.0", [(12, 6, 0), (12, 6, 3), (12, 6, 1), (12, 8, 1)], "12.6.3"),
        ("12.6.3", [(12, 6, 0), (12, 6, 3), (12, 8, 1)], None),
        ("12.6.0", [(12, 8, 0)], None),  # a newer minor is not a newer patch
        ("bad", [(12, 6, 3)], None),
    ],
)
def test_newest_patch(current: str, tags: list[tuple[int, int, int]], newest: str | None) -> None:
    assert newest_patch(current, tags) == newest


@pytest.mark.parametrize(
    ("require", "branch", "ok"),
    [
        (REQ_126, 535, True),  # listed for forward compatibility
        ("cuda>=12.6 brand=tesla,driver>=470,driver<471", 535, False),  # R535 drives CUDA 12.2
        ("cuda>=12.6 brand=tesla,driver>=470,driver<471", 560, True),  # natively
        ("cuda>=12.2", 535, True),
        ("cuda>=13.0", 575, False),
        (None, 470, True),
        ("cuda>=12.6 nonsense", 535, False),
    ],
)
def test_admits(require: str | None, branch: int, ok: bool) -> None:
    assert admits(require, branch, FACTS)[0] is ok


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (REQ_126, REQ_126.replace(" brand=tesla,driver>=535,driver<536", ""), "driver branch R535 dropped"),
        (REQ_126, REQ_126.replace("cuda>=12.6", "cuda>=12.8"), "cuda>=12.6 -> cuda>=12.8"),
        (
            "cuda>=12.6",
            "cuda>=12.6 brand=tesla,driver>=535,driver<536 brand=grid,driver>=550,driver<551",
            "driver branches R535, R550 added",
        ),
        ("cuda>=12.6 arch=x86_64", "cuda>=12.6 arch=aarch64", "removed arch=x86_64; added arch=aarch64"),
    ],
)
def test_requirement_change(old: str, new: str, said: str) -> None:
    assert requirement_change(old, new) == said


def test_a_re_push_the_fleet_still_runs_is_a_warning() -> None:
    new = REQ_126.replace(" brand=tesla,driver>=470,driver<471", "")
    repush = Repush(
        "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
        "sha256:" + "a" * 64,
        "the deployment ledger",
        "sha256:" + "b" * 64,
        {"NVIDIA_REQUIRE_CUDA": REQ_126, "CUDA_VERSION": "12.6.3"},
        {"NVIDIA_REQUIRE_CUDA": new, "CUDA_VERSION": "12.6.3"},
    )
    found = repush_finding(HERE, repush, 535, FACTS)
    assert found.severity is Severity.WARNING and found.kind == "tag-repushed" and not found.deprecated
    assert "driver branch R470 dropped" in found.message
    assert "the fleet (R535) still runs it (brand=tesla,driver>=535,driver<536)" in found.message


@pytest.mark.parametrize(
    ("branch", "today", "severity", "text"),
    [
        (535, TODAY, "critical", "ended 2026-06-01 (183 days ago)"),
        (535, date(2026, 5, 2), "critical", "ends 2026-06-01 (in 30 days)"),
        (535, date(2026, 5, 1), "warning", "ends 2026-06-01 (in 31 days)"),
        (535, date(2026, 3, 15), "warning", "ends 2026-06-01 (in 78 days)"),
        (535, date(2026, 1, 1), None, ""),
        (580, TODAY, None, ""),
        (560, TODAY, "critical", "R560 is end of life"),  # listed as EOL without a date
        (515, TODAY, "critical", "not listed by NVIDIA, so end of life by its rule"),
        (610, TODAY, None, ""),  # newer than anything listed: unknown, not EOL
    ],
)
def test_driver_branch_finding(branch: int, today: date, severity: str | None, text: str) -> None:
    found = driver_branch_finding(branch, FACTS, today)
    if severity is None:
        assert found is None
    else:
        assert found is not None and found.severity.label == severity and text in found.message, found
        assert (found.environment, found.image) == ("fleet", f"R{branch}")
        assert "as of" in found.message, "the finding cites the facts' source and date"
