"""The workload for real on this machine's CPU: data determinism, training, ONNX, parity."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.workload import data
from tasks.workload.run import GpuRequiredError, WorkloadConfig, run
from tests.conftest import REPO_ROOT

WORKLOAD = REPO_ROOT / "tasks" / "workload"


def test_same_seed_same_data_and_ranges_do_not_overlap() -> None:
    a = data.generate(np, 7, 0, 64)
    b = data.generate(np, 7, 0, 64)
    c = data.generate(np, 7, 32, 32)
    other = data.generate(np, 8, 0, 64)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.labels[32:], c.labels)  # sample i is the same whatever the batch
    assert np.array_equal(a.images[32:], c.images)
    assert not np.array_equal(a.labels, other.labels)
    assert a.images.dtype == np.float32 and a.images.shape == (64, 3, 32, 32)
    assert a.labels.dtype == np.int64 and set(np.unique(a.labels)) <= set(range(10))
    assert a.nbytes == 64 * 3 * 32 * 32 * 4 + 64 * 8 and a.gb_per_s > 0


def test_uniform_is_in_range_and_roughly_uniform() -> None:
    values = data.uniform(np, 1, 0, 100_000, stream=3)
    assert values.dtype == np.float32 and values.min() >= 0 and values.max() < 1
    assert abs(float(values.mean()) - 0.5) < 0.01
    assert np.histogram(values, bins=10, range=(0, 1))[0].min() > 9_000


def test_workload_in_process_on_cpu(tmp_path: Path) -> None:
    result = run(WorkloadConfig(steps=16, train_samples=256, test_samples=64, device="cpu", out_dir=tmp_path))
    assert result["ok"], result["checks"]
    assert result["device"] == "cpu" and result["data"]["backend"] == "numpy"
    losses = result["training"]["losses"]
    assert len(losses) == 16 and losses[-1] < losses[0]
    assert result["training"]["images_per_s"] > 0 and result["training"]["peak_memory_bytes"] > 0
    assert result["onnx"]["provider"] == "CPUExecutionProvider"
    assert result["onnx"]["max_abs_diff"] <= 1e-3 and result["onnx"]["dynamic_batch_ok"]
    assert (tmp_path / "model.onnx").stat().st_size > 100_000
    assert 0.0 <= result["evaluation"]["accuracy"] <= 1.0


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="about machines without a GPU")


@NO_GPU
def test_require_gpu_fails_clearly_without_one() -> None:
    with pytest.raises(
        GpuRequiredError,
        match=r"--require-gpu: no usable GPU: torch.cuda.is_available\(\) is False",
    ):
        run(WorkloadConfig(require_gpu=True))


def test_command_line_run_under_two_minutes(tmp_path: Path) -> None:
    """The issue's acceptance run: the default workload, as a candidate image would run it."""
    out = tmp_path / "r.json"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tasks.workload", "--out", str(out), "--device", "cpu"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert elapsed < 120
    result = json.loads(out.read_text())
    assert result["ok"] and result["checks"] == {
        "loss_fell": True,
        "onnx_valid": True,
        "parity_ok": True,
        "dynamic_batch_ok": True,
    }
    assert result["training"]["loss_last"] < result["training"]["loss_first"]
    assert "device=cpu" in done.stdout and "ok=True" in done.stdout


@NO_GPU
def test_command_line_require_gpu_exit_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.workload",
            "--out",
            str(tmp_path / "r.json"),
            "--require-gpu",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: --require-gpu: no usable GPU:")
    assert not (tmp_path / "r.json").exists()


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tasks.workload", "--out", str(tmp_path / "r.json"), "--steps", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--steps must be >= 2" in done.stderr


def test_workload_imports_nothing_else_from_the_project() -> None:
    for path in WORKLOAD.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"prefect", "baseimage", "flows", "deployments"}, (path, name)
                if top == "tasks":
                    assert name.startswith("tasks.workload"), (path, name)
