"""The fixture tag universe: nvidia/cuda and nvcr.io/nvidia/pytorch tags generated from NVIDIA's
tag scheme and OS coverage (shared/reference/cuda-ecosystem-facts.md §1.1, §1.4, §2), with the
image config values the real images carry.

Generated, not copied: releases 11.8.0 to 13.1.0, flavors base/runtime/devel, cudnn8 / cudnn9 /
cudnn / tensorrt where NVIDIA built them, ubuntu20.04/22.04/24.04 and ubi9 where each CUDA line
has them. Ubuntu 22.04/24.04 tags from CUDA 12 on are multi-arch indexes (amd64 + arm64).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RELEASES = [
    "11.8.0",
    "12.0.0",
    "12.0.1",
    "12.1.0",
    "12.1.1",
    "12.2.0",
    "12.2.2",
    "12.3.0",
    "12.3.1",
    "12.3.2",
    "12.4.0",
    "12.4.1",
    "12.5.0",
    "12.5.1",
    "12.6.0",
    "12.6.1",
    "12.6.2",
    "12.6.3",
    "12.8.0",
    "12.8.1",
    "12.9.0",
    "12.9.1",
    "13.0.0",
    "13.0.1",
    "13.0.2",
    "13.1.0",
]

# Releases NVIDIA rebuilt with NVIDIA_CUDA_END_OF_LIFE=1 (dist/end-of-life/*/runtime in the CIC repo).
EOL_FLAGGED = {"12.0.0", "12.1.0"}
# `unsupported.release_label` of manifests/cuda.yaml: "Newer version available".
SUPERSEDED = {
    "12.0.0",
    "12.1.0",
    "12.2.0",
    "12.3.0",
    "12.3.1",
    "12.4.0",
    "12.5.0",
    "12.6.0",
    "12.6.1",
    "12.6.2",
    "12.8.0",
    "12.9.0",
    "13.0.0",
    "13.0.1",
}

CUDNN8 = {"11.8.0", "12.0.0", "12.0.1", "12.1.0", "12.1.1", "12.2.2"}
CUDNN9 = {"12.3.2"}
CUDNN = {
    "12.4.1",
    "12.5.1",
    "12.6.0",
    "12.6.1",
    "12.6.2",
    "12.6.3",
    "12.8.0",
    "12.8.1",
    "12.9.0",
    "12.9.1",
    "13.0.0",
    "13.0.1",
    "13.0.2",
    "13.1.0",
}
TENSORRT = {"13.0.0"}

CUDART = {
    "11.8": "11.8.89-1",
    "12.0": "12.0.146-1",
    "12.4": "12.4.127-1",
    "12.6": "12.6.77-1",
    "12.8.0": "12.8.57-1",
    "12.8.1": "12.8.90-1",
    "12.9.0": "12.9.37-1",
    "12.9.1": "12.9.79-1",
    "13.0.0": "13.0.48-1",
    "13.0.1": "13.0.88-1",
}
CUDNN_VERSION = {
    "11.8.0": "8.9.6.50",
    "12.1.1": "8.9.0.131",
    "12.2.2": "8.9.6.50",
    "12.3.2": "9.0.0.312",
    "12.4.1": "9.1.0.70-1",
    "12.5.1": "9.2.1.18-1",
    "12.6.3": "9.5.1.17-1",
    "12.8.0": "9.7.0.66-1",
    "12.8.1": "9.8.0.87-1",
    "12.9.0": "9.9.0.52-1",
    "12.9.1": "9.10.2.21-1",
    "13.0.0": "9.12.0.46-1",
}
# Driver branches each release's NVIDIA_REQUIRE_CUDA lists (facts §1.4, by minor).
DRIVER_BRANCHES = {
    "11.8": [470],
    "12.0": [470],
    "12.1": [470, 525],
    "12.2": [470, 525],
    "12.3": [470, 525, 535],
    "12.4": [470, 525, 535],
    "12.5": [470, 535, 550],
    "12.6": [470, 535, 550],
    "12.8": [470, 535, 550, 560, 565],
    "12.9": [535, 550, 560, 565, 570],
    "13.0": [535, 550, 565, 570, 575],
    "13.1": [535, 550, 570, 575, 580],
}
BRANDS = [
    "unknown",
    "grid",
    "tesla",
    "nvidia",
    "quadro",
    "quadrortx",
    "nvidiartx",
    "vapps",
    "vpc",
    "vcs",
    "vws",
    "cloudgaming",
]
NCCL = {"11": "2.15.5-1", "12": "2.23.4-1", "13": "2.27.7-1"}
MAINTAINER = "NVIDIA CORPORATION <cudatools@nvidia.com>"

# NGC PyTorch: (tag, torch build, CUDA, Ubuntu) from facts §2; other months interpolate.
NGC_KNOWN = {
    "24.08": ("2.5.0a0+872d972e41", "12.6.0", "22.04"),
    "24.09": ("2.5.0a0+b465a5843b", "12.6.1", "22.04"),
    "24.10": ("2.5.0a0+e000cf0ad9", "12.6.2", "22.04"),
    "25.01": ("2.6.0a0+ecf3bae40a", "12.8.0", "24.04"),
    "25.04": ("2.7.0a0+79aa17489c", "12.9.0", "24.04"),
    "25.12": ("2.10.0a0+b4e4ee81d3", "13.1.0", "24.04"),
}


@dataclass(frozen=True)
class FixtureImage:
    repository: str
    tag: str
    env: dict[str, str]
    labels: dict[str, str]
    entrypoint: list[str] | None
    cmd: list[str]
    multi_arch: bool = False
    created: str = "2025-01-01T00:00:00Z"
    extra_platforms: tuple[str, ...] = field(default=())


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def ubuntu_versions(version: str) -> list[str]:
    major = int(version.split(".")[0])
    out = [] if major >= 13 else ["20.04"]
    out.append("22.04")
    if version >= "12.5.1" or major >= 13:
        out.append("24.04")
    return out


def _require_cuda(version: str) -> str:
    clauses = [f"cuda>={_minor(version)}"]
    for branch in DRIVER_BRANCHES[_minor(version)]:
        clauses += [f"brand={b},driver>={branch},driver<{branch + 1}" for b in BRANDS]
    return " ".join(clauses)


def cuda_env(version: str, flavor: str, extra: str | None, arch: str = "amd64") -> dict[str, str]:
    """The env of an nvidia/cuda image config, as NVIDIA's Dockerfiles set it."""
    env = {
        "PATH": "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "NVARCH": "x86_64" if arch == "amd64" else "sbsa",
        "NVIDIA_REQUIRE_CUDA": _require_cuda(version),
        "NV_CUDA_CUDART_VERSION": CUDART.get(
            version,
            CUDART.get(_minor(version), f"{_minor(version)}.{40 + int(version.split('.')[2])}-1"),
        ),
        "CUDA_VERSION": version,
        "LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    if flavor in ("runtime", "devel"):
        env["NV_CUDA_LIB_VERSION"] = f"{version}-1"
        env["NCCL_VERSION"] = NCCL[version.split(".")[0]]
        env["NVIDIA_PRODUCT_NAME"] = "CUDA"
        if version in EOL_FLAGGED:
            env["NVIDIA_CUDA_END_OF_LIFE"] = "1"
    if flavor == "devel":
        env["NV_CUDA_CUDART_DEV_VERSION"] = env["NV_CUDA_CUDART_VERSION"]
        env["LIBRARY_PATH"] = "/usr/local/cuda/lib64/stubs"
    if extra and extra.startswith("cudnn"):
        cudnn = CUDNN_VERSION.get(version, "9.3.0.75-1" if extra == "cudnn" else "8.9.6.50")
        env["NV_CUDNN_VERSION"] = cudnn
        env["NV_CUDNN_PACKAGE_NAME"] = f"libcudnn{cudnn[0]}"
    if extra == "tensorrt":
        env["NV_TENSORRT_VERSION"] = "10.13.2.6-1+cuda13.0"
    return env


def cuda_images() -> list[FixtureImage]:
    images = []
    for version in RELEASES:
        extras: list[str | None] = [None]
        if version in CUDNN8:
            extras.append("cudnn8")
        if version in CUDNN9:
            extras.append("cudnn9")
        if version in CUDNN:
            extras.append("cudnn")
        oses = [f"ubuntu{v}" for v in ubuntu_versions(version)]
        if version not in ("11.8.0", "12.0.0"):
            oses.append("ubi9")
        for os_label in oses:
            for extra in extras:
                if extra and os_label == "ubuntu24.04" and version == "12.5.1":
                    continue  # NVIDIA built no cuDNN image for 12.5.1 on 24.04
                flavors = ["base", "runtime", "devel"] if extra is None else ["runtime", "devel"]
                for flavor in flavors:
                    images.append(_cuda_image(version, extra, flavor, os_label))
            if version in TENSORRT and os_label == "ubuntu24.04":
                for flavor in ("runtime", "devel"):
                    images.append(_cuda_image(version, "tensorrt", flavor, os_label))
    return images


def _cuda_image(version: str, extra: str | None, flavor: str, os_label: str) -> FixtureImage:
    tag = f"{version}-{extra + '-' if extra else ''}{flavor}-{os_label}"
    labels = {"maintainer": MAINTAINER}
    if os_label.startswith("ubuntu"):
        labels["org.opencontainers.image.ref.name"] = "ubuntu"
        labels["org.opencontainers.image.version"] = os_label.removeprefix("ubuntu")
    env = cuda_env(version, flavor, extra)
    if "NV_CUDNN_VERSION" in env:
        labels["com.nvidia.cudnn.version"] = env["NV_CUDNN_VERSION"]
    if "NV_TENSORRT_VERSION" in env:
        labels["com.nvidia.tensorrt.version"] = env["NV_TENSORRT_VERSION"]
    multi = os_label in ("ubuntu22.04", "ubuntu24.04") and not version.startswith("11.")
    # Only runtime images (and those built FROM them) carry NVIDIA's entrypoint (facts §1.3).
    entrypoint = ["/opt/nvidia/nvidia_entrypoint.sh"] if flavor != "base" else None
    return FixtureImage("nvidia/cuda", tag, env, labels, entrypoint, ["/bin/sh"], multi)


def ngc_images() -> list[FixtureImage]:
    images = []
    for year in (24, 25, 26):
        for month in range(1, 13):
            release = f"{year}.{month:02d}"
            if release > "26.10":
                break
            torch, cuda, ubuntu = _ngc_facts(release)
            env = {
                "PATH": "/usr/local/lib/python3.12/dist-packages/torch_tensorrt/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "CUDA_VERSION": cuda,
                "NVIDIA_REQUIRE_CUDA": f"cuda>={_minor(cuda)} brand=tesla,driver>=535,driver<536",
                "NVIDIA_PYTORCH_VERSION": release,
                "PYTORCH_VERSION": torch,
                "PYTORCH_BUILD_VERSION": torch,
                "NVIDIA_PRODUCT_NAME": "PyTorch",
            }
            labels = {"com.nvidia.build.ref": "fixture", "org.opencontainers.image.version": ubuntu}
            images.append(
                FixtureImage(
                    "nvidia/pytorch",
                    f"{release}-py3",
                    env,
                    labels,
                    ["/opt/nvidia/nvidia_entrypoint.sh"],
                    ["/bin/sh"],
                    True,
                )
            )
            if release in ("25.04", "25.08", "26.02"):
                images.append(
                    FixtureImage(
                        "nvidia/pytorch",
                        f"{release}-py3-igpu",
                        env,
                        labels,
                        ["/opt/nvidia/nvidia_entrypoint.sh"],
                        ["/bin/sh"],
                    )
                )
    return images


def _ngc_facts(release: str) -> tuple[str, str, str]:
    if release in NGC_KNOWN:
        return NGC_KNOWN[release]
    earlier = [r for r in NGC_KNOWN if r <= release]
    return NGC_KNOWN[max(earlier)] if earlier else ("2.4.0a0+fixture", "12.5.1", "22.04")


def universe() -> list[FixtureImage]:
    return cuda_images() + ngc_images()
