"""Migration plans from --to, a review report and an annual report, checked (pure) against the
registry's and the index's answers before anything is written."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tasks.errors import BaseImageError
from tasks.research.facts import load_facts
from tasks.research.report_model import ReviewReport
from tasks.update.pip_lines import dockerfile_pins
from tasks.update.plan import ImageChange
from tasks.update.plans import Answers, ManagedBase, Rules, check_report, check_shared, from_report, from_target
from tasks.update.requirements import RequirementChanges, read_requirements, rewrite_requirements
from tests.research.test_planner import ML, TAGS, UNSUPPORTED, index_answers

FACTS = load_facts()
ML_213 = ML.replace("2.5.1+cu126", "2.13.0+cu126").replace("0.20.1+cu126", "0.28.0+cu126")
DIGEST = "sha256:" + "12" * 32
NEW = "sha256:" + "34" * 32


def base(
    name: str = "training",
    current: str = "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
    requirements: str | None = ML_213,
    **kw: Any,
) -> ManagedBase:
    return ManagedBase(
        name,
        f"dockerfiles/{name}/Dockerfile",
        current,
        "ml.txt" if requirements is not None else None,
        pins=read_requirements(requirements) if requirements is not None else None,
        **kw,
    )


def answers(**kw: Any) -> Answers:
    return Answers(
        {"docker.io/nvidia/cuda": TAGS},
        UNSUPPORTED,
        {p: index_answers(p) for p in ("3.11", "3.13")},
        {p: index_answers(p, "torchvision") for p in ("3.11", "3.13")},
        **kw,
    )


RULES = Rules(535)


def test_to_keeps_the_newest_torch_regression() -> None:
    """Regression: 12.6.3 with torch 2.13 -> --to 12.9.1 wrote torch==2.8.0+cu129 (back on an advisory)."""
    plan = from_target("12.9.1", [base()], answers(), FACTS, RULES)
    (change,) = plan.changes
    assert change.target == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    assert change.changes.torch is None, "torch 2.13.0+cu126 already runs on 12.9.1: it stays"
    written = rewrite_requirements(ML_213, change.changes)
    assert "torch==2.13.0+cu126\n" in written and "cu129" not in written and "2.8.0" not in written
    assert (change.changes.cupy_package, change.changes.cupy_version, change.changes.onnxruntime_gpu) == (
        "cupy-cuda12x",
        "14.2.0",
        "1.26.0",
    )
    assert plan.reasons[0] == "requested: CUDA 12.9.1"


@pytest.mark.parametrize(
    ("version", "fleet", "message"),
    [
        (
            "12.7.0",
            535,
            "--to 12.7.0: nothing was written:\n  training: nvidia/cuda:12.7.0-runtime-ubuntu22.04 does not exist in "
            "the registry (live); releases on its track (runtime-ubuntu22.04): 13.1.0, 13.0.2, 13.0.1, 13.0.0, 12.9.1, "
            "12.9.0, 12.8.1, 12.8.0, 12.6.3",
        ),
        ("12.6.0", 535, "training: CUDA 12.6.0 is not supported: NVIDIA lists 12.6.0 as unsupported"),
        ("13.0.2", 535, "training: the fleet cannot run CUDA 13.0.2: R535 is below 580.65.06"),
        ("11.8.0", 535, "training: CUDA 11.8.0 is not supported: CUDA 11.x is end of life by NVIDIA's two-majors rule"),
        ("12.9", 535, "--to '12.9': expected a CUDA version of three ASCII-digit parts, like 12.9.1"),
        ("\u0661\u0662.\u0669.\u0661", 535, "expected a CUDA version of three ASCII-digit parts"),  # Arabic-Indic
        ("\uff11\uff12.9.1", 535, "expected a CUDA version of three ASCII-digit parts"),  # full-width 12
        ("12.9.1 ", 535, "--to '12.9.1 ': expected a CUDA version"),
    ],
)
def test_to_is_checked_before_anything_is_written(version: str, fleet: int, message: str) -> None:
    with pytest.raises(BaseImageError) as info:
        from_target(version, [base()], answers(), FACTS, Rules(fleet))
    assert message in str(info.value)


def test_to_checks_the_images_python() -> None:
    old = base(python="3.13", current="nvidia/cuda:12.1.0-runtime-ubuntu22.04")
    with pytest.raises(BaseImageError, match=r"no torch wheel on any CUDA 12.x variant up to cu121 for Python 3.13"):
        from_target("12.1.1", [old], answers(), FACTS, RULES)


def test_to_leaves_other_minors_pinned_and_keeps_a_shared_file_consistent() -> None:
    pinned = base("training-cuda126", pin_minor="12.6")
    plan = from_target("12.9.1", [base(), pinned], answers(), FACTS, RULES)
    assert [c.image for c in plan.changes] == ["training"]
    assert any("ml.txt is shared by training, training-cuda126" in r for r in plan.reasons)
    with pytest.raises(BaseImageError) as info:
        from_target("13.0.2", [base(), pinned], answers(), FACTS, Rules(580))
    assert "ml.txt: training (CUDA 13.0.2, Python 3.11) and training-cuda126 (CUDA 12.6.3, Python 3.11) share" in str(
        info.value
    )


def test_to_a_digest_pinned_base_stays_pinned() -> None:
    pinned = base(current=f"nvidia/cuda:12.6.3-runtime-ubuntu22.04@{DIGEST}")
    key = "docker.io/nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    plan = from_target("12.9.1", [pinned], answers(digests={key: NEW}), FACTS, RULES)
    assert plan.changes[0].target == f"nvidia/cuda:12.9.1-runtime-ubuntu22.04@{NEW}"
    with pytest.raises(BaseImageError, match=r"is pinned by digest and the registry gave none for 12\.9\.1"):
        from_target("12.9.1", [pinned], answers(), FACTS, RULES)


def test_to_crossing_to_cuda_13_moves_onnxruntime_or_blocks() -> None:
    plan = from_target("13.0.2", [base()], answers(), FACTS, Rules(580))
    assert plan.changes[0].changes.onnxruntime_gpu == "1.31.1"
    assert any("1.20.1 is a CUDA 12 build" in r for r in plan.reasons)
    before = replace(FACTS, ort_releases=tuple(r for r in FACTS.ort_releases if r.cuda < 13))
    with pytest.raises(BaseImageError, match="no onnxruntime-gpu build for CUDA 13"):
        from_target("13.0.2", [base()], answers(), before, Rules(580))
    accepted = from_target("13.0.2", [base()], answers(), before, Rules(580, frozenset({"onnxruntime-gpu"})))
    assert accepted.changes[0].changes.onnxruntime_gpu is None


def test_to_decides_the_dockerfile_pip_pins() -> None:
    run = dockerfile_pins('FROM x\nRUN pip install "cupy-cuda12x==13.3.0" "onnxruntime-gpu==1.20.1"\n')
    plan = from_target("13.0.2", [base(requirements=None, run_pins=run)], answers(), FACTS, Rules(580))
    assert plan.changes[0].dockerfile_pins == RequirementChanges(
        cupy_package="cupy-cuda13x", cupy_version="14.2.0", onnxruntime_gpu="1.31.1"
    )


def review_image(name: str, changes: dict[str, str], **plan: Any) -> dict[str, Any]:
    return {
        "image": name,
        "file": f"dockerfiles/{name}/Dockerfile",
        "current": "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
        "target": "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
        "recommended": True,
        "reasons": ["due"],
        "plan": {"kind": "cuda", "changes": changes, "action": "migrate", **plan},
    }


def test_shared_file_with_two_different_plans_stops_naming_both() -> None:
    """Regression: the last plan won and the changelog claimed pins the file did not have."""
    report = {
        "images": [
            review_image("training", {"variant": "cu129", "torch": "2.8.0"}),
            review_image("training-cuda126", {"variant": "cu126", "torch": "2.13.0"}),
        ]
    }
    with pytest.raises(BaseImageError) as info:
        from_report(ReviewReport.from_json(report), {"training": "ml.txt", "training-cuda126": "ml.txt"})
    assert str(info.value).startswith(
        "ml.txt is shared by training and training-cuda126, whose plans pin it differently (torch: 2.8.0 (training) "
        "vs 2.13.0 (training-cuda126), variant: cu129 (training) vs cu126 (training-cuda126)); nothing was written"
    )


def test_a_review_conflict_stops_the_migration() -> None:
    report = {"images": [review_image("training", {})], "conflicts": ["ml.txt: a and b share one pinned file ..."]}
    with pytest.raises(BaseImageError, match=r"the review found a conflict, nothing was written: ml\.txt: a and b"):
        from_report(ReviewReport.from_json(report), {"training": "ml.txt"})


def test_pin_only_plans_and_dockerfile_decisions_are_carried() -> None:
    image = review_image("svc", {"variant": "cu126", "torch": "2.13.0"}, dockerfile_changes={"cupy_version": "14.2.0"})
    image.update(target=None)
    image["plan"]["action"] = "update-pins"
    plan = from_report(ReviewReport.from_json({"images": [image]}), {"svc": "ml.txt"})
    assert plan is not None
    (change,) = plan.changes
    assert change.target == change.current and change.changes.torch == "2.13.0"
    assert change.dockerfile_pins.cupy_version == "14.2.0"
    # Corrected: this used to expect "(not rewritten by this migration...)"; migrate now writes the pip line.
    assert "svc: dockerfiles/svc/Dockerfile RUN pip install: cupy_version -> 14.2.0" in plan.reasons


def test_an_annual_plan_gets_its_coupled_pins_at_migrate_time() -> None:
    annual = {
        "images": [
            {
                "image": "training",
                "file": "dockerfiles/training/Dockerfile",
                "current": "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
                "target": "nvidia/cuda:12.9.1-runtime-ubuntu24.04",
                "recommended": True,
                "reasons": ["Ubuntu 22.04 ends"],
                "plan": {"torch": {"variant": "cu129", "torch": "2.8.0"}, "coupled": "at migrate time"},
            }
        ]
    }
    plan = from_report(ReviewReport.from_json(annual), {"training": "ml.txt"})
    assert plan is not None
    checked = check_report(plan, ReviewReport.from_json(annual), [base()], answers(), FACTS, RULES)
    (change,) = checked.changes
    assert change.target == "nvidia/cuda:12.9.1-runtime-ubuntu24.04"
    assert change.changes.torch is None, "the report said 2.8.0+cu129; the file's 2.13.0+cu126 stays"
    assert "torch==2.13.0+cu126\n" in rewrite_requirements(ML_213, change.changes)


def test_a_report_target_that_no_longer_exists_is_refused() -> None:
    report = {"images": [review_image("training", {"torch": "2.13.0"})]}
    report["images"][0]["target"] = "nvidia/cuda:12.7.0-runtime-ubuntu22.04"
    plan = from_report(ReviewReport.from_json(report), {"training": "ml.txt"})
    assert plan is not None
    with pytest.raises(BaseImageError, match=r"12.7.0-runtime-ubuntu22.04 does not exist in the registry"):
        check_report(plan, ReviewReport.from_json(report), [base()], answers(), FACTS, RULES)
    moved = base(current="nvidia/cuda:12.8.1-runtime-ubuntu22.04")
    with pytest.raises(BaseImageError, match=r"the report's current base .* is not what .* has now"):
        check_report(plan, ReviewReport.from_json(report), [moved], answers(), FACTS, RULES)


def test_check_shared_accepts_identical_plans() -> None:
    same = RequirementChanges("cu126", None, "2.13.0")
    check_shared([ImageChange("a", "A", "x", "y", "ml.txt", same), ImageChange("b", "B", "x", "y", "ml.txt", same)])


def test_a_missing_release_names_its_whole_track() -> None:
    """The track of a cuDNN image is cudnn-runtime-ubuntu22.04 (the list shown is that one; the
    label said runtime-ubuntu22.04)."""
    with pytest.raises(BaseImageError) as info:
        from_target(
            "12.7.0", [base(current="nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04")], answers(), FACTS, Rules(535)
        )
    assert "releases on its track (cudnn-runtime-ubuntu22.04): " in str(info.value)


def test_a_move_down_says_so() -> None:
    plan = from_target("12.9.1", [base(current="nvidia/cuda:13.0.1-runtime-ubuntu22.04")], answers(), FACTS, Rules(580))
    assert "training: the base moves down, 13.0.1 -> 12.9.1 (an older CUDA, as requested)" in plan.reasons
    up = from_target("12.9.1", [base()], answers(), FACTS, Rules(535))
    assert not any("moves down" in r for r in up.reasons)


@pytest.mark.parametrize(
    ("current", "to", "target"),
    [
        # NVIDIA renamed the cuDNN variant twice: cudnn8 (<= 12.2.2), cudnn9 (12.3.2), cudnn (>= 12.4.1)
        ("nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04", "12.9.1", "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04"),
        ("nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04", "12.3.2", "nvidia/cuda:12.3.2-cudnn9-devel-ubuntu22.04"),
        ("nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04", "12.2.2", "nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"),
        ("nvidia/cuda:12.6.3-runtime-ubuntu22.04", "12.9.1", "nvidia/cuda:12.9.1-runtime-ubuntu22.04"),
    ],
)
def test_to_finds_the_tag_as_nvidia_wrote_it_on_the_track(current: str, to: str, target: str) -> None:
    """Regression: --to 12.9.1 from 11.8.0-cudnn8-... asked for 12.9.1-cudnn8-..., which does not
    exist, and the refusal listed 12.9.1 among the releases on its track."""
    from tasks.update.plans import target_for

    moved = target_for(base(current=current, requirements=None), to, TAGS)
    assert moved is not None and str(moved) == target


def test_to_moves_a_cudnn8_image_to_the_cudnn_tag() -> None:
    current = "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"
    plan = from_target("12.9.1", [base(current=current, requirements=None)], answers(), FACTS, Rules(580))
    assert [c.target for c in plan.changes] == ["nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04"]
    assert "training: the cuDNN major changes 8 -> 9 (cudnn8 -> cudnn): code built against cuDNN 8 must be rebuilt" in (
        " ".join(plan.reasons)
    ), "the plan says what the move does to cuDNN, as the review's does"


def test_of_two_spellings_at_one_release_the_unnumbered_cudnn_is_taken() -> None:
    from tasks.images.tags import CudaTag

    tags = ["12.3.2-cudnn9-runtime-ubuntu22.04", "12.3.2-cudnn-runtime-ubuntu22.04"]
    assert CudaTag.parse("11.8.0-cudnn8-runtime-ubuntu22.04").on_track("12.3.2", tags) == tags[1]
    assert CudaTag.parse("11.8.0-cudnn8-runtime-ubuntu22.04").on_track("12.3.2", tags[:1]) == tags[0]


def errored_image(name: str) -> dict[str, Any]:
    return {
        "image": name,
        "file": f"dockerfiles/{name}/Dockerfile",
        "current": "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
        "target": None,
        "recommended": False,
        "status": "error",
        "errors": ["registry: GET .../manifests/12.4.1-cudnn-runtime-ubuntu22.04: not in the snapshot"],
        "plan": None,
    }


def test_a_review_that_could_not_research_an_image_never_says_nothing_is_due() -> None:
    """Regression: `migrate` ended "no action: nothing to migrate" (NothingToDo, exit 0) when the
    review it ran could not look up the only image's base: a false all-clear."""
    report = ReviewReport.from_json({"images": [errored_image("trainer")]})
    assert report.images[0].errors == (
        "registry: GET .../manifests/12.4.1-cudnn-runtime-ubuntu22.04: not in the snapshot",
    )
    with pytest.raises(BaseImageError) as info:
        from_report(report, {"trainer": None})
    message = str(info.value)
    assert message.startswith(
        "the review report: the review did not finish (trainer (dockerfiles/trainer/Dockerfile): registry: GET"
    ), "the report it read, the image and why"
    assert "so it cannot say whether a migration is due; nothing was written" in message


def test_a_plan_says_which_images_the_review_could_not_research() -> None:
    report = ReviewReport.from_json({"images": [review_image("training", {}), errored_image("trainer")]})
    plan = from_report(report, {"training": "ml.txt", "trainer": None})
    assert plan is not None and [c.image for c in plan.changes] == ["training"]
    assert plan.warnings == (
        "trainer (dockerfiles/trainer/Dockerfile) was not reviewed, so this migration leaves it as it is: "
        "registry: GET .../manifests/12.4.1-cudnn-runtime-ubuntu22.04: not in the snapshot",
    )


def test_the_consumers_are_checked_against_the_torch_a_dockerfile_pip_line_moves_to() -> None:
    """Regression: with torch pinned only in the Dockerfile's `RUN pip install` line, `--to` moved
    it from 2.5.1 to 2.13.0 and checked the model's consumers against no torch at all, so an ONNX
    Runtime 1.17 consumer (which cannot load torch 2.13's default IR 10 export) got no opset
    decision."""
    from tasks.research.consumers import ConsumerRuntime

    run = dockerfile_pins(
        "FROM x\nRUN pip install torch==2.5.1+cu126 torchvision==0.20.1+cu126 "
        "--index-url https://download.pytorch.org/whl/cu126\n"
    )
    consumer = ConsumerRuntime("inference", "1.17.3", "onnxruntime", "inference.txt", "inference.txt:1")
    rules = Rules(535, consumers=(consumer,))
    plan = from_target("12.9.1", [base(requirements=None, run_pins=run)], answers(), FACTS, rules)
    (change,) = plan.changes
    assert change.dockerfile_pins.torch == "2.13.0", "the pip line moves to the newest torch on the target"
    assert plan.environment == {"BASEIMAGE_ONNX_OPSET": "20"}


def test_an_image_whose_research_did_not_finish_is_not_planned_even_when_recommended() -> None:
    """A base that is due but whose digest lookup failed after planning: migrating it would drop
    its digest pin. It is left as it is, and the warning says so."""
    half = {**review_image("trainer", {"torch": "2.13.0"}), "errors": ["RegistryError: manifest of the target: 503"]}
    report = ReviewReport.from_json({"images": [review_image("training", {}), half]})
    plan = from_report(report, {"training": "ml.txt", "trainer": None})
    assert plan is not None and [c.image for c in plan.changes] == ["training"]
    assert plan.warnings == (
        "trainer (dockerfiles/trainer/Dockerfile) was not reviewed, so this migration leaves it as it is: "
        "RegistryError: manifest of the target: 503",
    )
    assert "- warning: trainer (dockerfiles/trainer/Dockerfile) was not reviewed" in plan.summary()
    with pytest.raises(BaseImageError, match=r"did not finish \(trainer "):
        from_report(ReviewReport.from_json({"images": [half]}), {"trainer": None})


def test_an_annual_report_whose_lookups_failed_is_never_nothing_to_migrate() -> None:
    """Regression: an annual report keeps its failed lookups at the top (its images carry none), so
    `migrate --report annual-2026.json` read one with nothing due as "nothing to migrate"."""
    fine = {**review_image("training", {}), "recommended": False, "target": None}
    annual = {"images": [fine], "errors": ["nvidia/cuda:13.0.2-runtime-ubuntu24.04: HTTP 503"], "complete": False}
    with pytest.raises(BaseImageError) as info:
        from_report(ReviewReport.from_json(annual, "--report reports/annual-2026.json"), {"training": None})
    assert str(info.value).startswith(
        "reports/annual-2026.json: the review did not finish (lookup failed: "
        "nvidia/cuda:13.0.2-runtime-ubuntu24.04: HTTP 503), so it cannot say whether a migration is due"
    )
    assert from_report(ReviewReport.from_json({"images": [fine], "complete": True}), {"training": None}) is None
