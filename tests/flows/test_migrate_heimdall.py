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
