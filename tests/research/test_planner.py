"""The base-target planner by tables, on the fixture tag universe (NVIDIA's real tag names through
13.0.0, generated to 13.1.0): fleet first, two majors at a time, the next-major note, cuDNN, digests,
NGC within the fleet. Pure: no I/O, the index answers come from the bundled PyTorch facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tasks.images.reference import parse_reference
from tasks.images.tags import CudaTag, NgcTag
from tasks.research.drivers import branch_finding
from tasks.research.facts import load_facts
from tasks.research.ngc_plan import plan_ngc
from tasks.research.planner import ImagePlan, StackInputs, candidates, newest_torch, pin_digest, plan_cuda
from tasks.research.support import support_state
from tasks.update.requirements import read_requirements
from tests.support.universe import cuda_images, ngc_images

FACTS = load_facts()
TAGS = [i.tag for i in cuda_images()]
NGC_TAGS = [i.tag for i in ngc_images()]
NGC_CUDA = {i.tag: i.env["CUDA_VERSION"] for i in ngc_images()}
UNSUPPORTED = {release: entry.reason for release, entry in FACTS.eol.items()}
ML = """--extra-index-url https://download.pytorch.org/whl/cu126
torch==2.5.1+cu126
torchvision==0.20.1+cu126
cupy-cuda12x==13.3.0
onnx==1.17.0
onnxruntime-gpu==1.20.1
"""


def index_answers(python: str = "3.11", package: str = "torch") -> dict[str, list[str]]:
    """What a PEP 503 index built from the facts answers: variant -> versions for `python`."""
    out: dict[str, list[str]] = {}
    for release in FACTS.torch_releases:
        low, high = (int(v.split(".")[1]) for v in release.python)
        if low <= int(python.split(".")[1]) <= high:
            for variant in release.cuda:
                out.setdefault(variant, []).append(release.torch if package == "torch" else release.torchvision)
    return out


def plan(
    tag: str,
    *,
    fleet: int = 535,
    allow_major: bool = False,
    pin_minor: str | None = None,
    tags: list[str] = TAGS,
    config_eol: bool | None = None,
    requirements: str | None = ML,
    python: str = "3.11",
    allow_missing: frozenset[str] = frozenset(),
    ref: str | None = None,
    facts=FACTS,  # type: ignore[no-untyped-def]
    name: str = "img",
) -> ImagePlan:
    current = CudaTag.parse(tag)
    torch = index_answers(python)
    rows = candidates(current, tags, facts, fleet, UNSUPPORTED, torch, current_config_eol=config_eol)
    inputs = StackInputs(
        python,
        read_requirements(requirements) if requirements is not None else None,
        "ml.txt" if requirements is not None else None,
        None,
        torch,
        index_answers(python, "torchvision"),
        allow_missing,
    )
    return plan_cuda(
        name,
        "Dockerfile",
        ref or f"nvidia/cuda:{tag}",
        current,
        rows,
        facts,
        allow_major=allow_major,
        pin_minor=pin_minor,
        index_base="https://download.pytorch.org/whl",
        inputs=inputs,
    )


@pytest.mark.parametrize(
    ("tag", "kw", "status", "target", "recommended"),
    [
        ("12.6.0-runtime-ubuntu22.04", {}, "eol", "12.9.1-runtime-ubuntu22.04", True),
        ("12.1.0-runtime-ubuntu22.04", {"config_eol": True}, "eol", "12.9.1-runtime-ubuntu22.04", True),
        ("12.1.0-cudnn8-runtime-ubuntu22.04", {}, "eol", "12.9.1-cudnn-runtime-ubuntu22.04", True),
        ("12.6.0-runtime-ubuntu22.04", {"pin_minor": "12.6"}, "eol", "12.6.3-runtime-ubuntu22.04", True),
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
        ("12.9.1-runtime-ubuntu22.04", {"fleet": 535, "allow_major": True}, "supported", None, False),
        ("12.6.0-runtime-ubi9", {}, "eol", "12.9.1-runtime-ubi9", True),
        ("13.0.0-runtime-ubuntu24.04", {"fleet": 580}, "eol", "13.1.0-runtime-ubuntu24.04", True),
        ("12.9.1-base-ubuntu22.04", {"requirements": None}, "supported", None, False),
        # Corrected: CUDA 11 was reported "supported" although 13 is out (NVIDIA: two majors at a time).
        ("11.8.0-runtime-ubuntu22.04", {"fleet": 470}, "eol", None, False),
        ("11.8.0-runtime-ubuntu22.04", {"fleet": 535}, "eol", "12.9.1-runtime-ubuntu22.04", True),
        # Fleet first: an image the fleet cannot run moves to the newest release it runs, across a major.
        ("13.0.0-runtime-ubuntu24.04", {"fleet": 535}, "eol", "12.9.1-runtime-ubuntu24.04", True),
        ("13.1.0-cudnn-runtime-ubuntu24.04", {"fleet": 535}, "supported", "12.9.1-cudnn-runtime-ubuntu24.04", True),
        ("13.1.0-runtime-ubuntu22.04", {"fleet": 575}, "supported", "12.9.1-runtime-ubuntu22.04", True),
        ("12.9.1-runtime-ubuntu22.04", {"fleet": 520}, "supported", None, False),
    ],
)
def test_targets(tag: str, kw: dict[str, object], status: str, target: str | None, recommended: bool) -> None:
    result = plan(tag, **kw)  # type: ignore[arg-type]
    assert (result.status, result.target, result.recommended) == (
        status,
        f"nvidia/cuda:{target}" if target else None,
        recommended,
    ), result.reasons


@pytest.mark.parametrize(
    ("tag", "fleet", "urgent", "first_reason"),
    [
        ("13.0.0-runtime-ubuntu24.04", 535, True, "URGENT: the fleet cannot run the current image 13.0.0-runtime"),
        ("13.1.0-runtime-ubuntu24.04", 575, True, "URGENT: the fleet cannot run the current image 13.1.0-runtime"),
        ("12.9.1-runtime-ubuntu22.04", 535, False, ""),
        ("12.9.1-runtime-ubuntu22.04", 520, True, "URGENT: the fleet cannot run the current image 12.9.1-runtime"),
    ],
)
def test_fleet_first(tag: str, fleet: int, urgent: bool, first_reason: str) -> None:
    """Regression: 13.0.0-runtime-ubuntu24.04 on an R535 fleet got "no change"."""
    result = plan(tag, fleet=fleet)
    assert result.urgent is urgent and result.reasons
    assert result.reasons[0].startswith(first_reason)
    if urgent and result.target:
        assert result.due and any("crossing to CUDA 12" in r for r in result.reasons)


def test_fleet_first_crossing_moves_the_whole_stack_down_a_major() -> None:
    cuda13 = ML.replace("cu126", "cu130").replace("cupy-cuda12x==13.3.0", "cupy-cuda13x==14.2.0")
    cuda13 = cuda13.replace("torch==2.5.1+cu130", "torch==2.13.0+cu130").replace("0.20.1+cu130", "0.28.0+cu130")
    result = plan("13.0.0-runtime-ubuntu24.04", fleet=535, requirements=cuda13.replace("1.20.1", "1.31.1"))
    assert result.target == "nvidia/cuda:12.9.1-runtime-ubuntu24.04" and result.recommended
    assert result.changes == {
        "variant": "cu126",
        "torch": "2.13.0",
        "torchvision": "0.28.0",
        "cupy_package": "cupy-cuda12x",
        "cupy_version": "14.2.0",
        "onnxruntime_gpu": "1.26.0",
    }
    assert any(
        r.startswith("onnxruntime-gpu goes down 1.31.1 -> 1.26.0: 1.31.1 is a CUDA 13 build") for r in result.reasons
    )


@pytest.mark.parametrize(
    ("fleet", "allow_major", "note"),
    [
        (580, False, "13.1.0 runs on this fleet; set policy.allow_major_upgrade or see the annual update"),
        (535, False, "CUDA 13 (13.1.0) does not run on this fleet: R535 is below 580.65.06"),
        (580, True, None),
    ],
)
def test_what_a_major_upgrade_would_bring(fleet: int, allow_major: bool, note: str | None) -> None:
    result = plan("12.9.1-runtime-ubuntu22.04", fleet=fleet, allow_major=allow_major)
    found = [r for r in result.reasons if "this fleet" in r]
    assert (found[0][: len(note)] if found else None) == note, result.reasons


@pytest.mark.parametrize(
    ("version", "newest_major", "facts_13", "status", "reason"),
    [
        ("11.8.0", None, True, "eol", "CUDA 11.x is end of life by NVIDIA's two-majors rule"),
        ("11.8.0", 13, False, "eol", "the registry lists CUDA 13"),
        ("11.8.0", 12, False, "supported", None),
        ("12.9.1", 13, True, "supported", None),
    ],
)
def test_two_majors_at_a_time(
    version: str, newest_major: int | None, facts_13: bool, status: str, reason: str | None
) -> None:
    facts = FACTS if facts_13 else replace(FACTS, major_releases={})
    state = support_state(
        version, facts, {}, config_eol=None, newer_patch=None, tag_present=True, newest_major=newest_major
    )
    assert state.status == status
    assert (reason is None) == (not state.reasons)
    if reason:
        assert reason in state.reasons[0] and '"11 will be marked EOL, after 13 is released"' in state.reasons[0]
    if facts_13 and status == "eol":
        assert "CUDA 13.0.0 was released 2025-08-09" in state.reasons[0]
        assert state.estimated_deletion == date(2026, 2, 9)


@pytest.mark.parametrize(
    ("branch", "today", "expected"),
    [
        (535, date(2026, 12, 1), "the fleet's driver branch R535 LTSB reached end of life on 2026-06-01 (June 2026)"),
        (
            535,
            date(2026, 1, 1),
            "the fleet's driver branch R535 LTSB reaches end of life on 2026-06-01 (June 2026, in 151 days)",
        ),
        (470, date(2026, 12, 1), "the fleet's driver branch R470 LTSB reached end of life on 2024-07-01"),
        (545, date(2026, 12, 1), "the fleet's driver branch R545 reached end of life (not listed by NVIDIA"),
        (580, date(2026, 12, 1), "the fleet's driver branch R580 LTSB reaches end of life on 2028-08-01"),
        (610, date(2026, 12, 1), None),
    ],
)
def test_fleet_driver_branch_end_of_life(branch: int, today: date, expected: str | None) -> None:
    found = branch_finding(branch, FACTS, today)
    assert (found[: len(expected)] if found and expected else found) == expected
    if found and branch < 580:
        assert "R580 LTSB, end of life August 2028" in found and "source: " in found


def test_cudnn8_to_cudnn_says_the_cudnn_major_changes() -> None:
    result = plan("12.1.0-cudnn8-runtime-ubuntu22.04")
    assert result.target == "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04"
    assert any(r.startswith("the cuDNN major changes 8 -> 9 (cudnn8 -> cudnn)") for r in result.reasons)
    assert not any("cuDNN major" in r for r in plan("12.6.0-cudnn-runtime-ubuntu22.04").reasons)


DIGEST = "sha256:" + "ab" * 32
NEW_DIGEST = "sha256:" + "cd" * 32


@pytest.mark.parametrize(
    ("digest", "expected", "blocked"),
    [
        (NEW_DIGEST, f"nvidia/cuda:12.9.1-runtime-ubuntu22.04@{NEW_DIGEST}", False),
        (None, "nvidia/cuda:12.9.1-runtime-ubuntu22.04", True),
    ],
)
def test_digest_pinned_base_stays_pinned(digest: str | None, expected: str, blocked: bool) -> None:
    """Regression: the target of `...:12.6.0-...@sha256:<hex>` came out as `...@sha256:12.9.1-...`."""
    ref = f"nvidia/cuda:12.6.0-runtime-ubuntu22.04@{DIGEST}"
    result = plan("12.6.0-runtime-ubuntu22.04", ref=ref)
    assert result.target == "nvidia/cuda:12.9.1-runtime-ubuntu22.04", result.target
    pin_digest(result, parse_reference(ref), digest)
    assert result.target == expected and bool(result.blocking) is blocked and result.recommended is not blocked
    parse_reference(result.target)  # a valid reference either way


@pytest.mark.parametrize(
    ("minor", "python", "expected"),
    [
        ((12, 9), "3.11", ("cu126", "2.13.0", "0.28.0", False)),
        ((12, 6), "3.11", ("cu126", "2.13.0", "0.28.0", True)),
        ((12, 5), "3.11", ("cu124", "2.6.0", "0.21.0", False)),
        ((12, 9), "3.9", ("cu129", "2.8.0", "0.23.0", True)),
        ((13, 0), "3.11", ("cu130", "2.13.0", "0.28.0", True)),
        ((13, 2), "3.11", ("cu132", "2.13.0", "0.28.0", True)),
        ((10, 2), "3.11", None),
    ],
)
def test_matrix_torch_is_the_newest_on_any_variant_up_to_the_minor(
    minor: tuple[int, int], python: str, expected: tuple[str, str, str, bool] | None
) -> None:
    choice = newest_torch(minor, index_answers(python), FACTS)
    assert (choice and (choice.variant, choice.torch, choice.torchvision, choice.exact)) == expected


def ngc(
    tag: str, fleet: int, *, tags: list[str] = NGC_TAGS, pins: str | None = None
) -> ImagePlan:  # the NGC Dockerfile's RUN pip install line
    from tasks.update.pip_lines import dockerfile_pins

    current = NgcTag.parse(tag)
    env = {"CUDA_VERSION": NGC_CUDA[tag], "PYTORCH_VERSION": "x"} if tag in NGC_CUDA else None
    run = dockerfile_pins(f"FROM x\nRUN pip install {pins}\n") if pins else None
    return plan_ngc(
        "ngc",
        "Dockerfile.ngc",
        f"nvcr.io/nvidia/pytorch:{tag}",
        current,
        tags,
        env,
        FACTS,
        fleet_min_driver=fleet,
        cuda_of=NGC_CUDA.get,
        inputs=StackInputs(dockerfile_pins=run),
    )


@pytest.mark.parametrize(
    ("tag", "fleet", "target", "recommended", "urgent"),
    [
        # Corrected: the review proposed 26.10 (CUDA 13.1) to an R535 fleet.
        ("25.04-py3", 535, "25.11-py3", False, False),
        ("25.04-py3", 590, "26.10-py3", False, False),
        ("25.04-py3-igpu", 535, "25.08-py3-igpu", False, False),
        ("25.12-py3", 535, "25.11-py3", True, True),  # the fleet cannot run 25.12 (CUDA 13.1): urgent, down
        ("26.10-py3", 590, None, False, False),
    ],
)
def test_ngc_within_the_fleet(tag: str, fleet: int, target: str | None, recommended: bool, urgent: bool) -> None:
    result = ngc(tag, fleet)
    assert (result.target, result.recommended, result.urgent) == (
        f"nvcr.io/nvidia/pytorch:{target}" if target else None,
        recommended,
        urgent,
    ), result.reasons


def test_ngc_580_runs_cuda_13_through_minor_version_compatibility() -> None:
    result = ngc("25.04-py3", 580)
    # R580 is the 13.x floor: 25.12 (13.1.0) and later run by minor-version compatibility
    assert result.target == "nvcr.io/nvidia/pytorch:26.10-py3", result.reasons


def test_ngc_plan_says_cuda_minimum_driver_and_why_newer_are_skipped() -> None:
    result = ngc("25.04-py3", 535)
    assert "target NGC 25.11: the newest release on the track that the fleet runs: CUDA 12.9.0" in result.reasons[-3]
    skipped = next(r for r in result.reasons if r.startswith("newer NGC releases the fleet cannot run"))
    assert "26.10 (CUDA >= 13.1.0, the newest known release before it)" in skipped
    assert "current contents: CUDA 12.9.0, PyTorch x" in result.reasons
    gone = ngc("23.01-py3", 535)
    assert gone.status == "deleted" and gone.due and gone.recommended


def test_ngc_dockerfile_pins_are_decided_for_the_chosen_release() -> None:
    pins = '"cupy-cuda12x==13.4.1" "onnx==1.17.0" "onnxruntime-gpu==1.20.1"'
    result = ngc("25.04-py3", 535, pins=pins)
    assert result.dockerfile_changes == {
        "cupy_package": "cupy-cuda12x",
        "cupy_version": "14.2.0",
        "onnxruntime_gpu": "1.26.0",
    }
    assert any("Dockerfile.ngc RUN pip install: cupy-cuda12x==14.2.0" in r for r in result.reasons)
    crossing = ngc("25.04-py3", 590, pins=pins)
    assert crossing.dockerfile_changes["cupy_package"] == "cupy-cuda13x"
    assert crossing.dockerfile_changes["onnxruntime_gpu"] == "1.31.1"
    assert any("1.20.1 is a CUDA 12 build" in r for r in crossing.reasons)


def test_ngc_facts_map_each_release_to_cuda_and_driver() -> None:
    rows = {r.release: (r.cuda, r.min_driver) for r in FACTS.ngc_releases.values()}
    assert rows == {
        "24.08": ("12.6.0", "560.28.03"),
        "24.09": ("12.6.1", "560.35.03"),
        "24.10": ("12.6.2", "560.35.03"),
        "25.01": ("12.8.0", "570.26"),
        "25.04": ("12.9.0", "575.51.03"),
        "25.12": ("13.1.0", "590.44.01"),
    }
    for row in FACTS.ngc_releases.values():
        assert FACTS.toolkit_min_driver[row.cuda] == row.min_driver, "the release notes name the toolkit's driver"
        assert row.provenance and row.provenance.source
    assert "forward-compatibility package" in FACTS.ngc_forward_compatibility


def test_deleted_current_tag() -> None:
    tags = [t for t in TAGS if t != "12.6.0-runtime-ubuntu22.04"]
    result = plan("12.6.0-runtime-ubuntu22.04", tags=tags)
    assert result.status == "deleted" and result.recommended
    assert result.reasons[0] == "tag is gone from the registry"


def test_major_crossing_when_the_current_major_is_all_unsupported() -> None:
    gone = ("12.9.1", "12.8.1", "12.6.3", "12.5.1", "12.4.1", "12.3.2", "12.2.2", "12.1.1", "12.0.1")
    result = plan("12.6.0-runtime-ubuntu22.04", tags=[t for t in TAGS if not t.startswith(gone)], fleet=580)
    assert result.target == "nvidia/cuda:13.1.0-runtime-ubuntu22.04"
    assert any("crossing the major" in r for r in result.reasons)
    assert result.changes["cupy_package"] == "cupy-cuda13x" and result.changes["onnxruntime_gpu"] == "1.31.1"


def test_plan_carries_pins_index_and_reasons() -> None:
    result = plan("12.6.0-runtime-ubuntu22.04")
    assert result.torch is not None and (result.torch.variant, result.torch.torch, result.torch.torchvision) == (
        "cu126",
        "2.13.0",
        "0.28.0",
    )
    assert result.index_url == "https://download.pytorch.org/whl/cu126"
    assert (result.cupy_package, result.cupy_version, result.onnxruntime_gpu) == ("cupy-cuda12x", "14.2.0", "1.26.0")
    assert "newer patch 12.6.3 of the same minor exists (EOL by NVIDIA's rule)" in result.reasons
    assert any(r.startswith("13.1.0 not chosen: fleet drivers: R535 is below 580.65.06") for r in result.reasons)
    assert {c.component for c in result.choices} == {"index", "torch", "torchvision", "cupy", "onnxruntime-gpu"}
    assert all(c.reason for c in result.choices)
    assert result.action == "migrate" and result.to_json()["action"] == "migrate"
