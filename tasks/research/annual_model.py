"""The annual update's answers for one image, typed: the Ubuntu LTS question, the CUDA upgrade
path, the Python with torch wheels, the coupled stack for the target, and the NGC-or-plain-CUDA
comparison's rows. Decided by tasks/research/annual.py, rendered by annual_report.py; `to_json`
writes the shape ``reports/annual-<year>.json`` has always had (``migrate --report`` reads the
``plan`` key)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.research.planner import TorchChoice

__all__ = ["AnnualImage", "AnnualStack", "CudaPath", "NgcOption", "PythonAnswer", "UbuntuAnswer"]


@dataclass(frozen=True)
class UbuntuAnswer:
    """The current LTS's end of standard support and the next LTS on the target CUDA line."""

    current: str | None  # None: the image is not on Ubuntu
    end_of_standard_support: str | None  # ISO date, None when the release is not in the facts
    days_left: int | None
    next_lts: str | None
    next_lts_on_target: str | None  # the next LTS NVIDIA publishes the target CUDA for
    target_cuda: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CudaPath:
    """The newest minor of the major the fleet runs, and the next major with what blocks it."""

    current: str
    newest_on_major: str
    next_major: str | None = None  # the rest only when NVIDIA publishes a next major on this track
    next_major_runs_on_fleet: bool | None = None
    blocked: str | None = None
    unblock: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"current": self.current, "newest_on_major": self.newest_on_major}
        if self.next_major is not None:
            data["next_major"] = self.next_major
            data["next_major_runs_on_fleet"] = self.next_major_runs_on_fleet
        if self.blocked is not None:
            data["blocked"] = self.blocked
            data["unblock"] = self.unblock
        return data


@dataclass(frozen=True)
class PythonAnswer:
    """The newest Python with torch wheels on the target's index variant, and every one that has them."""

    variant: str
    newest_with_torch: str | None = None
    torch: str | None = None  # the newest torch for that Python on that variant
    all: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "all": list(self.all)}


@dataclass(frozen=True)
class AnnualStack:
    """The coupled stack for the target (or the current release when nothing is due)."""

    cuda: str
    python: str
    torch: TorchChoice | None
    cupy_package: str | None
    cupy_version: str | None
    onnxruntime_gpu: str | None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "torch": asdict(self.torch) if self.torch else None}


@dataclass(frozen=True)
class NgcOption:
    """One row of the NGC PyTorch or plain CUDA comparison for the training image."""

    option: str
    reference: str
    compressed_mb: float | None
    cuda: str | None
    pytorch: str | None
    platforms: tuple[str, ...]
    support: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "platforms": list(self.platforms)}


@dataclass
class AnnualImage:
    """One managed nvidia/cuda image's answers; built by `plan_cuda_image`, which fills the answers
    in as it goes (an image is created before its questions are answered)."""

    image: str
    file: str
    current: str
    track: str = "cuda"
    ubuntu: UbuntuAnswer | None = None
    cuda_path: CudaPath | None = None
    python: PythonAnswer | None = None
    platforms: dict[str, list[str]] = field(default_factory=dict)
    target: str | None = None
    recommended: bool = False
    reasons: list[str] = field(default_factory=list)
    stack: AnnualStack | None = None

    def to_json(self) -> dict[str, Any]:
        stack = self.stack.to_json() if self.stack else {}
        return {
            "image": self.image,
            "file": self.file,
            "current": self.current,
            "track": self.track,
            "ubuntu": self.ubuntu.to_json() if self.ubuntu else {},
            "cuda_path": self.cuda_path.to_json() if self.cuda_path else {},
            "python": self.python.to_json() if self.python else {},
            "platforms": {ref: list(found) for ref, found in self.platforms.items()},
            "target": self.target,
            "recommended": self.recommended,
            "reasons": list(self.reasons),
            "stack": stack,
            # The shape `baseimage migrate --report` reads: the stack for the target, coupled there
            # again against the requirements file's pins (no "changes" key: they depend on that file).
            "plan": {**stack, "coupled": "at migrate time, against the requirements file and the registry"},
        }
