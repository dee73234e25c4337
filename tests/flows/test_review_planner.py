"""The planner's decisions end to end against the seeded registry (through mirrors), a local static
PyTorch index and offline OSV records: a digest-pinned Dockerfile, a CUDA-13 image on an R535
fleet, an unresolvable FROM, and dry-run migrations of two images that share a requirements file
(one consistent plan, or a stop naming both), --to checked against the registry."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baseimage.cli import main
from tasks.update.requirements import read_requirements
from tests.conftest import REPO_ROOT
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry
from tests.support.repo import commit_all, copy_managed
from tests.support.seed import Seeded

pytestmark = pytest.mark.docker
OSV = REPO_ROOT / "tests" / "fixtures" / "osv"
ML = "dockerfiles/training/requirements/ml.txt"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIndex]:
    with StaticIndex(build_tree(tmp_path_factory.mktemp("pytorch") / "whl")) as served:
        yield served


def add_image(root: Path, name: str, from_line: str) -> None:
    folder = root / "dockerfiles" / name
    folder.mkdir()
    (folder / "Dockerfile").write_text(f"{from_line}\nRUN echo {name}\n")
    config = root / "config" / "policy.yaml"
    config.write_text(
        config.read_text().replace(
            "images:\n",
            f"images:\n  - name: {name}\n    dockerfile: dockerfiles/{name}/Dockerfile\n    track: cuda\n",
            1,
        )
    )


def configure(root: Path, registry: LocalRegistry, index: StaticIndex, extra: str = "") -> Path:
    """Mirrors, index and OSV records in the policy file itself (what migrate reads)."""
    config = root / "config" / "policy.yaml"
    text = config.read_text().replace(
        "  mirrors: {}", f"  mirrors:\n    docker.io: {registry.url}\n    nvcr.io: {registry.url}"
    )
    text = text.replace("\nfleet:", f"\nresearch:\n  pytorch_index: {index.url}\n  osv_db: {OSV}\n\nfleet:", 1)
    config.write_text(text + extra)
    return config


def review(capsys: pytest.CaptureFixture[str], config: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["review", "--config", str(config), "--out", str(out), "--no-banner", "--no-docs", "--json", *extra])
    printed = json.loads(capsys.readouterr().out)
    report = json.loads(Path(printed["files"]["json"]).read_text())
    assert printed["findings"] == report["findings"], "the command line shows the findings too"
    return code, report


def test_review_of_a_digest_pinned_base_and_a_cuda13_image_on_an_r535_fleet(
    prefect_harness: None,
    registry: LocalRegistry,
    seeded: Seeded,
    index: StaticIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_managed(tmp_path / "repo")
    old = seeded["nvidia/cuda:12.6.0-runtime-ubuntu22.04"].digest
    add_image(root, "pinned", f"FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04@{old}")
    add_image(root, "cuda13", "FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04")
    code, report = review(capsys, configure(root, registry, index), tmp_path / "out")
    assert code == 10 and report["complete"], report
    images = {i["image"]: i for i in report["images"]}
    # Digest-pinned: the target is the new tag at the registry's digest of it (the index, multi-arch).
    new = seeded["nvidia/cuda:12.9.1-runtime-ubuntu22.04"]
    assert new.digest != new.platform_digests["amd64"], "the fixture tag is a multi-arch index"
    assert images["pinned"]["target"] == f"nvidia/cuda:12.9.1-runtime-ubuntu22.04@{new.digest}"
    assert images["pinned"]["recommended"] and any("stays pinned by digest" in r for r in images["pinned"]["reasons"])
    # Fleet first: the CUDA-13 image the R535 fleet cannot run is the first, urgent finding.
    first = report["images"][0]
    assert first["image"] == "cuda13" and first["urgent"] and first["recommended"]
    assert first["target"] == "nvidia/cuda:12.9.1-runtime-ubuntu24.04"
    assert first["reasons"][0].startswith("URGENT: the fleet cannot run the current image 13.0.0-runtime-ubuntu24.04")
    assert report["findings"][0].startswith("the fleet's driver branch R535 LTSB reached end of life on 2026-06-01")
    # The joint stack: torch stays on the newest release any CUDA 12.x variant up to cu129 has.
    training = images["training"]["plan"]
    assert training["changes"]["torch"] == "2.13.0" and training["changes"]["variant"] == "cu126"
    assert images["training-cuda126"]["plan"]["changes"] == training["changes"], "ml.txt is shared: one plan"
    assert any("GHSA-53q9-r3pm-6pq6" in r and "fixed in 2.6.0" in r for r in images["training"]["reasons"])
    # NGC within the fleet: not the CUDA-13 releases.
    assert images["training-ngc"]["target"] == "nvcr.io/nvidia/pytorch:25.11-py3"
    assert images["training-ngc"]["plan"]["dockerfile_changes"] == {
        "cupy_package": "cupy-cuda12x",
        "cupy_version": "14.2.0",
        "onnxruntime_gpu": "1.26.0",
    }
    markdown = (tmp_path / "out" / f"review-{report['date']}.md").read_text()
    assert "- the fleet's driver branch R535 LTSB reached end of life" in markdown


def test_an_unresolvable_managed_from_makes_the_review_incomplete(
    prefect_harness: None,
    registry: LocalRegistry,
    index: StaticIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_managed(tmp_path / "repo")
    add_image(root, "upper", "FROM nvidia/CUDA:12.6.0-runtime-ubuntu22.04")
    add_image(root, "noarg", "ARG BASE\nFROM ${BASE}")
    code, report = review(capsys, configure(root, registry, index), tmp_path / "out")
    assert code == 3 and report["complete"] is False
    rows = {i["image"]: i for i in report["images"]}
    assert rows["upper"]["status"] == "error" and "repository name must be lowercase" in rows["upper"]["errors"][0]
    assert rows["noarg"]["errors"] == [
        "dockerfiles/noarg/Dockerfile:2: FROM ${BASE} cannot be resolved: FROM uses unset ARG BASE "
        "(no default, no --build-arg)"
    ]
    assert rows["training"]["status"] == "eol", "the other images are still reviewed"


def migrate(capsys: pytest.CaptureFixture[str], config: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["migrate", "--dry-run", "--config", str(config), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def planned_text(diff: str, path: str) -> str:
    """The new text of `path` from a unified diff that changes every line it shows (with context)."""
    lines, inside = [], False
    for line in diff.splitlines():
        if line.startswith("+++ "):
            inside = line == f"+++ b/{path}"
        elif inside and line.startswith(("+", " ")) and not line.startswith("+++"):
            lines.append(line[1:])
        elif inside and line.startswith("--- "):
            inside = False
    return "\n".join(lines) + "\n"


def test_dry_run_migrate_of_two_images_sharing_a_requirements_file(
    prefect_harness: None,
    registry: LocalRegistry,
    index: StaticIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """training (-> 12.9.1) and training-cuda126 (-> 12.6.3) share ml.txt: one plan for the file, and
    every pin the changelog claims is a pin the file has."""
    root = commit_all(copy_managed(tmp_path / "repo"))
    config = configure(root, registry, index)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "mirrors"], check=True
    )
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    code, out, err = migrate(capsys, config, tmp_path / "out")
    assert code == 0, out + err
    assert (
        "+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04" in out and "+FROM nvidia/cuda:12.6.3-runtime-ubuntu22.04" in out
    )
    assert out.count(f"+++ b/{ML}") == 1
    pins = read_requirements(planned_text(out, ML)).pins
    assert pins["torch"] == "2.13.0+cu126" and pins["torchvision"] == "0.28.0+cu126"
    assert pins["cupy-cuda12x"] == "14.2.0" and pins["onnxruntime-gpu"] == "1.26.0"
    claims = [line for line in out.splitlines() if line.startswith("+- training")]
    assert len(claims) == 2
    for claim in claims:
        assert "torch 2.13.0, torchvision 0.28.0, cupy-cuda12x 14.2.0, onnxruntime-gpu 1.26.0" in claim, claim
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True).stdout
    now = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert status == "" and now == head


def test_shared_file_conflict_stops_the_migration_naming_both(
    prefect_harness: None,
    registry: LocalRegistry,
    index: StaticIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = commit_all(copy_managed(tmp_path / "repo"))
    config = configure(root, registry, index)
    text = config.read_text().replace("allow_major_upgrade: false", "allow_major_upgrade: true")
    config.write_text(text.replace("min_driver: 535", "min_driver: 580"))
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "policy"], check=True
    )
    code, _out, err = migrate(capsys, config, tmp_path / "out")
    assert code == 1
    assert "the review found a conflict, nothing was written" in err
    assert "training (CUDA 13.1.0, Python 3.11) and training-cuda126 (CUDA 12.6.3, Python 3.11) share" in err
    assert "baseimage/" not in subprocess.run(["git", "-C", str(root), "branch"], capture_output=True, text=True).stdout


def test_to_is_checked_against_the_registry_before_anything_is_written(
    prefect_harness: None,
    registry: LocalRegistry,
    index: StaticIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = commit_all(copy_managed(tmp_path / "repo"))
    config = configure(root, registry, index)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "mirrors"], check=True
    )
    code, out, err = migrate(capsys, config, tmp_path / "out", "--to", "12.7.0")
    assert code == 1 and "--to 12.7.0: nothing was written" in err
    assert "nvidia/cuda:12.7.0-runtime-ubuntu22.04 does not exist in the registry (live)" in err
    assert "releases on its track (runtime-ubuntu22.04): 13.1.0, 13.0.2" in err
    code, out, err = migrate(capsys, config, tmp_path / "out", "--to", "12.9.1")
    assert code == 0, err
    pins = read_requirements(planned_text(out, ML)).pins
    assert pins["torch"] == "2.13.0+cu126", "not 2.8.0+cu129"
    assert "Dockerfile.cuda126 " not in out, "the 12.6-pinned image is left alone by --to 12.9.1"
