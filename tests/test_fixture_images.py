"""The fixtures themselves: the tag universe matches NVIDIA's published tag lists, and a seeded
EOL image, started by a real daemon without a GPU, prints NVIDIA's deprecation banner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.images.tags import CudaTag
from tests.conftest import REPO_ROOT, TEST_LABEL
from tests.support.registry_server import LocalRegistry
from tests.support.universe import RELEASES, cuda_images, ngc_images

NVIDIA_LISTS = REPO_ROOT.parent / "shared" / "reference" / "nvidia-cuda"
BANNER = [
    "*************************",
    "** DEPRECATION NOTICE! **",
    "*************************",
    "THIS IMAGE IS DEPRECATED and is scheduled for DELETION.",
    "    https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/support-policy.md",
]


def test_universe_covers_the_scheme() -> None:
    tags = [CudaTag.parse(i.tag) for i in cuda_images()]
    assert len(tags) >= 300
    assert min(t.version for t in tags) == (11, 8, 0) and max(t.version for t in tags)[0] == 13
    assert {t.flavor for t in tags} == {"base", "runtime", "devel"}
    assert {t.extra for t in tags} == {None, "cudnn8", "cudnn9", "cudnn", "tensorrt"}
    assert {t.os_label for t in tags} == {"ubuntu20.04", "ubuntu22.04", "ubuntu24.04", "ubi9"}
    assert not [t for t in tags if t.version[0] == 13 and t.os_label == "ubuntu20.04"]
    assert any(i.multi_arch for i in cuda_images()) and not all(i.multi_arch for i in cuda_images())
    assert {i.tag for i in ngc_images()} >= {"24.10-py3", "25.04-py3", "25.04-py3-igpu"}


@pytest.mark.skipif(not NVIDIA_LISTS.exists(), reason="NVIDIA's tag lists live in ../shared, beside a checkout")
def test_universe_tags_exist_in_nvidias_lists() -> None:
    """Every generated tag up to the lists' date (13.0.0, 2025-08) is one NVIDIA published."""
    real = set()
    for name in ("supported-tags.txt", "unsupported-tags.txt"):
        real |= set((NVIDIA_LISTS / name).read_text().split())
    ours = {i.tag for i in cuda_images() if CudaTag.parse(i.tag).version <= (13, 0, 0)}
    assert ours - real == set()
    listed = {
        t
        for t in real
        if (c := CudaTag.try_parse(t))
        and c.version_str in RELEASES
        and c.os_label in ("ubuntu20.04", "ubuntu22.04", "ubuntu24.04", "ubi9")
    }
    assert listed <= {i.tag for i in cuda_images()}, "every NVIDIA Ubuntu/UBI 9 tag of our releases is seeded"


@pytest.fixture
def run_image(docker_client: Any, registry: LocalRegistry) -> Any:
    def run(tag: str) -> tuple[int, str]:
        image = f"{registry.host}/nvidia/cuda:{tag}"
        docker_client.images.pull(image)
        container = docker_client.containers.run(
            image, ["echo", "ready"], detach=True, network_mode="host", labels={TEST_LABEL: "1"}
        )
        try:
            status = container.wait(timeout=60)["StatusCode"]
            return status, container.logs().decode()
        finally:
            container.remove(force=True)

    return run


@pytest.mark.docker
def test_eol_fixture_image_prints_the_real_deprecation_banner(run_image: Any) -> None:
    status, log = run_image("12.1.0-runtime-ubuntu22.04")
    lines = log.splitlines()
    assert status == 0
    assert "== CUDA ==" in lines and "CUDA Version 12.1.0" in lines
    assert "WARNING: The NVIDIA Driver was not detected.  GPU functionality will not be available." in lines
    start = lines.index(BANNER[0])
    assert lines[start : start + len(BANNER)] == BANNER
    assert lines[-1] == "ready"


@pytest.mark.docker
def test_supported_fixture_image_prints_no_banner(run_image: Any) -> None:
    status, log = run_image("12.6.3-runtime-ubuntu22.04")
    assert status == 0 and "CUDA Version 12.6.3" in log
    assert "DEPRECATION" not in log and log.splitlines()[-1] == "ready"


@pytest.mark.docker
def test_base_fixture_image_has_no_entrypoint(run_image: Any) -> None:
    status, log = run_image("12.1.0-base-ubuntu22.04")
    assert (status, log) == (0, "ready\n")


def test_nvidia_lists_path_is_beside_the_checkout() -> None:
    assert Path(__file__).resolve().parent.parent.parent / "shared/reference/nvidia-cuda" == NVIDIA_LISTS
