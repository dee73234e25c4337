"""The quarterly review against the seeded registry (through mirrors), a local static PyTorch
index and offline OSV records: deprecation, supersession, the target, wheels, drivers, advisories."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baseimage.cli import main
from tests.conftest import REPO_ROOT
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry
from tests.support.repo import copy_managed

pytestmark = pytest.mark.docker
OSV = REPO_ROOT / "tests" / "fixtures" / "osv"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIndex]:
    with StaticIndex(build_tree(tmp_path_factory.mktemp("pytorch") / "whl")) as served:
        yield served


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the managed files plus an image on the deprecated 12.1.0."""
    root = copy_managed(tmp_path / "repo")
    legacy = root / "dockerfiles" / "legacy"
    legacy.mkdir()
    (legacy / "Dockerfile").write_text("FROM nvidia/cuda:12.1.0-runtime-ubuntu22.04\nRUN echo legacy\n")
    config = root / "config" / "policy.yaml"
    config.write_text(
        config.read_text().replace(
            "images:\n",
            "images:\n  - name: legacy\n    dockerfile: dockerfiles/legacy/Dockerfile\n    track: cuda\n",
            1,
        )
    )
    return root


def review(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    registry: LocalRegistry,
    index: StaticIndex,
    *extra: str,
) -> tuple[int, dict[str, Any]]:
    code = main(
        [
            "review",
            "--config",
            str(repo / "config" / "policy.yaml"),
            "--mirror",
            f"docker.io={registry.url}",
            "--mirror",
            f"nvcr.io={registry.url}",
            "--pytorch-index",
            index.url,
            "--osv-db",
            str(OSV),
            "--out",
            str(repo / "reports"),
            "--json",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_review_finds_deprecation_supersession_target_and_advisories(
    prefect_harness: None,
    docker_client: Any,
    registry: LocalRegistry,
    index: StaticIndex,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = review(capsys, repo, registry, index)
    assert code == 10, report
    images = {i["image"]: i for i in report["images"]}
    legacy = images["legacy"]
    assert legacy["status"] == "eol" and legacy["eol"] is True
    assert any("NVIDIA_CUDA_END_OF_LIFE" in r for r in legacy["reasons"])
    assert legacy["deprecation_banner"] == [
        "** DEPRECATION NOTICE! **",
        "THIS IMAGE IS DEPRECATED and is scheduled for DELETION.",
        "https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/support-policy.md",
    ]
    training = images["training"]
    assert training["status"] == "eol" and training["recommended"]
    assert any("newer patch 12.6.3 of the same minor exists" in r for r in training["reasons"])
    assert training["deprecation_banner"] == []
    # newest supported 12.x runtime-ubuntu22.04 release with wheels that R535 runs (12.9.1 via MVC)
    assert training["target"] == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    assert any("13.1.0 not chosen" in r for r in training["reasons"])
    pinned = images["training-cuda126"]
    assert pinned["target"] == "nvidia/cuda:12.6.3-runtime-ubuntu22.04"
    ngc = images["training-ngc"]
    # Corrected (issue 12): 26.10 is CUDA 13.1, which the R535 fleet cannot run; 25.11 (CUDA 12.9) is the newest it runs.
    assert ngc["target"] == "nvcr.io/nvidia/pytorch:25.11-py3" and ngc["status"] == "supported"
    rows = {(r["image"], r["cuda"]): r for r in report["matrix"]}
    # Corrected (issue 12): this codified "the CUDA minor's own variant first" (cu129 has only torch 2.8,
    # so a move to 12.9.1 took torch down); the rule is the newest torch on any CUDA 12.x variant up to cu129.
    assert (
        rows[("training", "12.9.1")]["torch"],
        rows[("training", "12.9.1")]["torch_variant"],
        rows[("training", "12.9.1")]["torchvision"],
    ) == ("2.13.0", "cu126", "0.28.0")
    assert (
        rows[("training", "12.5.1")]["torch"],
        rows[("training", "12.5.1")]["torch_variant"],
    ) == ("2.6.0", "cu124")
    assert rows[("training", "12.6.3")]["torch"] == "2.13.0" and rows[("training", "12.6.3")]["torchvision"] == "0.28.0"
    assert rows[("training", "13.1.0")]["fleet_ok"] is False
    assert (
        rows[("training", "12.9.1")]["fleet_ok"] is True
        and rows[("training", "12.9.1")]["cupy"] == "cupy-cuda12x==14.2.0"
    )
    assert rows[("training", "12.6.0")]["estimated_deletion"] == "2025-03-05"
    assert [a["id"] for a in report["advisories"]] == ["GHSA-53q9-r3pm-6pq6"]
    assert any(
        r.startswith("advisory GHSA-53q9-r3pm-6pq6 on torch 2.5.1+cu126 is fixed in 2.6.0: the plan pins 2.13.0+cu126")
        for r in training["reasons"]
    )
    assert not any("GHSA" in r for r in legacy["reasons"]), "legacy has no requirements file"
    assert report["advisories"][0]["version"] == "2.5.1+cu126" and report["advisories"][0]["fixed"] == ["2.6.0"]
    files = report["files"]
    assert Path(files["markdown"]).read_text().startswith("# Quarterly base-image review")
    assert "GHSA-53q9-r3pm-6pq6" in Path(files["markdown"]).read_text()
    doc = (repo / "docs" / "base-image-policy.md").read_text()
    findings = doc[doc.index("<!-- baseimage:findings:start -->") : doc.index("<!-- baseimage:findings:end -->")]
    assert "migration recommended" in findings, findings
    # The per-release matrix lives in the report, not in the document (it used to be dumped there).
    assert "| training | 12.9.1 |" not in doc and "| training | 12.9.1 |" in Path(files["markdown"]).read_text()


def test_fleet_driver_580_allows_nothing_more_without_major_policy(
    prefect_harness: None,
    registry: LocalRegistry,
    index: StaticIndex,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, report = review(capsys, repo, registry, index, "--fleet-min-driver", "580", "--no-banner")
    training = {i["image"]: i for i in report["images"]}["training"]
    assert training["target"] == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    rows = {(r["image"], r["cuda"]): r for r in report["matrix"]}
    assert rows[("training", "13.0.2")]["fleet_ok"] is True


def test_snapshot_then_offline_review_gives_the_same_answer(
    prefect_harness: None,
    registry: LocalRegistry,
    index: StaticIndex,
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(repo / "config" / "policy.yaml")
    mirrors = ["--mirror", f"docker.io={registry.url}", "--mirror", f"nvcr.io={registry.url}"]
    assert (
        main(
            [
                "snapshot",
                str(tmp_path / "snap"),
                "--config",
                config,
                *mirrors,
                "--pytorch-index",
                index.url,
            ]
        )
        == 0
    )
    capsys.readouterr()
    live = main(
        [
            "review",
            "--config",
            config,
            *mirrors,
            "--pytorch-index",
            index.url,
            "--no-banner",
            "--no-docs",
            "--out",
            str(tmp_path / "live"),
            "--json",
        ]
    )
    live_report = json.loads(capsys.readouterr().out)
    requests_before = len(index.requests)
    offline = main(
        [
            "review",
            "--config",
            config,
            *mirrors,
            "--pytorch-index",
            index.url,
            "--no-banner",
            "--no-docs",
            "--offline",
            str(tmp_path / "snap"),
            "--out",
            str(tmp_path / "offline"),
            "--json",
        ]
    )
    offline_report = json.loads(capsys.readouterr().out)
    assert live == offline == 10
    assert len(index.requests) == requests_before, "the offline review sends nothing to the index"
    strip = lambda r: [(i["image"], i["status"], i["target"]) for i in r["images"]]  # noqa: E731
    assert strip(offline_report) == strip(live_report)
    assert offline_report["matrix"] == live_report["matrix"]
    assert offline_report["sources"].startswith(f"offline snapshot {tmp_path / 'snap'} (recorded ")
