"""Versioned facts bundled in ``config/data/*.yaml`` (each with ``source`` and ``as_of``), typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version

from tasks.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "config" / "data"


def driver_key(version: str) -> tuple[int, ...]:
    """``'560.35.03'`` -> (560, 35, 3); branches compare as their leading numbers."""
    return tuple(int(p) for p in str(version).split(".") if p.isdigit())


@dataclass(frozen=True)
class EolEntry:
    release: str
    reason: str
    marked_eol: date | None = None
    estimated_deletion: date | None = None


@dataclass(frozen=True)
class CupyRelease:
    version: str
    cuda_ranges: tuple[tuple[tuple[int, int], tuple[int, int]], ...]

    def supports(self, minor: tuple[int, int]) -> bool:
        return any(low <= minor <= high for low, high in self.cuda_ranges)


@dataclass(frozen=True)
class TorchRelease:
    torch: str
    torchvision: str
    cuda: tuple[str, ...]
    python: tuple[str, str]


@dataclass(frozen=True)
class UbuntuRelease:
    version: str
    released: date
    end_of_standard_support: date
    end_of_esm: date | None = None


@dataclass(frozen=True)
class Facts:
    """Everything the research phase knows without asking the network."""

    eol: dict[str, EolEntry]
    eol_source: str
    eol_as_of: date
    support_live_url: str
    deletion_after_months: int
    toolkit_min_driver: dict[str, str]
    mvc_floor: dict[int, str]
    cupy_packages: dict[int, str]
    cupy_releases: tuple[CupyRelease, ...]
    ort_releases: tuple[tuple[str, int, int], ...]  # version, CUDA major, cuDNN major
    torch_releases: tuple[TorchRelease, ...]
    pytorch_index_url: str
    ubuntu: dict[str, UbuntuRelease]
    sources: dict[str, tuple[str, date]] = field(default_factory=dict)

    def cupy_for(self, minor: tuple[int, int]) -> tuple[str | None, str | None]:
        """(package, newest version) supporting CUDA `minor`, or (None, None)."""
        package = self.cupy_packages.get(minor[0])
        supporting = [r for r in self.cupy_releases if r.supports(minor)]
        if not package or not supporting:
            return None, None
        return package, max(supporting, key=lambda r: Version(r.version)).version

    def ort_for(self, cuda_major: int) -> str | None:
        """Newest onnxruntime-gpu on the default index built for `cuda_major`."""
        versions = [v for v, major, _ in self.ort_releases if major == cuda_major]
        return max(versions, key=Version) if versions else None

    def torchvision_for(self, torch_version: str) -> str | None:
        public = str(Version(torch_version).public)
        for release in self.torch_releases:
            if release.torch == public:
                return release.torchvision
        v = Version(public)  # torchvision minor = torch minor + 15 since torch 2.0
        return f"0.{v.minor + 15}.{v.micro}" if v.major == 2 else None


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read facts file: {exc}") from exc
    if not isinstance(data, dict) or "source" not in data or "as_of" not in data:
        raise ConfigError(f"{path}: a facts file needs 'source' and 'as_of' at the top")
    return data


def _range(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    low, high = text.split("-")
    lo = tuple(int(p) for p in low.split("."))
    hi = tuple(int(p) for p in high.split("."))
    return (lo[0], lo[1]), (hi[0], hi[1])


def load_facts(data_dir: Path = DATA_DIR) -> Facts:
    """Load and type every bundled facts file; a malformed one is a ConfigError naming it."""
    files = {
        name: _load(data_dir / f"{name}.yaml")
        for name in ("nvidia-support", "cuda-drivers", "cupy", "onnxruntime", "pytorch", "ubuntu")
    }
    try:
        support, drivers, cupy = files["nvidia-support"], files["cuda-drivers"], files["cupy"]
        eol = {
            str(e["release"]): EolEntry(
                str(e["release"]),
                str(e["reason"]),
                e.get("marked_eol"),
                e.get("estimated_deletion"),
            )
            for e in support["releases"]
        }
        return Facts(
            eol=eol,
            eol_source=str(support["source"]),
            eol_as_of=support["as_of"],
            support_live_url=str(support["live_url"]),
            deletion_after_months=int(support["deletion_after_months"]),
            toolkit_min_driver={str(k): str(v) for k, v in drivers["toolkit_min_driver"].items()},
            mvc_floor={int(k): str(v) for k, v in drivers["minor_version_compatibility"].items()},
            cupy_packages={int(k): str(v) for k, v in cupy["packages"].items()},
            cupy_releases=tuple(
                CupyRelease(str(r["version"]), tuple(_range(c) for c in r["cuda"])) for r in cupy["releases"]
            ),
            ort_releases=tuple(
                (str(r["version"]), int(r["cuda"]), int(r["cudnn"])) for r in files["onnxruntime"]["releases"]
            ),
            torch_releases=tuple(
                TorchRelease(
                    str(r["torch"]),
                    str(r["torchvision"]),
                    tuple(r["cuda"]),
                    (str(r["python"][0]), str(r["python"][1])),
                )
                for r in files["pytorch"]["releases"]
            ),
            pytorch_index_url=str(files["pytorch"]["index_url"]),
            ubuntu={
                str(r["version"]): UbuntuRelease(
                    str(r["version"]),
                    r["released"],
                    r["end_of_standard_support"],
                    r.get("end_of_esm"),
                )
                for r in files["ubuntu"]["releases"]
            },
            sources={name: (str(f["source"]), f["as_of"]) for name, f in files.items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{data_dir}: facts file has an unexpected shape: {exc!r}") from exc
