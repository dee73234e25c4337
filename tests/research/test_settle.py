"""After planning (pure, on the typed reviews): one plan per shared requirements file, advisories
turned into pin bumps or reported, and what makes the review recommend (exit 10)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import pytest

from tasks.research.assembly import assemble
from tasks.research.facts import load_facts
from tasks.research.osv import Advisory
from tasks.research.review import ImageReview
from tasks.research.settle import advisory_effects
from tasks.research.stack import choose_stack
from tasks.update.requirements import read_requirements
from tests.research.test_planner import ML, plan
from tests.research.test_stack import request

FACTS = load_facts()
TORCH_ADVISORY = Advisory("GHSA-53q9-r3pm-6pq6", "torch", "2.5.1+cu126", "torch.load", "CRITICAL", ["2.6.0"])
ONNX_ADVISORY = Advisory("GHSA-onnx-0001", "onnx", "1.17.0", "", "HIGH", ["1.18.0"])


def row(name: str, tag: str, **kw: Any) -> ImageReview:
    result = plan(tag, name=name, **kw)
    return ImageReview(name, f"dockerfiles/{name}/Dockerfile", 1, result.current, plan=result)


def review(images: list[ImageReview], found: list[Advisory], shared: bool = True) -> dict[str, Any]:
    files = {i.image: ("ml.txt" if shared else f"{i.image}.txt") for i in images}
    advisories = {path: list(found) for path in set(files.values())}
    return assemble(images, advisories, files, "test", 535, "2026-12-01", FACTS).to_json()


def test_two_images_sharing_a_file_get_one_plan_for_it() -> None:
    """Regression: the last plan won, and the commit claimed pins the file did not have."""
    training = row("training", "12.6.0-runtime-ubuntu22.04")
    pinned = row("training-cuda126", "12.6.0-runtime-ubuntu22.04", pin_minor="12.6")
    report = review([training, pinned], [])
    plans = {i["image"]: i["plan"] for i in report["images"]}
    assert plans["training"]["target"].endswith("12.9.1-runtime-ubuntu22.04")
    assert plans["training-cuda126"]["target"].endswith("12.6.3-runtime-ubuntu22.04")
    assert (
        plans["training"]["changes"]
        == plans["training-cuda126"]["changes"]
        == {
            "variant": "cu126",
            "torch": "2.13.0",
            "torchvision": "0.28.0",
            "cupy_package": "cupy-cuda12x",
            "cupy_version": "14.2.0",
            "onnxruntime_gpu": "1.26.0",
        }
    )
    assert any("ml.txt is shared with training-cuda126" in r for r in plans["training"]["reasons"])
    assert report["conflicts"] == []


def test_a_shared_file_follows_the_member_that_stays_behind() -> None:
    moving = row("a", "12.6.0-runtime-ubuntu22.04")
    staying = row("b", "12.1.1-runtime-ubuntu22.04", pin_minor="12.1")
    report = review([moving, staying], [])
    plans = {i["image"]: i["plan"] for i in report["images"]}
    assert plans["a"]["changes"]["torch"] == "2.5.1" and plans["a"]["changes"]["variant"] == "cu121"
    assert plans["b"]["changes"] == plans["a"]["changes"], "b's Dockerfile stays, the file is one"


def test_two_cuda_majors_in_one_file_is_a_conflict_naming_both() -> None:
    major = row("training", "12.9.1-runtime-ubuntu22.04", fleet=580, allow_major=True)
    pinned = row("training-cuda126", "12.6.3-runtime-ubuntu22.04", pin_minor="12.6")
    report = review([major, pinned], [])
    (conflict,) = report["conflicts"]
    assert conflict.startswith(
        "ml.txt: training (CUDA 13.1.0, Python 3.11) and training-cuda126 (CUDA 12.6.3, Python 3.11) share one "
        "pinned file but need CUDA majors 12 and 13"
    )
    images = {i["image"]: i for i in report["images"]}
    assert not images["training"]["recommended"] and images["training"]["plan"]["changes"] == {}
    assert f"blocked: {conflict}" in images["training"]["reasons"]
    assert conflict in report["conflicts"] and not report["recommended"]


@pytest.mark.parametrize(
    ("advisory", "fixed", "reported"),
    [
        (TORCH_ADVISORY, {"torch": ["GHSA-53q9-r3pm-6pq6"]}, []),
        (
            ONNX_ADVISORY,
            {},
            ["advisory GHSA-onnx-0001 on onnx 1.17.0: fixed in 1.18.0, but baseimage has no compatibility"],
        ),
        (
            replace(TORCH_ADVISORY, fixed=["2.99.0"]),
            {},
            ["advisory GHSA-53q9-r3pm-6pq6 on torch 2.5.1+cu126: fixed in 2.99.0, but no release"],
        ),
        (
            replace(TORCH_ADVISORY, fixed=[]),
            {},
            ["advisory GHSA-53q9-r3pm-6pq6 on torch 2.5.1+cu126: no fixed version is published"],
        ),
    ],
)
def test_advisory_effects(advisory: Advisory, fixed: dict[str, list[str]], reported: list[str]) -> None:
    stack = choose_stack([request("12.6.3")], read_requirements(ML), FACTS)
    found, done, open_ = advisory_effects([advisory], stack)
    assert found == fixed and len(done) == len(fixed)
    assert [r[: len(p)] for r, p in zip(open_, reported, strict=True)] == reported


def test_an_advisory_with_a_compatible_fix_becomes_a_pin_bump() -> None:
    current = row("training-cuda126", "12.6.3-runtime-ubuntu22.04", pin_minor="12.6")
    assert current.to_json()["action"] == "none" and not current.recommended
    report = review([current], [TORCH_ADVISORY], shared=False)
    (image,) = report["images"]
    assert image["action"] == "update-pins" and image["recommended"] and report["recommended"]
    assert image["target"] is None and image["plan"]["changes"] == {
        "variant": "cu126",
        "torch": "2.13.0",
        "torchvision": "0.28.0",
    }
    assert any(
        r.startswith("advisory GHSA-53q9-r3pm-6pq6 on torch 2.5.1+cu126 is fixed in 2.6.0: the plan pins 2.13.0+cu126")
        for r in image["reasons"]
    )


def test_an_advisory_without_a_compatible_fix_is_reported_and_does_not_recommend() -> None:
    """Regression: an onnx advisory no plan changes made the review exit 10 every quarter."""
    current = row("training-cuda126", "12.6.3-runtime-ubuntu22.04", pin_minor="12.6")
    report = review([current], [ONNX_ADVISORY], shared=False)
    (image,) = report["images"]
    assert not image["recommended"] and not report["recommended"] and image["action"] == "none"
    assert image["advisories"] == [asdict(ONNX_ADVISORY)] and report["advisories"] == [asdict(ONNX_ADVISORY)]
    assert any("GHSA-onnx-0001" in r and "reported" in r for r in image["reasons"])


def test_the_review_reports_the_fleet_branch_and_urgent_images_first() -> None:
    fine = row("fine", "12.9.1-runtime-ubuntu22.04")
    broken = row("broken", "13.0.0-runtime-ubuntu24.04")
    report = review([fine, broken], [], shared=False)
    assert [i["image"] for i in report["images"]] == ["broken", "fine"]
    assert report["findings"][0].startswith("the fleet's driver branch R535 LTSB reached end of life on 2026-06-01")
    assert report["findings"][1].startswith("broken: URGENT: the fleet cannot run the current image")
    assert report["recommended"]


def test_a_due_but_blocked_plan_is_a_finding() -> None:
    from dataclasses import replace

    facts = replace(FACTS, ort_releases=tuple(r for r in FACTS.ort_releases if r.cuda < 13))
    blocked = plan("12.6.0-runtime-ubuntu22.04", fleet=580, allow_major=True, facts=facts, name="blocked")
    image = ImageReview("blocked", "D", 1, blocked.current, plan=blocked)
    report = assemble([image], {}, {}, "test", 580, "2026-12-01", facts).to_json()
    assert not report["recommended"]
    assert any(f.startswith("blocked: a change is due but blocked: onnxruntime-gpu 1.20.1") for f in report["findings"])


def test_the_outcome_lists_the_images_in_the_policys_order() -> None:
    """The report puts urgent images first; the run's one-line outcome (and the event's targets)
    keep the order the policy lists them in, as before the report was typed."""
    from flows.quarterly_review import _outcome

    eol, broken = row("eol", "12.6.0-runtime-ubuntu22.04"), row("broken", "13.0.0-runtime-ubuntu24.04")
    review = assemble([eol, broken], {}, {"eol": "eol.txt", "broken": "broken.txt"}, "test", 535, "2026-12-01", FACTS)
    assert [i.image for i in review.images] == ["broken", "eol"] and eol.recommended and broken.recommended
    assert _outcome([eol, broken], review).startswith("migration recommended: eol 12.6.0-runtime-ubuntu22.04 → ")
