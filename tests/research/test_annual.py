"""Annual plans carry the coupled stack for their target, not only the FROM (pure)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tasks.research.annual import plan_cuda_image
from tasks.research.annual_model import AnnualImage
from tasks.research.annual_report import annual_markdown
from tasks.research.facts import load_facts
from tasks.research.report_model import ReviewReport
from tasks.update.plans import from_report
from tests.research.test_planner import TAGS, index_answers

FACTS = load_facts()


def pythons_with_torch(variant: str) -> list[tuple[str, str]]:
    """What the annual flow's index lookup answers: (python, newest torch) for one variant."""
    found = []
    for python in ("3.14", "3.13", "3.12", "3.11", "3.10"):
        versions = index_answers(python).get(variant)
        if versions:
            found.append((python, max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))))
    return found


def annual(reference: str, name: str = "training", python: str = "3.11") -> AnnualImage:
    """The annual answers for one image of the fixture fleet (R535, no major upgrade) on 2026-11-28."""
    return plan_cuda_image(
        name,
        "dockerfiles/training/Dockerfile",
        reference,
        TAGS,
        FACTS,
        date(2026, 11, 28),
        fleet_min_driver=535,
        allow_major=False,
        unsupported={},
        pythons_with_torch=pythons_with_torch,
        python=python,
    )


@pytest.mark.parametrize(
    ("python", "torch", "variant"),
    [("3.11", "2.13.0", "cu126"), ("3.14", "2.13.0", "cu126")],
)
def test_annual_plan_carries_the_coupled_stack(python: str, torch: str, variant: str) -> None:
    """Regression: annual plans applied with `migrate --report` moved only the FROM."""
    result = annual("nvidia/cuda:12.6.0-runtime-ubuntu22.04", python=python)
    assert result.target == "nvidia/cuda:12.9.1-runtime-ubuntu24.04"
    stack = result.to_json()["plan"]
    assert stack["torch"]["torch"] == torch and stack["torch"]["variant"] == variant
    assert (stack["cupy_package"], stack["cupy_version"], stack["onnxruntime_gpu"]) == (
        "cupy-cuda12x",
        "14.2.0",
        "1.26.0",
    )
    assert "changes" not in stack, "the pins depend on the requirements file: migrate --report couples them"
    assert any(
        r.startswith(f"stack for CUDA 12.9.1: torch {torch} + torchvision 0.28.0 from {variant}")
        for r in result.reasons
    )
    image = {**result.to_json(), "file": "dockerfiles/training/Dockerfile"}
    plan = from_report(ReviewReport.from_json({"images": [image]}), {"training": "ml.txt"})
    assert plan is not None and plan.changes[0].changes.torch == torch and plan.changes[0].changes.variant == variant


def test_the_annual_report_is_one_typed_value_that_migrate_reads(tmp_path: Path) -> None:
    """The file `migrate --report` reads and the report's own `review_report` are one plan."""
    import json

    from tasks.research.annual_report import AnnualReport

    due = annual("nvidia/cuda:12.6.0-runtime-ubuntu22.04")
    fine = annual("nvidia/cuda:12.9.1-runtime-ubuntu24.04", name="training-cuda129")
    report = AnnualReport(date(2026, 11, 28), "test", 535, [due, fine], errors=["x: not reachable"])
    assert report.recommended and report.due == [due] and report.year == 2026
    # Corrected: this expected the outcome to say nothing of the lookup that failed.
    assert report.outcome == (
        "upgrade due: training 12.6.0-runtime-ubuntu22.04 → 12.9.1-runtime-ubuntu24.04; "
        "incomplete: 1 lookup failed (the report's Not checked)"
    )
    report.files = {"json": str(tmp_path / "annual-2026.json"), "markdown": str(tmp_path / "annual-2026.md")}
    Path(report.files["json"]).write_text(json.dumps(report.to_json(), default=str))
    read = ReviewReport.read(Path(report.files["json"]))
    assert read == report.review_report()
    assert [(i.image, i.target, i.recommended, i.coupled_later) for i in read.images] == [
        ("training", "nvidia/cuda:12.9.1-runtime-ubuntu24.04", True, True),
        ("training-cuda129", None, False, True),
    ]
    plan = from_report(read, {"training": "ml.txt", "training-cuda129": "ml.txt"})
    assert plan is not None and [c.image for c in plan.changes] == ["training"]
    assert f"baseimage migrate --report {report.files['json']}" in annual_markdown(report)
    assert not AnnualReport(date(2026, 11, 28), "test", 535, [fine]).recommended


def test_an_annual_report_with_lookups_it_could_not_make_never_says_no_upgrade_is_due() -> None:
    """Regression: a registry lookup failed, the report listed it under "Not checked", and its
    outcome still said "no upgrade due: 1 images checked" (exit 0): an all-clear for what was not
    seen."""
    from tasks.research.annual_report import AnnualReport

    fine = annual("nvidia/cuda:12.9.1-runtime-ubuntu24.04", name="training-cuda129")
    assert AnnualReport(date(2026, 11, 28), "test", 535, [fine]).outcome == "no upgrade due: 1 image checked"
    report = AnnualReport(date(2026, 11, 28), "test", 535, [fine], errors=["a: not reachable", "b: not reachable"])
    assert not report.complete and not report.recommended
    assert report.outcome == (
        "incomplete: no upgrade due among what could be checked (1 image); 2 lookups failed (the report's Not checked)"
    )
    assert report.to_json()["complete"] is False


def test_a_cudnn8_image_moves_to_the_cudnn_tag_nvidia_publishes() -> None:
    """Regression: the annual update looked for 12.9.1-cudnn8-..., which NVIDIA never published
    (cuDNN images are ``cudnn`` from 12.4.1), so a cudnn8 image was never due."""
    result = annual("nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04")
    assert result.cuda_path.newest_on_major == "12.9.1"
    assert result.recommended and result.target == "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04"
    assert any(r.startswith("the cuDNN major changes 8 -> 9 (cudnn8 -> cudnn)") for r in result.reasons)
