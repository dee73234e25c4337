"""Runs only where an NVIDIA GPU exists (never in CI): nvidia-smi, CuPy on the device, the
workload on CUDA, and ONNX Runtime's CUDA provider."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tasks.workload import data
from tasks.workload.run import WorkloadConfig, run

pytestmark = pytest.mark.gpu


def test_nvidia_smi_lists_a_gpu() -> None:
    smi = shutil.which("nvidia-smi")
    assert smi, "nvidia-smi is not on PATH"
    out = subprocess.run(
        [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    name, driver, memory = (part.strip() for part in out.splitlines()[0].split(","))
    assert name.startswith("NVIDIA") and int(driver.split(".")[0]) >= 450 and memory.endswith("MiB")


def test_cupy_data_matches_numpy() -> None:
    cupy = pytest.importorskip("cupy")
    gpu = data.generate(cupy, 11, 100, 512)
    cpu = data.generate(np, 11, 100, 512)
    assert gpu.backend == "cupy"
    assert np.array_equal(cupy.asnumpy(gpu.labels), cpu.labels)
    np.testing.assert_allclose(cupy.asnumpy(gpu.images), cpu.images, atol=1e-5, rtol=0)


def test_workload_on_cuda(tmp_path: Path) -> None:
    result = run(WorkloadConfig(require_gpu=True, out_dir=tmp_path))
    assert result["ok"], result["checks"]
    assert result["device"] == "cuda" and result["data"]["backend"] == "cupy"
    assert result["training"]["peak_memory_kind"] == "cuda_max_memory_allocated"
    assert result["onnx"]["max_abs_diff"] <= 1e-3


def test_onnxruntime_cuda_provider_runs(tmp_path: Path) -> None:
    import onnxruntime

    assert "CUDAExecutionProvider" in onnxruntime.get_available_providers(), (
        f"this ONNX Runtime ({onnxruntime.__version__}) has no CUDA provider: install onnxruntime-gpu"
    )
    result = run(WorkloadConfig(require_gpu=True, steps=4, train_samples=128, out_dir=tmp_path))
    assert result["onnx"]["provider"] == "CUDAExecutionProvider"
    assert result["onnx"]["parity_ok"]


def test_nvml_sampler_sees_the_gpu_working(tmp_path: Path) -> None:
    """The service worker's GPU-utilisation sampling (NVML) while the workload trains on CUDA."""
    pytest.importorskip("pynvml")
    from services.training.gpu import UtilizationSampler

    with UtilizationSampler(0.02) as samples:
        run(WorkloadConfig(require_gpu=True, steps=200, batch_size=256, train_samples=4096, out_dir=tmp_path))
    assert samples.available, samples.problem
    assert len(samples.values) > 5
    assert samples.peak is not None and samples.peak > 0
    print(f"NVML: {len(samples.values)} samples, peak {samples.peak:.0f}%, mean {samples.mean or 0:.0f}%")
