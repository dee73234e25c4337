"""The review report read back for a migration (tasks/research/report_model.py): typed once at
the boundary, versioned, and a file that is not a report (or is from a newer baseimage) is a
message naming it, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tasks.errors import ConfigError
from tasks.research.report_model import REPORT_SCHEMA, ReviewReport

IMAGE = {
    "image": "training",
    "file": "dockerfiles/training/Dockerfile",
    "current": "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
    "target": "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
    "recommended": True,
    "reasons": ["12.6 is EOL"],
    "plan": {
        "action": "migrate",
        "changes": {"variant": "cu129", "torch": "2.13.0+cu129"},
        "dockerfile_changes": {"cupy_version": "14.2.0"},
        "matrix": [{"cuda": "12.9.1", "torch": "2.13.0"}],
    },
}


def test_a_report_reads_as_typed_values() -> None:
    report = ReviewReport.from_json({"schema": REPORT_SCHEMA, "images": [IMAGE], "files": {"json": "r.json"}})
    (image,) = report.images
    assert image.planned_target == "nvidia/cuda:12.9.1-runtime-ubuntu22.04" and image.recommended
    assert image.changes.torch == "2.13.0+cu129" and not image.coupled_later
    assert image.dockerfile_changes.cupy_version == "14.2.0"
    assert report.matrix == ({"image": "training", "cuda": "12.9.1", "torch": "2.13.0"},), "from the plans"
    assert report.source == "r.json" and report.schema == REPORT_SCHEMA


def test_a_report_before_versioning_still_reads() -> None:
    legacy = {**IMAGE, "plan": {"torch": {"variant": "cu129", "torch": "2.8.0"}}}
    (image,) = ReviewReport.from_json({"images": [legacy]}).images
    assert image.changes.torch == "2.8.0" and image.coupled_later, "pins coupled again at migrate time"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema": REPORT_SCHEMA + 1, "images": []}, f"report schema {REPORT_SCHEMA + 1} is newer"),
        ({"findings": []}, "not a review report (no images list)"),
        ({"images": [{"file": "x"}]}, "images[0]: KeyError: 'image'"),
        ({"images": [{**IMAGE, "plan": "move"}]}, "images[0]: TypeError: plan is not an object"),
        (
            {"images": [{**IMAGE, "plan": {**IMAGE["plan"], "action": "move"}}]},
            "images[0]: action: 'move' is not a PlanAction (one of: migrate, update-pins, none, error)",
        ),
        (
            {
                "images": [
                    {
                        **IMAGE,
                        "plan": {
                            **IMAGE["plan"],
                            "consumers": {
                                "decisions": [
                                    {"consumer": "inference", "version": "1.20.0", "action": "maybe", "reason": ""}
                                ]
                            },
                        },
                    }
                ]
            },
            "r.json: images[0]: consumer inference: action: 'maybe' is not a ConsumerAction",
        ),
    ],
)
def test_what_is_not_a_report_says_so(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ReviewReport.from_json(data, "r.json")


def test_reading_a_file_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "review.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=f"--report {bad}: not JSON"):
        ReviewReport.read(bad)
    with pytest.raises(ConfigError, match="cannot read it"):
        ReviewReport.read(tmp_path / "missing.json")
    bad.write_text(json.dumps({"schema": REPORT_SCHEMA, "images": [IMAGE]}))
    assert ReviewReport.read(bad).source == str(bad)
