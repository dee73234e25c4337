"""The key facts pinned to their reference values (so a bad edit of config/data fails here), each
row's provenance, and the checks on a row without one."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from tasks.errors import ConfigError
from tasks.research.facts import DATA_DIR, FILES, load_facts
from tests.conftest import REPO_ROOT

FACTS = load_facts()
REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "cuda-ecosystem-facts.md"


@pytest.mark.parametrize(
    ("branch", "kind", "eol", "text"),
    [
        (470, "LTSB", date(2024, 7, 1), "July 2024"),
        (535, "LTSB", date(2026, 6, 1), "June 2026"),
        (550, "PB", date(2025, 2, 1), "February 2025"),
        (570, "PB", date(2026, 2, 1), "February 2026"),
        (580, "LTSB", date(2028, 8, 1), "August 2028"),
        (575, None, None, "no date published"),
    ],
)
def test_driver_branch_end_of_life(branch: int, kind: str | None, eol: date | None, text: str) -> None:
    row = FACTS.driver_branches[branch]
    assert (row.kind, row.eol, row.eol_text) == (kind, eol, text)
    assert row.provenance is not None
    assert "docs.nvidia.com" in row.provenance.source or "container_tags" in row.provenance.source


def test_two_majors_rule_wording_and_date() -> None:
    assert FACTS.majors_at_a_time == 2
    assert '"11 will be marked EOL, after 13 is released"' in FACTS.major_support_wording
    assert FACTS.major_support is not None and "support-policy.md" in FACTS.major_support.source
    first = FACTS.major_releases[13]
    assert (first.release, first.released) == ("13.0.0", date(2025, 8, 9))


@pytest.mark.parametrize(
    ("cuda", "driver"),
    [
        ("12.2.2", "535.104.05"),
        ("12.6.3", "560.35.05"),
        ("12.8.1", "570.124.06"),
        ("12.9.1", "575.57.08"),
        ("13.0.0", "580.65.06"),
        ("13.0.2", "580.95.05"),
        ("13.1.0", "590.44.01"),
        ("13.2.2", "595.71.05"),
    ],
)
def test_toolkit_drivers(cuda: str, driver: str) -> None:
    assert FACTS.toolkit_min_driver[cuda] == driver


def test_minor_version_compatibility_floors() -> None:
    assert FACTS.mvc_floor == {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}


@pytest.mark.parametrize(
    ("version", "cuda", "cudnn"),
    [
        ("1.17.1", 11, 8),
        ("1.18.1", 11, 8),
        ("1.19.0", 12, 9),
        ("1.20.1", 12, 9),  # between two CUDA 12 rows: the same build
        ("1.23.2", 12, 9),
        ("1.26.0", 12, 9),
        ("1.27.0", 13, 9),
        ("1.31.1", 13, 9),
    ],
)
def test_onnxruntime_builds(version: str, cuda: int, cudnn: int) -> None:
    build = FACTS.ort_build(version)
    assert build is not None and (build.cuda, build.cudnn) == (cuda, cudnn)


def test_onnxruntime_rows_reach_the_newest_confirmed_release() -> None:
    newest = max(FACTS.ort_releases, key=lambda r: tuple(int(p) for p in r.version.split(".")))
    assert newest.version == "1.31.1" and newest.provenance and newest.provenance.as_of == date(2026, 12, 1)
    assert FACTS.ort_build("1.32.0") is None, "newer than every row: the facts do not claim a build"
    assert (FACTS.ort_for(11), FACTS.ort_for(12), FACTS.ort_for(13)) == ("1.18.1", "1.26.0", "1.31.1")


@pytest.mark.parametrize(
    ("minor", "package", "version"),
    [
        ((11, 8), "cupy-cuda11x", "13.6.0"),
        ((12, 9), "cupy-cuda12x", "14.2.0"),
        ((13, 0), "cupy-cuda13x", "14.2.0"),
        ((13, 3), None, None),
    ],
)
def test_cupy_support(minor: tuple[int, int], package: str | None, version: str | None) -> None:
    assert FACTS.cupy_for(minor) == (package, version)


def test_support_list_and_ngc_rows() -> None:
    assert FACTS.eol["12.6.0"].estimated_deletion == date(2025, 3, 5)
    assert FACTS.eol["11.3.1"].reason == "last supported TRD end-of-life"
    assert FACTS.eol["13.0.1"].reason == "newer version available"
    assert FACTS.cudnn_of_extra == {"cudnn8": 8, "cudnn9": 9, "cudnn": 9}
    assert FACTS.ngc_releases["25.12"].cuda == "13.1.0" and FACTS.ngc_releases["25.04"].cuda == "12.9.0"


def test_every_row_names_its_source_and_date() -> None:
    rows = [
        *FACTS.eol.values(),
        *FACTS.cupy_releases,
        *FACTS.ort_releases,
        *FACTS.torch_releases,
        *FACTS.ubuntu.values(),
        *FACTS.driver_branches.values(),
        *FACTS.major_releases.values(),
        *FACTS.ngc_releases.values(),
    ]
    for row in rows:
        assert row.provenance is not None and row.provenance.source, row
        assert date(2024, 1, 1) <= row.provenance.as_of <= date(2026, 12, 31), row


@pytest.mark.skipif(not REFERENCE.exists(), reason="the shared reference lives in ../shared, beside a checkout")
def test_facts_agree_with_the_shared_reference() -> None:
    text = " ".join(REFERENCE.read_text(encoding="utf-8").split())
    assert "R535 LTSB EOL 2026-06-01" in text and "R470 LTSB EOL 2024-07-01" in text
    assert "R580 LTSB EOL August 2028" in text and "R570 Production Branch EOL February 2026" in text
    assert '"11 will be marked EOL, after 13 is released"' in text
    for cuda, label in (("12.9.1", "12.9 U1"), ("13.0.0", "13.0 GA"), ("12.6.3", "12.6 U3"), ("13.1.0", "13.1 GA")):
        assert re.search(rf"\| {re.escape(label)} \| >={re.escape(FACTS.toolkit_min_driver[cuda])} \|", text), cuda
    assert "Release 25.12 is based on CUDA 13.1.0" in text
    assert "v13.6.0 | 2025-08-18 | 11.2\u201311.8, 12.0\u201312.9, 13.0" in text  # en dashes, as written there


@pytest.mark.parametrize("name", FILES)
def test_a_row_without_source_or_date_is_refused(tmp_path: Path, name: str) -> None:
    for other in FILES:
        shutil.copy(DATA_DIR / f"{other}.yaml", tmp_path / f"{other}.yaml")
    path = tmp_path / f"{name}.yaml"
    text = path.read_text()
    broken = re.sub(r", as_of: \d{4}-\d{2}-\d{2}\}", "}", text, count=1)
    assert broken != text, f"{name} has rows with as_of"
    path.write_text(broken)
    with pytest.raises(ConfigError, match=rf"{name}\.yaml: \w+\[\d+\] .* needs 'as_of' as a date"):
        load_facts(tmp_path)
