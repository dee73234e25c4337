"""`baseimage migrate --dry-run --to 12.9.1` on a copy of a repository shaped like the user's
(tests/fixtures/heimdall): planned offline against the bundled snapshot, its diff moves the FROM
(through its ARG), the inline `RUN pip install` pins, the ARG that holds the wheel variant, the
requirements include and the uv pyproject.toml, and nothing else; the checkout is untouched."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.repo import commit_all

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "heimdall"


@pytest.fixture
def heimdall(tmp_path: Path) -> Path:
    return commit_all(Path(shutil.copytree(FIXTURE, tmp_path / "heimdall")))


def test_a_dry_run_on_the_users_repository_moves_every_declaration(prefect_harness: None, heimdall: Path) -> None:
    from flows.migrate import migrate

    state = migrate(
        to="12.9.1",
        dry_run=True,
        config_path=str(heimdall / "config" / "policy.yaml"),
        out_dir=str(heimdall.parent / "reports"),
        return_state=True,
    )
    outcome = state.result()
    diff = outcome["diff"]
    for line in (
        "-ARG CUDA_VERSION=12.6.0\n+ARG CUDA_VERSION=12.9.1\n",  # the FROM, through its ARG
        "-ARG TORCH_CUDA=cu124\n+ARG TORCH_CUDA=cu126\n",  # the wheel variant of the pip line's index URL
        '-        "torch==2.5.1" "torchvision==0.20.1" \\\n+        "torch==2.13.0" "torchvision==0.28.0" \\\n',
        "--- a/requirements/gpu.txt\n+++ b/requirements/gpu.txt\n",  # the include of requirements/ml.txt
        # a range moved only as far as needed, and a pin
        "-cupy-cuda12x>=13.0,<13.4\n-onnxruntime-gpu==1.20.1\n+cupy-cuda12x>=13.0,<14.3\n+onnxruntime-gpu==1.26.0\n",
        '-torch = [{ index = "pytorch-cu124" }]\n-torchvision = [{ index = "pytorch-cu124" }]\n'
        '+torch = [{ index = "pytorch-cu126" }]\n+torchvision = [{ index = "pytorch-cu126" }]\n',
        '-name = "pytorch-cu124"\n-url = "https://download.pytorch.org/whl/cu124"\n'
        '+name = "pytorch-cu126"\n+url = "https://download.pytorch.org/whl/cu126"\n',
        '-    "torch==2.5.1",\n-    "torchvision==0.20.1",\n',
    ):
        assert line in diff, line
    assert "+- requirements/gpu.txt:2: cupy-cuda12x>=13.0,<13.4 -> cupy-cuda12x>=13.0,<14.3: the range moved" in diff
    assert sorted(outcome["files"]) == [
        "CHANGELOG.md",
        "docs/base-image-policy.md",
        "pyproject.toml",
        "requirements/gpu.txt",
        "services/training/Dockerfile",
        "services/training/Dockerfile.cuda126.bak",
    ]
    status = subprocess.run(["git", "-C", str(heimdall), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout == ""
    for path in FIXTURE.rglob("*"):
        if path.is_file():
            assert (heimdall / path.relative_to(FIXTURE)).read_bytes() == path.read_bytes(), path


def test_two_dockerfiles_of_one_folder_keep_a_backup_each(prefect_harness: None, heimdall: Path) -> None:
    """The review moves Dockerfile (12.6.0 -> 12.9.1) and Dockerfile.cuda126 (12.6.0 -> 12.6.3);
    applied from the review's report, each old text is kept in a backup of its own (both were
    named Dockerfile.cuda126.bak, and the second was silently dropped)."""
    import json

    from baseimage.cli import main
    from flows.migrate import migrate

    config = str(heimdall / "config" / "policy.yaml")
    reports = heimdall.parent / "reports"
    argv = ["review", "--config", config, "--sources", "offline", "--no-banner", "--no-docs", "--out", str(reports)]
    assert main([*argv, "--json"]) == 10
    report = next(reports.glob("review-*.json"))
    assert {i["image"]: i["target"] for i in json.loads(report.read_text())["images"]}["training-cuda126"].endswith(
        "12.6.3-runtime-ubuntu22.04"
    )
    outcome = migrate(report_path=str(report), dry_run=True, config_path=config, out_dir=str(reports))
    files = sorted(outcome["files"])
    assert "services/training/Dockerfile.cuda126.bak" in files
    assert "services/training/Dockerfile.cuda126.cuda126.bak" in files
    diff = outcome["diff"]
    main_backup = diff.split("+++ b/services/training/Dockerfile.cuda126.bak\n", 1)[1].split("diff --git", 1)[0]
    fallback_backup = diff.split("+++ b/services/training/Dockerfile.cuda126.cuda126.bak\n", 1)[1].split(
        "diff --git", 1
    )[0]
    original = FIXTURE / "services" / "training"
    assert (
        "".join(f"+{line}" for line in (original / "Dockerfile").read_text().splitlines(keepends=True)) in main_backup
    )
    assert (
        "".join(f"+{line}" for line in (original / "Dockerfile.cuda126").read_text().splitlines(keepends=True))
        in fallback_backup
    )
