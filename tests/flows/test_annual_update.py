"""The annual update: the pure planner on the fixture tag universe (Ubuntu LTS, CUDA path and what
blocks the next major, pinned minors), and the whole flow offline on the bundled snapshot, whose
JSON `baseimage migrate --report` reads."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tasks.research.annual import plan_cuda_image
from tasks.research.facts import load_facts
from tasks.research.report_model import ReviewReport
from tasks.update.plans import from_report
from tests.conftest import REPO_ROOT
from tests.support.universe import cuda_images

TAGS = [i.tag for i in cuda_images() if i.repository == "nvidia/cuda"]
CURRENT = "nvidia/cuda:12.6.0-runtime-ubuntu22.04"


def plan(today: date, **kw: object):  # type: ignore[no-untyped-def]
    args = {"fleet_min_driver": 535, "allow_major": False, "unsupported": {}}
    args.update(kw)
    return plan_cuda_image("training", "Dockerfile", CURRENT, TAGS, load_facts(), today, **args)  # type: ignore[arg-type]


def test_ubuntu_end_of_support_within_a_year_moves_to_the_next_lts() -> None:
    result = plan(date(2026, 11, 28))
    assert result.ubuntu.current == "22.04" and result.ubuntu.end_of_standard_support == "2027-05-31"
    assert result.ubuntu.next_lts_on_target == "24.04" and result.ubuntu.days_left == 184
    assert result.target == "nvidia/cuda:12.9.1-runtime-ubuntu24.04" and result.recommended
    assert result.cuda_path.newest_on_major == "12.9.1"
    assert result.cuda_path.blocked.startswith("CUDA 12 -> 13 is blocked: R535 is below 580")
    assert "to R580 or newer" in result.cuda_path.unblock


def test_ubuntu_far_from_end_of_support_keeps_the_os() -> None:
    result = plan(date(2025, 1, 10))
    assert result.target == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    assert not any("standard support ends" in r for r in result.reasons)


def test_fleet_on_r580_leaves_only_the_policy_flag() -> None:
    result = plan(date(2026, 11, 28), fleet_min_driver=580)
    assert result.cuda_path.next_major_runs_on_fleet is True
    assert result.cuda_path.blocked == "CUDA 13 runs on the fleet but policy.allow_major_upgrade is false"


def test_pinned_minor_stays_on_it() -> None:
    result = plan(date(2026, 11, 28), pin_minor="12.6")
    assert result.target == "nvidia/cuda:12.6.3-runtime-ubuntu24.04"


def test_annual_update_offline_on_the_bundled_snapshot(prefect_harness: None, tmp_path: Path) -> None:
    from flows.annual_update import annual_update

    report = annual_update(
        config_path=str(REPO_ROOT / "config" / "policy.yaml"), sources="offline", out_dir=str(tmp_path)
    )
    images = {i["image"]: i for i in report["images"]}
    assert report["errors"] == [], "the snapshot holds every request the annual update makes"
    assert images["training"]["python"]["newest_with_torch"] == "3.13"
    assert images["training"]["platforms"]["nvidia/cuda:12.6.0-runtime-ubuntu22.04"] == [
        "linux/amd64",
        "linux/arm64/v8",
    ]
    options = [row["option"] for row in report["ngc_vs_cuda"]]
    assert options[0] == "plain CUDA + pip torch" and options[1].startswith("NGC PyTorch ")
    assert report["ngc_vs_cuda"][1]["pytorch"] and report["ngc_vs_cuda"][1]["compressed_mb"] is not None
    # Regression: the plain CUDA row named the newest torch of the newest Python (3.13's, on cu129),
    # not the torch the plan installs for the image's own Python (3.11): the comparison was of a
    # stack no migration would build.
    assert images["training"]["stack"]["python"] == "3.11", "images[].python of config/policy.yaml"
    assert report["ngc_vs_cuda"][0]["pytorch"] == "torch 2.13.0 (pip wheel, cu126)"
    saved = json.loads(Path(report["files"]["json"]).read_text())
    markdown = Path(report["files"]["markdown"]).read_text()
    assert markdown.startswith("# Annual base-image update") and "baseimage migrate --report" in markdown
    if report["recommended"]:
        migration = from_report(ReviewReport.from_json(saved), {"training": None, "training-cuda126": None})
        assert migration is not None
        assert {c.image for c in migration.changes} == {i["image"] for i in saved["images"] if i["recommended"]}


def test_the_stack_is_planned_for_the_images_own_python(prefect_harness: None, tmp_path: Path) -> None:
    """Regression: the annual flow never passed images[].python on, so every image's stack (the
    plan `migrate --report` reads) and the NGC comparison were for Python 3.11."""
    from flows.annual_update import annual_update
    from tests.support.repo import copy_managed

    repo = copy_managed(tmp_path / "repo", ("dockerfiles", "config"))
    config = repo / "config" / "policy.yaml"
    config.write_text(config.read_text().replace('python: "3.11"', 'python: "3.12"', 1))
    report = annual_update(config_path=str(config), sources="offline", out_dir=str(tmp_path / "out"))
    training = next(i for i in report["images"] if i["image"] == "training")
    assert training["stack"]["python"] == "3.12" and training["plan"]["python"] == "3.12"
    assert any("the newest for Python 3.12" in r for r in training["reasons"]), training["reasons"]
    torch = training["stack"]["torch"]
    assert report["ngc_vs_cuda"][0]["pytorch"] == f"torch {torch['torch']} (pip wheel, {torch['variant']})"


@pytest.mark.parametrize("sources", ["auto", "elsewhere"])
def test_annual_update_names_bad_sources(prefect_harness: None, sources: str) -> None:
    from flows.annual_update import annual_update

    state = annual_update(sources=sources, return_state=True)
    assert state.is_failed() and f"sources={sources!r}: use live or offline" in str(state.message)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"mirrors": {"docker.io": "https://ci:s3cret-token@mirror.example"}}, "mirrors: mirror for docker.io: put no"),
        ({"pytorch_index": "https://ci:s3cret-token@mirror.example/whl"}, "pytorch_index: put no credentials"),
        ({"pytorch_index": "mirror.example/whl"}, "pytorch_index: must be an http:// or https:// URL"),
    ],
)
def test_the_flows_refuse_bad_url_parameters_at_once(
    prefect_harness: None, tmp_path: Path, parameters: dict[str, Any], message: str
) -> None:
    """A deployment's or the UI's `mirrors` and `pytorch_index` go through the rules the policy
    file and the command line apply; the annual flow fails at once (before its research task's
    retries), and neither flow repeats the secret."""
    from flows.annual_update import annual_update
    from flows.quarterly_review import quarterly_review

    config = str(REPO_ROOT / "config" / "policy.yaml")
    annual = annual_update(
        config_path=config, sources="offline", out_dir=str(tmp_path), return_state=True, **parameters
    )
    review = quarterly_review(
        config_path=config, sources="offline", out_dir=str(tmp_path), update_docs=False, return_state=True, **parameters
    )
    for state in (annual, review):
        assert state.is_failed() and message in str(state.message), state.message
        assert "s3cret-token" not in str(state.message)
    assert not list(tmp_path.iterdir()), "nothing was written"


def test_annual_command_falls_back_to_the_snapshot_and_exits_10_when_due(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from baseimage.cli import main

    code = main(["annual", "--config", str(REPO_ROOT / "config" / "policy.yaml"), "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert "network unreachable" in captured.err and "using the bundled snapshot" in captured.err
    report = json.loads(captured.out)
    assert code == (10 if report["recommended"] else 0)
    assert report["outcome"].startswith(("upgrade due: ", "no upgrade due: "))
    assert (tmp_path / f"annual-{report['year']}.md").exists()


def test_annual_command_exits_3_when_a_lookup_failed(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exit rule end to end: a base the snapshot has no manifest for is a failed lookup, so the
    command exits 3 (what was not seen may be due too), even with an upgrade due."""
    from baseimage.cli import main
    from tests.support.repo import one_image_repo

    repo = one_image_repo(
        tmp_path / "repo",
        "trainer",
        "Dockerfile",
        "cuda",
        min_driver=535,
        base="nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    )
    argv = ["annual", "--sources", "offline", "--config", str(repo / "config" / "policy.yaml")]
    code = main([*argv, "--out", str(tmp_path / "out"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] and any("12.4.1-runtime-ubuntu22.04" in e for e in report["errors"]), report["errors"]
    assert report["complete"] is False and "incomplete" in report["outcome"]
    assert code == 3
