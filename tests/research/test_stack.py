"""The joint stack choice by tables (pure): torch and its index variant, torchvision, CuPy,
onnxruntime-gpu, never downgrading, one choice for images that share a file."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasks.research.facts import load_facts
from tasks.research.stack import StackRequest, choose_stack
from tasks.update.requirements import read_requirements
from tests.research.test_planner import ML, index_answers, plan

FACTS = load_facts()


def request(cuda: str, python: str = "3.11", image: str = "img", cudnn: int | None = None) -> StackRequest:
    return StackRequest(image, cuda, python, cudnn, index_answers(python), index_answers(python, "torchvision"))


def pins(torch: str = "2.5.1+cu126", extra: str = "") -> str:
    return ML.replace("torch==2.5.1+cu126", f"torch{torch}" if torch[0] in "<>=!~" else f"torch=={torch}") + extra


@pytest.mark.parametrize(
    ("cuda", "python", "torch_pin", "torch", "variant"),
    [
        # Regression: 12.6.3 with torch 2.13 -> 12.9.1 wrote torch==2.8.0+cu129 (the cu129 page's newest).
        ("12.9.1", "3.11", "2.13.0+cu126", "2.13.0+cu126", "cu126"),
        ("12.9.1", "3.11", "2.5.1+cu126", "2.13.0+cu126", "cu126"),
        ("12.8.1", "3.11", "2.5.1+cu126", "2.13.0+cu126", "cu126"),
        ("12.5.1", "3.11", "2.4.1+cu124", "2.6.0+cu124", "cu124"),
        ("13.0.2", "3.11", "2.5.1+cu126", "2.13.0+cu130", "cu130"),
        ("13.1.0", "3.11", "2.5.1+cu126", "2.13.0+cu130", "cu130"),
        ("12.9.1", "3.9", "2.5.1+cu126", "2.8.0+cu129", "cu129"),  # Python 3.9: nothing newer than 2.8
        ("12.9.1", "3.15", "2.13.0+cu126", "2.13.0+cu126", "cu126"),
        ("12.9.1", "3.11", "2.5.1", "2.13.0", "cu126"),  # no local part written: none added
        ("11.8.0", "3.11", "2.5.1+cu118", "2.7.1+cu118", "cu118"),
    ],
)
def test_torch_is_the_newest_on_any_variant_of_the_major_up_to_the_minor(
    cuda: str, python: str, torch_pin: str, torch: str, variant: str
) -> None:
    stack = choose_stack([request(cuda, python)], read_requirements(pins(torch_pin)), FACTS)
    choice, index = stack.get("torch"), stack.get("index")
    assert choice is not None and index is not None
    assert (choice.chosen, index.chosen, choice.downgrade, stack.blocking) == (torch, variant, False, [])
    assert "wheels bring their own CUDA runtime" in choice.reason


@pytest.mark.parametrize(
    ("spec", "variant", "reason"),
    [
        (">=2.4,<2.9", "cu129", "torch is not pinned with == (<2.9,>=2.4): pip takes 2.8.0 from cu129"),
        (">=2.10", "cu126", "torch is not pinned with == (>=2.10): pip takes 2.13.0 from cu126"),
    ],
)
def test_a_range_pin_constrains_torch_and_is_not_rewritten(spec: str, variant: str, reason: str) -> None:
    stack = choose_stack([request("12.9.1")], read_requirements(pins(spec)), FACTS)
    choice, index = stack.get("torch"), stack.get("index")
    assert choice is not None and index is not None
    assert (choice.chosen, index.chosen) == (None, variant) and choice.reason.startswith(reason)
    assert "torch" not in stack.changes().to_json()


def test_no_torch_for_the_python_is_blocking() -> None:
    stack = choose_stack([request("12.1.1", "3.13")], read_requirements(pins()), FACTS)
    assert stack.blocking == [
        "no torch wheel on any CUDA 12.x variant up to cu121 for Python 3.13 (asked for img (CUDA 12.1.1, Python 3.13))"
    ]


def test_a_downgrade_only_with_its_stated_reason() -> None:
    stack = choose_stack([request("13.0.2")], read_requirements(pins("2.14.0+cu130")), FACTS)
    choice = stack.get("torch")
    assert choice is not None and choice.downgrade and choice.chosen == "2.13.0+cu130"
    assert choice.reason.startswith("torch goes down from 2.14.0+cu130 to 2.13.0+cu130: 2.14.0+cu130 has no wheel on")


def test_torchvision_is_the_pair_and_must_exist_on_the_variant() -> None:
    stack = choose_stack([request("12.9.1")], read_requirements(pins()), FACTS)
    assert stack.get("torchvision").chosen == "0.28.0+cu126"  # type: ignore[union-attr]
    missing = replace(request("12.9.1"), torchvision={"cu126": ["0.27.0"]})
    blocked = choose_stack([missing], read_requirements(pins()), FACTS)
    assert blocked.blocking == [
        "torchvision 0.28.0 (the pair of torch 2.13.0) has no wheel on cu126 for img (CUDA 12.9.1, Python 3.11)"
    ]


@pytest.mark.parametrize(
    ("cuda", "current", "chosen", "reason"),
    [
        (
            "12.9.1",
            "cupy-cuda12x==13.3.0",
            "cupy-cuda12x==14.2.0",
            "cupy-cuda12x==14.2.0: the newest CuPy that supports CUDA 12.9",
        ),
        ("12.2.2", "cupy-cuda12x==13.3.0", "cupy-cuda12x==14.2.0", "cupy-cuda12x==14.2.0: the newest"),
        (
            "13.0.2",
            "cupy-cuda12x==13.3.0",
            "cupy-cuda13x==14.2.0",
            "cupy-cuda12x -> cupy-cuda13x==14.2.0: CuPy ships one package per CUDA major",
        ),
        ("11.8.0", "cupy-cuda12x==13.3.0", "cupy-cuda11x==13.6.0", "cupy-cuda12x -> cupy-cuda11x==13.6.0"),
        (
            "12.9.1",
            "cupy-cuda12x==14.3.0",
            "cupy-cuda12x==14.3.0",
            "cupy-cuda12x==14.3.0 stays: newer than the facts know",
        ),
        ("12.9.1", "cupy-cuda12x==14.2.0", "cupy-cuda12x==14.2.0", "cupy-cuda12x==14.2.0 stays: it supports CUDA 12.9"),
    ],
)
def test_cupy_is_the_package_of_the_major_with_a_version_for_the_minor(
    cuda: str, current: str, chosen: str, reason: str
) -> None:
    stack = choose_stack([request(cuda)], read_requirements(ML.replace("cupy-cuda12x==13.3.0", current)), FACTS)
    choice = stack.get("cupy")
    assert choice is not None and (choice.chosen, choice.blocking) == (chosen, None)
    assert choice.reason.startswith(reason)


def test_no_cupy_for_the_minor_is_blocking_unless_accepted() -> None:
    blocked = choose_stack([request("13.3.0")], read_requirements(ML), FACTS)
    assert blocked.get("cupy").blocking.startswith("no CuPy release in the facts (as of 2026-12-01) supports CUDA 13.3")  # type: ignore[union-attr]
    accepted = choose_stack([request("13.3.0")], read_requirements(ML), FACTS, frozenset({"cupy"}))
    assert accepted.get("cupy").blocking is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("cuda", "current", "chosen", "downgrade", "reason"),
    [
        ("12.9.1", "1.20.1", "1.26.0", False, "onnxruntime-gpu 1.26.0: the newest CUDA 12 build on the default index"),
        # Regression: crossing to CUDA 13 kept the CUDA-12 pin silently.
        ("13.0.2", "1.20.1", "1.31.1", False, "onnxruntime-gpu moves 1.20.1 -> 1.31.1: 1.20.1 is a CUDA 12 build"),
        ("12.9.1", "1.31.1", "1.26.0", True, "onnxruntime-gpu goes down 1.31.1 -> 1.26.0: 1.31.1 is a CUDA 13 build"),
        ("12.9.1", "1.26.0", "1.26.0", False, "onnxruntime-gpu 1.26.0 stays: a CUDA 12 build"),
        ("13.0.2", "1.32.0", "1.32.0", False, "onnxruntime-gpu 1.32.0 stays: a CUDA 13 build (assumed"),
        ("11.8.0", "1.20.1", "1.18.1", True, "onnxruntime-gpu goes down 1.20.1 -> 1.18.1: 1.20.1 is a CUDA 12 build"),
    ],
)
def test_onnxruntime_is_a_build_for_the_target_major(
    cuda: str, current: str, chosen: str, downgrade: bool, reason: str
) -> None:
    stack = choose_stack([request(cuda)], read_requirements(ML.replace("1.20.1", current)), FACTS)
    choice = stack.get("onnxruntime-gpu")
    assert choice is not None and (choice.chosen, choice.downgrade, choice.blocking) == (chosen, downgrade, None)
    assert choice.reason.startswith(reason), choice.reason


BEFORE_CUDA13_BUILDS = replace(FACTS, ort_releases=tuple(r for r in FACTS.ort_releases if r.cuda < 13))


def test_no_onnxruntime_build_for_the_major_blocks_the_plan_until_accepted() -> None:
    stack = choose_stack([request("13.0.2")], read_requirements(ML), BEFORE_CUDA13_BUILDS)
    assert stack.blocking == [
        "onnxruntime-gpu 1.20.1 is a CUDA 12 build and the default index has no onnxruntime-gpu build for CUDA 13 "
        "(facts as of 2026-12-01): resolve it (another build or feed) or add onnxruntime-gpu to policy.allow_missing"
    ]
    blocked = plan("12.9.1-runtime-ubuntu22.04", fleet=580, allow_major=True, facts=BEFORE_CUDA13_BUILDS)
    assert blocked.target == "nvidia/cuda:13.1.0-runtime-ubuntu22.04" and blocked.blocking
    assert not blocked.recommended and "onnxruntime_gpu" not in blocked.changes
    accepted = plan(
        "12.6.0-runtime-ubuntu22.04",
        fleet=580,
        allow_major=True,
        facts=BEFORE_CUDA13_BUILDS,
        allow_missing=frozenset({"onnxruntime-gpu"}),
    )
    assert accepted.recommended and not accepted.blocking
    assert any("accepted by policy.allow_missing: the pin stays" in r for r in accepted.reasons)
    assert "onnxruntime_gpu" not in accepted.changes


def test_images_sharing_a_file_get_one_choice_that_fits_all() -> None:
    both = [request("12.9.1", image="training"), request("12.6.3", image="training-cuda126")]
    stack = choose_stack(both, read_requirements(ML), FACTS)
    assert stack.changes().to_json() == {
        "torch": "2.13.0",
        "torchvision": "0.28.0",
        "cupy_package": "cupy-cuda12x",
        "cupy_version": "14.2.0",
        "onnxruntime_gpu": "1.26.0",
        "variant": "cu126",
    }
    older = [request("12.9.1", image="a"), request("12.1.1", image="b")]
    assert choose_stack(older, read_requirements(ML), FACTS).get("torch").chosen == "2.5.1+cu121"  # type: ignore[union-attr]
    pythons = [request("12.9.1", "3.9", image="a"), request("12.9.1", "3.13", image="b")]
    assert choose_stack(pythons, read_requirements(ML), FACTS).get("torch").chosen == "2.8.0+cu129"  # type: ignore[union-attr]
    conflict = choose_stack([request("13.0.2", image="a"), request("12.6.3", image="b")], read_requirements(ML), FACTS)
    assert conflict.conflicts == (
        "a (CUDA 13.0.2, Python 3.11) and b (CUDA 12.6.3, Python 3.11) share one pinned file but need CUDA majors "
        "12 and 13: one file cannot pin cupy-cuda12x and cupy-cuda13x or torch variants of two majors; give each "
        "image its own requirements file or keep them on one major",
    )
    assert conflict.blocking == list(conflict.conflicts)


@pytest.mark.parametrize(
    ("cuda", "pin", "chosen", "downgrade"),
    [
        ("12.9.1", "2.5.1", "2.10.0", False),  # 2.11+ default to cu130 on the package index
        ("12.6.3", "2.5.1", "2.7.1", False),
        ("13.0.2", "2.5.1", "2.13.0", False),
        ("12.9.1", "2.13.0", "2.10.0", True),  # PyPI's 2.13.0 is a CUDA 13 build
    ],
)
def test_without_an_index_url_torch_is_the_package_index_default_build(
    cuda: str, pin: str, chosen: str, downgrade: bool
) -> None:
    stack = choose_stack([request(cuda)], read_requirements(f"torch=={pin}\n"), FACTS)
    choice = stack.get("torch")
    assert choice is not None and (choice.chosen, choice.downgrade, stack.blocking) == (chosen, downgrade, [])
    assert "as the package index's default build (the file has no PyTorch index URL)" in choice.reason
    if cuda.startswith("12.9"):
        assert "torch 2.13.0 needs an --extra-index-url for its CUDA 12.x build" in choice.reason
    assert stack.changes().variant is None, "no index line to write"
