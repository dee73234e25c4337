"""Which accelerators are usable here, said plainly (never raises)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeviceInfo:
    torch_cuda: bool
    cupy: bool
    ort_providers: list[str]
    gpu_name: str | None = None
    capability: str | None = None
    cuda_runtime: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        return self.torch_cuda

    def to_json(self) -> dict[str, Any]:
        return {
            "torch_cuda": self.torch_cuda,
            "cupy": self.cupy,
            "ort_providers": self.ort_providers,
            "gpu_name": self.gpu_name,
            "capability": self.capability,
            "cuda_runtime": self.cuda_runtime,
            "problems": self.problems,
        }


def detect() -> DeviceInfo:
    import torch

    problems: list[str] = []
    torch_cuda = False
    name = capability = None
    try:
        torch_cuda = bool(torch.cuda.is_available())
        if torch_cuda:
            name = torch.cuda.get_device_name(0)
            major, minor = torch.cuda.get_device_capability(0)
            capability = f"{major}.{minor}"
        else:
            problems.append("torch.cuda.is_available() is False (no NVIDIA driver or GPU visible)")
    except Exception as exc:  # a broken driver install raises here; report it, do not crash
        problems.append(f"torch CUDA check failed: {exc}")
    cupy_ok = False
    if torch_cuda:
        try:
            import cupy

            cupy_ok = int(cupy.asarray([1, 2]).sum()) == 3
        except Exception as exc:
            problems.append(f"CuPy unusable: {exc}")
    providers: list[str] = []
    try:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    except Exception as exc:
        problems.append(f"ONNX Runtime unusable: {exc}")
    return DeviceInfo(torch_cuda, cupy_ok, providers, name, capability, torch.version.cuda, problems)
