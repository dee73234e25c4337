"""A dry-run migration of this repository's managed files (bundled snapshot, no network) whose
inference consumer pins an old ONNX Runtime: the plan carries the export opset the training
service must use, or (with policy.bump_consumers) the coupled bump of the consumer's pin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baseimage.cli import main
from tests.support.repo import commit_all, copy_managed

PIN = "services/inference/requirements.txt"


def dry_run(tmp_path: Path, pin: str, bump: bool = False) -> tuple[int, dict[str, Any], str]:
    repo = copy_managed(tmp_path / "repo")
    requirements = repo / PIN
    requirements.write_text(requirements.read_text().replace("onnxruntime==1.20.1", f"onnxruntime=={pin}"))
    if bump:
        config = repo / "config" / "policy.yaml"
        config.write_text(config.read_text().replace("bump_consumers: false", "bump_consumers: true"))
    commit_all(repo)
    out = tmp_path / "out"
    code = main(
        ["migrate", "--to", "12.9.1", "--dry-run", "--config", str(repo / "config" / "policy.yaml"), "--out", str(out)]
    )
    (outcome,) = out.glob("migrate-*.json")
    return code, json.loads(outcome.read_text()), requirements.read_text()


def test_an_old_consumer_gets_the_export_opset(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, outcome, after = dry_run(tmp_path, "1.17.3")
    assert code == 0
    assert "+torch==2.13.0+cu126" in outcome["diff"], "the plan moves torch past 2.9 (IR 10 by default)"
    assert "the training service exports ONNX with BASEIMAGE_ONNX_OPSET=20" in outcome["plan"]
    assert PIN not in outcome["files"] and "onnxruntime==1.17.3" in after


def test_with_bump_consumers_the_pin_moves_with_the_migration(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, outcome, after = dry_run(tmp_path, "1.17.3", bump=True)
    assert code == 0
    assert PIN in outcome["files"]
    assert "-onnxruntime==1.17.3\n+onnxruntime==1.18.1\n" in outcome["diff"]
    assert "consumer inference: onnxruntime 1.17.3 -> 1.18.1 in services/inference/requirements.txt" in outcome["plan"]
    assert "BASEIMAGE_ONNX_OPSET" not in outcome["plan"]
    assert "onnxruntime==1.17.3" in after, "a dry run changes nothing"


def test_a_current_consumer_needs_nothing(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, outcome, _after = dry_run(tmp_path, "1.20.1", bump=True)
    assert code == 0
    assert "BASEIMAGE_ONNX_OPSET" not in outcome["plan"] and PIN not in outcome["files"]


def test_the_review_plan_carries_the_consumer_decision(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_managed(tmp_path / "repo")
    requirements = repo / PIN
    requirements.write_text(requirements.read_text().replace("onnxruntime==1.20.1", "onnxruntime==1.17.3"))
    code = main(
        [
            "review",
            "--config",
            str(repo / "config" / "policy.yaml"),
            "--no-banner",
            "--no-docs",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 10
    report = json.loads(Path(printed["files"]["json"]).read_text())  # the report migrate --report reads
    training = next(i for i in report["images"] if i["image"] == "training")
    decided = training["plan"]["consumers"]
    assert decided["export_opset"] == 20 and decided["environment"] == {"BASEIMAGE_ONNX_OPSET": "20"}
    assert decided["consumers"][0]["where"] == f"{PIN}:4"
    assert any("consumer inference: onnxruntime 1.17.3" in r for r in training["reasons"])


def test_the_deploy_gets_the_plans_variables_and_compose_hands_them_on() -> None:
    import yaml

    from baseimage.settings import load_settings
    from flows.migrate import _with_plan_variables
    from tasks.research.consumers import ConsumerPlan
    from tasks.update.plan import MigrationPlan
    from tests.conftest import REPO_ROOT

    settings = load_settings()
    plan = MigrationPlan((), consumers=ConsumerPlan("2.13.0", 20, 19))
    deployed = _with_plan_variables(settings, plan)
    assert deployed.environments["staging"].variables == {"TRAINING_PORT": "8000", "BASEIMAGE_ONNX_OPSET": "19"}
    assert deployed.environments["production"].variables["BASEIMAGE_ONNX_OPSET"] == "19"
    assert _with_plan_variables(settings, MigrationPlan(())) is settings
    compose = yaml.safe_load((REPO_ROOT / "deployments" / "compose" / "training.yaml").read_text())
    for service in ("api", "worker"):
        assert compose["services"][service]["environment"]["BASEIMAGE_ONNX_OPSET"] == "${BASEIMAGE_ONNX_OPSET:-}"
