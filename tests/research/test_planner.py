"""The planner by tables, on the fixture tag universe (NVIDIA's real tag names through 13.0.0)."""

from __future__ import annotations

import pytest
from packaging.version import Version

from tasks.images.tags import CudaTag, NgcTag
from tasks.research.facts import load_facts
from tasks.research.planner import candidates, choose_torch, plan_cuda, plan_ngc
from tests.support.universe import cuda_images, ngc_images

FACTS = load_facts()
TAGS = [i.tag for i in cuda_images()]
UNSUPPORTED = {release: entry.reason for release, entry in FACTS.eol.items()}


def torch_lookup(variant: str) -> list[Version] | None:
    versions = [Version(r.torch) for r in FACTS.torch_releases if variant in r.cuda]
    return sorted(versions, reverse=True) or None


def plan(
    tag: str,
    *,
    fleet: int = 535,
    allow_major: bool = False,
    pin_minor: str | None = None,
    tags: list[str] = TAGS,
    config_eol: bool | None = None,
):  # type: ignore[no-untyped-def]
    current = CudaTag.parse(tag)
    rows = candidates(current, tags, FACTS, fleet, UNSUPPORTED, torch_lookup, current_config_eol=config_eol)
    return plan_cuda(
        "img",
        "Dockerfile",
        f"nvidia/cuda:{tag}",
        current,
        rows,
        FACTS,
        allow_major=allow_major,
        pin_minor=pin_minor,
        index_base="https://download.pytorch.org/whl",
    )


@pytest.mark.parametrize(
    ("tag", "kw", "status", "target", "recommended"),
    [
        ("12.6.0-runtime-ubuntu22.04", {}, "eol", "12.9.1-runtime-ubuntu22.04", True),
        (
            "12.1.0-runtime-ubuntu22.04",
            {"config_eol": True},
            "eol",
            "12.9.1-runtime-ubuntu22.04",
            True,
        ),
        ("12.1.0-cudnn8-runtime-ubuntu22.04", {}, "eol", "12.9.1-cudnn-runtime-ubuntu22.04", True),
        (
            "12.6.0-runtime-ubuntu22.04",
            {"pin_minor": "12.6"},
            "eol",
            "12.6.3-runtime-ubuntu22.04",
            True,
        ),
        ("12.6.3-runtime-ubuntu22.04", {"pin_minor": "12.6"}, "supported", None, False),
        ("12.8.1-runtime-ubuntu24.04", {}, "supported", "12.9.1-runtime-ubuntu24.04", False),
        ("12.9.1-runtime-ubuntu22.04", {}, "supported", None, False),
        (
            "12.9.1-runtime-ubuntu22.04",
            {"fleet": 580, "allow_major": True},
            "supported",
            "13.1.0-runtime-ubuntu22.04",
            False,
        ),
        (
            "12.9.1-runtime-ubuntu22.04",
            {"fleet": 535, "allow_major": True},
            "supported",
            None,
            False,
        ),
        ("12.6.0-runtime-ubi9", {}, "eol", "12.9.1-runtime-ubi9", True),
        ("11.8.0-runtime-ubuntu22.04", {"fleet": 470}, "supported", None, False),
    ],
)
def test_targets(tag: str, kw: dict[str, object], status: str, target: str | None, recommended: bool) -> None:
    result = plan(tag, **kw)  # type: ignore[arg-type]
    assert (result.status, result.target, result.recommended) == (
        status,
        f"nvidia/cuda:{target}" if target else None,
        recommended,
    ), result.reasons


def test_plan_carries_pins_and_reasons() -> None:
    result = plan("12.6.0-runtime-ubuntu22.04")
    assert result.torch is not None and (
        result.torch.variant,
        result.torch.torch,
        result.torch.torchvision,
    ) == ("cu129", "2.8.0", "0.23.0")
    assert result.index_url == "https://download.pytorch.org/whl/cu129"
    assert (result.cupy_package, result.cupy_version, result.onnxruntime_gpu) == (
        "cupy-cuda12x",
        "14.2.0",
        "1.23.2",
    )
    assert "newer patch 12.6.3 of the same minor exists (EOL by NVIDIA's rule)" in result.reasons
    assert any(r.startswith("13.1.0 not chosen: fleet drivers: R535 is below 580.65.06") for r in result.reasons)
    assert result.action == "migrate" and result.to_json()["action"] == "migrate"


def test_deleted_current_tag() -> None:
    tags = [t for t in TAGS if t != "12.6.0-runtime-ubuntu22.04"]
    result = plan("12.6.0-runtime-ubuntu22.04", tags=tags)
    assert result.status == "deleted" and result.recommended
    assert result.reasons[0] == "tag is gone from the registry"


def test_major_crossing_when_the_current_major_is_all_unsupported() -> None:
    tags = [
        t
        for t in TAGS
        if not t.startswith(
            (
                "12.9.1",
                "12.8.1",
                "12.6.3",
                "12.5.1",
                "12.4.1",
                "12.3.2",
                "12.2.2",
                "12.1.1",
                "12.0.1",
            )
        )
    ]
    result = plan("12.6.0-runtime-ubuntu22.04", tags=tags, fleet=580)
    assert result.target == "nvidia/cuda:13.1.0-runtime-ubuntu22.04"
    assert any("crossing the major" in r for r in result.reasons)


def test_nearest_lower_torch_variant_is_said() -> None:
    choice = choose_torch((12, 5), torch_lookup, FACTS)
    assert choice is not None and (choice.variant, choice.torch, choice.exact) == (
        "cu124",
        "2.6.0",
        False,
    )
    assert choose_torch((10, 2), torch_lookup, FACTS) is None


def test_ngc_plan() -> None:
    tags = [i.tag for i in ngc_images()]
    result = plan_ngc(
        "ngc",
        "Dockerfile.ngc",
        "nvcr.io/nvidia/pytorch:25.04-py3",
        NgcTag.parse("25.04-py3"),
        tags,
        {"CUDA_VERSION": "12.9.0", "PYTORCH_VERSION": "2.7.0a0+79aa17489c"},
    )
    assert result.target == "nvcr.io/nvidia/pytorch:26.10-py3" and not result.recommended
    assert "current contents: CUDA 12.9.0, PyTorch 2.7.0a0+79aa17489c" in result.reasons
    igpu = plan_ngc(
        "ngc",
        "D",
        "nvcr.io/nvidia/pytorch:25.04-py3-igpu",
        NgcTag.parse("25.04-py3-igpu"),
        tags,
        None,
    )
    assert igpu.target == "nvcr.io/nvidia/pytorch:26.02-py3-igpu"
    gone = plan_ngc("ngc", "D", "nvcr.io/nvidia/pytorch:23.01-py3", NgcTag.parse("23.01-py3"), tags, None)
    assert gone.status == "deleted" and gone.recommended
