"""Pure parts of validation: nvidia-smi parsing, the banner scan, the GPU utilisation rule, and
the compose file the service deploys with."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tasks.deprecation import find_deprecation_banner
from tasks.validation import gpu_utilization, parse_nvidia_smi
from tests.conftest import REPO_ROOT
from tests.support.rootfs import DEPRECATED

NVIDIA_SMI = """Sat Nov 28 17:22:41 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: 13.0     |
+-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |
|                                         |                        |               MIG M. |
|=========================================+========================+======================|
|   0  NVIDIA H200                    On  |   00000000:00:05.0 Off |                    0 |
| N/A   31C    P0             76W /  700W |       0MiB / 143771MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
|   1  NVIDIA A100-SXM4-80GB          Off |   00000000:00:06.0 Off |                    0 |
| N/A   30C    P0             60W /  400W |       0MiB /  81920MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
"""


def test_parse_nvidia_smi() -> None:
    report = parse_nvidia_smi(NVIDIA_SMI)
    assert (report.driver_version, report.cuda_version) == ("580.159.04", "13.0")
    assert report.gpus == ["NVIDIA H200", "NVIDIA A100-SXM4-80GB"]


def test_parse_nvidia_smi_without_header() -> None:
    with pytest.raises(ValueError, match=r"nvidia-smi output has no 'Driver Version \.\.\. CUDA Version' line"):
        parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")


def test_banner_is_found_in_start_up_logs() -> None:
    log = "==========\n== CUDA ==\n==========\n\nCUDA Version 12.1.0\n"
    # The fixture's 90-deprecated-image.sh, as its echo lines print.
    log += "\n".join(line.split('"')[1] for line in DEPRECATED.splitlines() if line.strip().startswith('echo "'))
    assert find_deprecation_banner(log) == [
        "** DEPRECATION NOTICE! **",
        "THIS IMAGE IS DEPRECATED and is scheduled for DELETION.",
        "https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/support-policy.md",
    ]
    assert find_deprecation_banner("== CUDA ==\nCUDA Version 12.6.3\nready\n") == []


def test_the_banner_check_without_a_daemon_says_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Docker client is made beside the research (a thread): without a daemon every check
    says so, and there is nothing to clean up."""
    from tasks.deprecation import BannerCheck

    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    check = BannerCheck({})
    found, note = check("nvidia/cuda:12.6.0-runtime-ubuntu22.04")
    assert found is None and note.startswith("not checked: no Docker daemon (")
    assert check.cleanup() == [] and check.client is None


@pytest.mark.parametrize(
    ("util", "threshold", "status", "message"),
    [
        (
            {"available": True, "peak_percent": 87.0, "mean_percent": 60.0},
            10,
            "passed",
            "peak 87% (mean 60%) vs threshold 10%",
        ),
        (
            {"available": True, "peak_percent": 4.0, "mean_percent": 2.0},
            10,
            "failed",
            "peak 4% (mean 2%) vs threshold 10%",
        ),
        (
            {"available": False, "problem": "NVML unavailable: libnvidia-ml.so.1 not found"},
            10,
            "failed",
            "no GPU utilisation samples from the worker: NVML unavailable: libnvidia-ml.so.1 not found",
        ),
        ({}, 10, "failed", "no GPU utilisation samples from the worker: none reported"),
    ],
)
def test_gpu_utilization_rule(util: dict[str, object], threshold: float, status: str, message: str) -> None:
    result = gpu_utilization({"result": {"gpu_utilization": util}}, threshold)
    assert (result.status, result.message) == (status, message)


COMPOSE = REPO_ROOT / "deployments" / "compose" / "training.yaml"


def test_compose_runs_api_worker_redis_with_the_gpu_reserved() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    assert set(spec["services"]) == {"api", "worker", "redis"}
    worker = spec["services"]["worker"]
    assert worker["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    ]
    assert worker["command"][:3] == ["celery", "-A", "services.training.worker"]
    assert spec["services"]["api"]["command"][:2] == ["uvicorn", "services.training.api:app"]
    assert "gpu" not in str(spec["services"]["api"].get("deploy", ""))


@pytest.mark.docker
def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: scripts/test installs it"
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        env={"TRAINING_IMAGE": "candidate:test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode != 0 and "set TRAINING_IMAGE to the image to run" in missing.stderr
