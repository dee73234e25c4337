"""The consumer rules (pure): what the planned torch exports against each consumer's ONNX Runtime:
nothing to do, a lower export opset (BASEIMAGE_ONNX_OPSET), a coupled pin bump, or a block naming
the consumer and both versions; and the review's view of them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasks.research.assembly import Review, review_consumers
from tasks.research.consumers import (
    ConsumerPlan,
    ConsumerRuntime,
    bump_target,
    lowered_exports,
    merge,
    plan_consumers,
)
from tasks.research.facts import TorchExport, load_facts
from tasks.research.planner import ImagePlan
from tasks.research.report_model import ReviewReport
from tasks.research.review import ImageReview
from tasks.update.requirements import CurrentPins

FACTS = load_facts()
REQ = "services/inference/requirements.txt"


def inference(version: str, package: str = "onnxruntime", file: str | None = REQ) -> ConsumerRuntime:
    return ConsumerRuntime("inference", version, package, file, f"{file}:4" if file else "")


@pytest.mark.parametrize(
    ("torch", "ort", "action", "opset"),
    [
        # torch before 2.9: the TorchScript exporter, opset 17 (2.8: 18), IR 8: every release here loads it
        ("2.5.1", "1.15.1", "ok", None),
        ("2.7.1+cu126", "1.16.3", "ok", None),
        ("2.8.0", "1.15.1", "ok", None),
        # torch 2.9 and later: the dynamo exporter, opset 20, IR 10
        ("2.9.1", "1.18.1", "ok", None),
        ("2.13.0+cu126", "1.20.1", "ok", None),
        ("2.14.1", "1.31.1", "ok", None),
        # IR 10 is too new for 1.15-1.17: the TorchScript exporter at the highest opset they load
        ("2.9.1", "1.17.3", "export-opset", 20),
        ("2.9.1", "1.17.0", "export-opset", 20),
        ("2.13.0", "1.16.3", "export-opset", 19),
        ("2.14.1", "1.15.1", "export-opset", 19),
        # a release the facts do not know, or a torch they do not know: said so, never a pass
        ("2.9.1", "1.14.1", "unknown", None),
        ("2.99.0", "1.20.1", "unknown", None),
    ],
)
def test_decision_table(torch: str, ort: str, action: str, opset: int | None) -> None:
    plan = plan_consumers(torch, [inference(ort)], FACTS)
    (decision,) = plan.decisions
    assert (decision.action, plan.export_opset) == (action, opset), decision.reason
    assert "inference" in decision.reason and ort in decision.reason
    assert not plan.blocking and not plan.bumps
    assert plan.environment == ({"BASEIMAGE_ONNX_OPSET": str(opset)} if opset else {})


@pytest.mark.parametrize(
    ("ort", "package", "needs", "target"),
    [
        (
            "1.17.3",
            "onnxruntime",
            (20, 10),
            "1.18.1",
        ),  # the oldest release that loads IR 10 (newest patch of its minor)
        ("1.15.1", "onnxruntime", (20, 10), "1.18.1"),
        ("1.16.0", "onnxruntime", (20, 10), "1.18.1"),
        ("1.17.1", "onnxruntime-gpu", (20, 10), "1.18.1"),  # 1.17.1 and 1.18.x are CUDA 11 / cuDNN 8 builds
        ("1.19.2", "onnxruntime-gpu", (22, 10), "1.21.1"),  # CUDA 12 builds
        ("1.20.1", "onnxruntime", (99, 10), None),  # no release loads it
    ],
)
def test_bump_table(ort: str, package: str, needs: tuple[int, int], target: str | None) -> None:
    assert bump_target(inference(ort, package), *needs, FACTS) == target


def test_a_gpu_pin_never_crosses_its_cuda_or_cudnn_build() -> None:
    # onnxruntime-gpu 1.18.1 is a CUDA 11 build; every release loading opset 22 is a CUDA 12 one
    assert bump_target(inference("1.18.1", "onnxruntime-gpu"), 22, 10, FACTS) is None


def test_a_gpu_pin_is_bumped_within_its_cuda_major() -> None:
    # onnxruntime-gpu 1.19.0 is a CUDA 12 build: a need for opset 22 goes to 1.21.x (CUDA 12), never to a CUDA 13 build
    assert bump_target(inference("1.19.0", "onnxruntime-gpu"), 22, 10, FACTS) == "1.21.1"
    assert bump_target(inference("1.19.0", "onnxruntime-gpu"), 27, 13, FACTS) is None
    assert bump_target(inference("1.19.0", "onnxruntime"), 27, 13, FACTS) == "1.32.0"


def test_bump_when_the_policy_allows_it() -> None:
    plan = plan_consumers("2.9.1", [inference("1.17.3")], FACTS, bump=True)
    (bump,) = plan.bumps
    assert (bump.consumer, bump.file, bump.current, bump.target) == ("inference", REQ, "1.17.3", "1.18.1")
    assert plan.export_opset is None and not plan.blocking
    assert plan.decisions[0].action == "bump" and "policy.bump_consumers" in plan.decisions[0].reason


def test_a_fixed_version_is_never_bumped_but_the_opset_is_lowered() -> None:
    plan = plan_consumers("2.9.1", [inference("1.17.3", file=None)], FACTS, bump=True)
    assert not plan.bumps and plan.export_opset == 20


def test_the_lowest_consumer_sets_the_opset() -> None:
    consumers = [
        inference("1.17.3"),
        replace(inference("1.15.1"), name="edge"),
        replace(inference("1.20.1"), name="new"),
    ]
    plan = plan_consumers("2.10.0", consumers, FACTS)
    assert plan.export_opset == 19
    assert [d.action for d in plan.decisions] == ["export-opset", "export-opset", "ok"]


NO_TORCHSCRIPT = replace(
    FACTS,
    torch_exports=(TorchExport("2.20", "dynamo", 23, 11, 18, 25, None, None),),
)


@pytest.mark.parametrize(
    ("ort", "bump", "action"),
    [
        ("1.23.2", False, "ok"),  # opset 23, IR 11
        ("1.20.1", False, "blocked"),  # IR 10 < 11 and no TorchScript exporter to go lower
        ("1.20.1", True, "bump"),  # -> 1.23.2
        ("1.20.1", None, "blocked"),  # a fixed version: never bumped
    ],
)
def test_without_a_torchscript_exporter_an_old_runtime_blocks(ort: str, bump: bool | None, action: str) -> None:
    consumer = inference(ort, file=None) if bump is None else inference(ort)
    plan = plan_consumers("2.20.0", [consumer], NO_TORCHSCRIPT, bump=bool(bump))
    (decision,) = plan.decisions
    assert decision.action == action
    if action == "blocked":
        (reason,) = plan.blocking
        assert "consumer inference" in reason and f"onnxruntime {ort}" in reason and "torch 2.20.0" in reason
        assert "opset 23, IR 11" in reason
    if action == "bump":
        assert plan.bumps[0].target == "1.23.2"


def test_lowered_exports_are_the_torchscript_ones_below_the_default() -> None:
    export = FACTS.torch_export("2.9.1")
    assert export is not None
    found = lowered_exports(export, FACTS)
    assert found[0] == (20, "torchscript", 9) and found[-1] == (7, "torchscript", 3)
    assert (17, "torchscript", 8) in found
    old = FACTS.torch_export("2.5.1")
    assert old is not None and lowered_exports(old, FACTS)[0] == (16, "torchscript", 8)


def test_merge_takes_the_lowest_opset_and_every_bump() -> None:
    a = plan_consumers("2.9.1", [inference("1.17.3")], FACTS)
    b = plan_consumers("2.13.0", [inference("1.16.3")], FACTS)
    merged = merge([a, b])
    assert merged.export_opset == 19
    assert ConsumerPlan.from_json(merged.to_json()) == merged
    assert merge([ConsumerPlan()]).empty


def report(torch: str) -> Review:
    """A review whose one plan moves training to 12.9.1 with `torch` (due: 12.6.0 is EOL)."""
    current = "nvidia/cuda:12.6.0-runtime-ubuntu22.04"
    plan = ImagePlan("training", "dockerfiles/training/Dockerfile", "cuda", current, "eol")
    plan.target, plan.due, plan.reasons = "nvidia/cuda:12.9.1-runtime-ubuntu22.04", True, ["CUDA 12.6.0 is EOL"]
    plan.changes, plan.pins = {"torch": torch}, CurrentPins(pins={"torch": "2.5.1+cu126"})
    image = ImageReview("training", plan.dockerfile, 1, current, plan=plan)
    image.settle()
    assert image.recommended
    return Review("2026-12-01", "test", 535, [image])


def test_the_review_records_the_export_opset() -> None:
    out = review_consumers(report("2.13.0"), [inference("1.17.3")], FACTS).to_json()
    plan = out["images"][0]["plan"]
    assert plan["consumers"]["export_opset"] == 20
    assert plan["consumers"]["environment"] == {"BASEIMAGE_ONNX_OPSET": "20"}
    assert out["recommended"] is True
    assert any("BASEIMAGE_ONNX_OPSET=20" in r for r in out["images"][0]["reasons"])


def test_a_blocking_consumer_blocks_the_review_plan() -> None:
    out = review_consumers(report("2.20.0"), [inference("1.20.1", file=None)], NO_TORCHSCRIPT).to_json()
    image = out["images"][0]
    assert image["recommended"] is False and out["recommended"] is False
    assert any("consumer inference" in b for b in image["plan"]["blocking"])
    assert any(r.startswith("blocked: consumer inference") for r in image["reasons"]), "the row says why"
    assert any("the consumers block the plan" in f for f in out["findings"])


def test_migrate_from_a_review_report_keeps_the_consumer_decision() -> None:
    from tasks.update.plans import from_report

    out = review_consumers(report("2.13.0"), [inference("1.17.3")], FACTS).to_json()
    plan = from_report(ReviewReport.from_json(out), {"training": "ml.txt"})
    assert plan is not None and plan.environment == {"BASEIMAGE_ONNX_OPSET": "20"}
    assert "BASEIMAGE_ONNX_OPSET=20" in plan.summary()


def test_the_review_checks_the_consumers_against_the_torch_a_dockerfile_pip_line_runs() -> None:
    """Regression: for an image that pins torch only in its Dockerfile's `RUN pip install` line,
    the review compared the consumers with the planner's newest torch instead of the one the pip
    line keeps, and skipped a plan that only moves the pip line's pins."""
    current = "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    plan = ImagePlan("training", "dockerfiles/training/Dockerfile", "cuda", current, "supported")
    plan.due, plan.reasons = True, ["onnxruntime-gpu 1.19.2 has an advisory"]
    plan.dockerfile_pins = CurrentPins(pins={"torch": "2.8.0+cu129", "onnxruntime-gpu": "1.19.2"})
    plan.dockerfile_changes = {"onnxruntime_gpu": "1.20.1"}  # torch stays at 2.8.0: it runs on 12.9.1
    from tasks.research.planner import TorchChoice

    plan.torch = TorchChoice("cu129", "2.13.0", "0.28.0", True)  # the newest the index has, not what the line keeps
    image = ImageReview("training", plan.dockerfile, 1, current, plan=plan)
    image.settle()
    assert image.recommended and not plan.moves_base
    out = review_consumers(Review("2026-12-01", "test", 535, [image]), [inference("1.17.3")], FACTS).to_json()
    decided = out["images"][0]["plan"]["consumers"]
    assert decided is not None, "a pins-only plan of the Dockerfile is checked too"
    assert decided["torch"] == "2.8.0", "torch 2.8 exports opset 18, IR 8: ONNX Runtime 1.17 loads it"
    assert decided["environment"] == {}
