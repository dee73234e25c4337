"""Versioned facts bundled in ``config/data/*.yaml``, typed. Every file names its ``source`` and
``as_of``, and so does every row (``source`` is a key of the file's ``sources`` table), so each
fact the planner uses can say where it came from and when it was read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from tasks.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "config" / "data"
FILES = ("nvidia-support", "cuda-drivers", "cupy", "onnxruntime", "pytorch", "ubuntu", "ngc-pytorch", "onnx-compat")


def driver_key(version: str) -> tuple[int, ...]:
    """``'560.35.03'`` -> (560, 35, 3); branches compare as their leading numbers."""
    return tuple(int(p) for p in str(version).split(".") if p.isdigit())


@dataclass(frozen=True)
class Provenance:
    source: str
    as_of: date

    def __str__(self) -> str:
        return f"{self.source}, as of {self.as_of.isoformat()}"


@dataclass(frozen=True)
class EolEntry:
    release: str
    reason: str
    marked_eol: date | None = None
    estimated_deletion: date | None = None
    provenance: Provenance | None = None


@dataclass(frozen=True)
class CupyRelease:
    version: str
    cuda_ranges: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    provenance: Provenance | None = None

    def supports(self, minor: tuple[int, int]) -> bool:
        return any(low <= minor <= high for low, high in self.cuda_ranges)


@dataclass(frozen=True)
class OrtRelease:
    """An ``onnxruntime-gpu`` release on the default index and the CUDA / cuDNN majors it is built for."""

    version: str
    cuda: int
    cudnn: int
    provenance: Provenance | None = None


@dataclass(frozen=True)
class OrtOpsets:
    """What an ONNX Runtime release loads: the highest default-domain opset and IR version."""

    version: str
    max_opset: int
    max_ir: int
    provenance: Provenance | None = None


@dataclass(frozen=True)
class TorchExport:
    """What ``torch.onnx.export`` of a torch minor writes when not told: its default exporter and
    opset, the IR version (None: the exporter picks it from the opset, see ``Facts.opset_ir``), and
    the opsets that exporter writes natively."""

    torch: str  # a minor: "2.9"
    exporter: str  # torchscript | dynamo
    default_opset: int
    ir_version: int | None
    min_opset: int
    max_opset: int
    provenance: Provenance | None = None
    torchscript_max_opset: int | None = None  # the TorchScript exporter (dynamo=False), None: gone


@dataclass(frozen=True)
class TorchRelease:
    torch: str
    torchvision: str
    cuda: tuple[str, ...]
    python: tuple[str, str]
    provenance: Provenance | None = None
    pypi: str | None = None  # the CUDA build of the default wheel on the Python package index


@dataclass(frozen=True)
class UbuntuRelease:
    version: str
    released: date
    end_of_standard_support: date
    end_of_esm: date | None = None
    provenance: Provenance | None = None


@dataclass(frozen=True)
class DriverBranch:
    """A datacenter driver branch and its end of life (None: NVIDIA published no date)."""

    branch: int
    kind: str | None
    eol: date | None
    eol_text: str
    end_of_life: bool  # known to be EOL even without a date
    provenance: Provenance | None = None

    def ended_by(self, today: date) -> bool:
        return self.end_of_life or (self.eol is not None and self.eol <= today)


@dataclass(frozen=True)
class MajorRelease:
    """The first release of a CUDA major (it ends NVIDIA's support of major - 2)."""

    major: int
    release: str
    released: date
    provenance: Provenance | None = None


@dataclass(frozen=True)
class NgcRelease:
    release: str  # 25.04
    cuda: str  # 12.9.0
    min_driver: str
    pytorch: str
    ubuntu: str
    python: str
    provenance: Provenance | None = None

    @property
    def cuda_major(self) -> int:
        return int(self.cuda.split(".")[0])


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
    ort_releases: tuple[OrtRelease, ...]
    torch_releases: tuple[TorchRelease, ...]
    pytorch_index_url: str
    ubuntu: dict[str, UbuntuRelease]
    sources: dict[str, tuple[str, date]] = field(default_factory=dict)
    driver_branches: dict[int, DriverBranch] = field(default_factory=dict)
    driver_eol_rule: str = ""
    majors_at_a_time: int = 2
    major_support_wording: str = ""
    major_support: Provenance | None = None
    major_releases: dict[int, MajorRelease] = field(default_factory=dict)
    cudnn_of_extra: dict[str, int] = field(default_factory=dict)
    ngc_releases: dict[str, NgcRelease] = field(default_factory=dict)
    ngc_forward_compatibility: str = ""
    ort_opsets: tuple[OrtOpsets, ...] = ()
    torch_exports: tuple[TorchExport, ...] = ()
    opset_ir: dict[int, int] = field(default_factory=dict)  # the TorchScript exporter: opset -> IR written

    def ort_limits(self, version: str) -> OrtOpsets | None:
        """What onnxruntime `version` loads: its row, else a row of the same minor (patches keep the
        ONNX release a minor is built with); None when the facts cannot say."""
        try:
            wanted = Version(Version(version).public)
        except InvalidVersion:
            return None
        same_minor = []
        for row in self.ort_opsets:
            have = Version(row.version)
            if have == wanted:
                return row
            if (have.major, have.minor) == (wanted.major, wanted.minor):
                same_minor.append(row)
        if same_minor and len({(r.max_opset, r.max_ir) for r in same_minor}) == 1:
            return OrtOpsets(version, same_minor[0].max_opset, same_minor[0].max_ir, same_minor[0].provenance)
        return None

    def torch_export(self, version: str) -> TorchExport | None:
        """The export defaults of torch `version` (by minor); None when the facts do not know it."""
        try:
            v = Version(Version(version).public)
        except InvalidVersion:
            return None
        return next((e for e in self.torch_exports if e.torch == f"{v.major}.{v.minor}"), None)

    def cupy_for(self, minor: tuple[int, int]) -> tuple[str | None, str | None]:
        """(package, newest version) supporting CUDA `minor`, or (None, None)."""
        package = self.cupy_packages.get(minor[0])
        supporting = [r for r in self.cupy_releases if r.supports(minor)]
        if not package or not supporting:
            return None, None
        return package, max(supporting, key=lambda r: Version(r.version)).version

    def cupy_versions(self, minors: list[tuple[int, int]]) -> list[str]:
        """CuPy versions that support every CUDA minor of `minors`, newest first."""
        found = [r.version for r in self.cupy_releases if all(r.supports(m) for m in minors)]
        return sorted(found, key=Version, reverse=True)

    def ort_for(self, cuda_major: int, cudnn_major: int | None = None) -> str | None:
        """Newest onnxruntime-gpu on the default index built for `cuda_major` (and that cuDNN major)."""
        versions = [
            r.version
            for r in self.ort_releases
            if r.cuda == cuda_major and (cudnn_major is None or r.cudnn == cudnn_major)
        ]
        return max(versions, key=Version) if versions else None

    def ort_build(self, version: str) -> OrtRelease | None:
        """The build of `version`: its row, else the row on both sides of it when they agree (a
        patch between two known releases of one build); None when the facts cannot say."""
        try:
            wanted = Version(version)
        except InvalidVersion:
            return None
        rows = sorted(self.ort_releases, key=lambda r: Version(r.version))
        for row in rows:
            if Version(row.version) == wanted:
                return row
        below = [r for r in rows if Version(r.version) < wanted]
        above = [r for r in rows if Version(r.version) > wanted]
        if below and above and (below[-1].cuda, below[-1].cudnn) == (above[0].cuda, above[0].cudnn):
            return OrtRelease(version, below[-1].cuda, below[-1].cudnn, below[-1].provenance)
        return None

    def torchvision_for(self, torch_version: str) -> str | None:
        public = str(Version(torch_version).public)
        for release in self.torch_releases:
            if release.torch == public:
                return release.torchvision
        v = Version(public)  # torchvision minor = torch minor + 15 since torch 2.0
        return f"0.{v.minor + 15}.{v.micro}" if v.major == 2 else None

    def pypi_variant(self, torch_version: str) -> str | None:
        """The CUDA build pip installs for `torch_version` without a PyTorch index URL (by minor)."""
        v = Version(Version(torch_version).public)
        for release in self.torch_releases:
            r = Version(release.torch)
            if (r.major, r.minor) == (v.major, v.minor):
                return release.pypi
        return None

    def ended_by(self, major: int) -> MajorRelease | None:
        """The release of major + `majors_at_a_time` that ended NVIDIA's support of `major`, if out."""
        return self.major_releases.get(major + self.majors_at_a_time)

    def branch(self, branch: int) -> DriverBranch | None:
        """A driver branch's lifecycle; a branch below the newest listed one that is not listed is
        end of life by NVIDIA's rule ("all other previous driver branches ... are end of life")."""
        if branch in self.driver_branches:
            return self.driver_branches[branch]
        listed = [b for b in self.driver_branches if b > branch]
        if listed:
            newest = self.driver_branches[max(self.driver_branches)]
            return DriverBranch(
                branch, None, None, "not listed by NVIDIA, so end of life by its rule", True, newest.provenance
            )
        return None


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML was built with it


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
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


def _rows(path: Path, data: dict[str, Any], key: str) -> list[tuple[dict[str, Any], Provenance]]:
    """The rows under `key`, each with its resolved provenance; a row without ``source`` (a key of
    ``sources``) or ``as_of`` (a date) is an error naming the file, the list and the row."""
    sources = data.get("sources") or {}
    out = []
    for number, row in enumerate(data.get(key) or [], 1):
        if not isinstance(row, dict):
            raise ConfigError(f"{path}: {key}[{number}] is not a mapping")
        source, as_of = row.get("source"), row.get("as_of")
        if source not in sources:
            raise ConfigError(
                f"{path}: {key}[{number}] ({row}) needs 'source' naming one of the file's sources: {sorted(sources)}"
            )
        if not isinstance(as_of, date):
            raise ConfigError(f"{path}: {key}[{number}] ({row}) needs 'as_of' as a date (YYYY-MM-DD)")
        out.append((row, Provenance(str(sources[source]), as_of)))
    return out


def load_facts(data_dir: Path = DATA_DIR) -> Facts:
    """Load and type every bundled facts file; a malformed one is a ConfigError naming it."""
    paths = {name: data_dir / f"{name}.yaml" for name in FILES}
    files = {name: _load(path) for name, path in paths.items()}
    try:

        def rows(name: str, key: str) -> list[tuple[dict[str, Any], Provenance]]:
            return _rows(paths[name], files[name], key)

        support, drivers, ngc = files["nvidia-support"], files["cuda-drivers"], files["ngc-pytorch"]
        eol = {
            str(e["release"]): EolEntry(
                str(e["release"]), str(e["reason"]), e.get("marked_eol"), e.get("estimated_deletion"), p
            )
            for e, p in rows("nvidia-support", "releases")
        }
        wording = support["major_support"]
        major_source = (
            Provenance(str(support["sources"][wording["source"]]), wording["as_of"]) if "source" in wording else None
        )
        return Facts(
            eol=eol,
            eol_source=str(support["source"]),
            eol_as_of=support["as_of"],
            support_live_url=str(support["live_url"]),
            deletion_after_months=int(support["deletion_after_months"]),
            toolkit_min_driver={
                str(r["cuda"]): str(r["driver"]) for r, _ in rows("cuda-drivers", "toolkit_min_driver")
            },
            mvc_floor={
                int(r["major"]): str(r["driver"]) for r, _ in rows("cuda-drivers", "minor_version_compatibility")
            },
            cupy_packages={int(r["major"]): str(r["package"]) for r, _ in rows("cupy", "packages")},
            cupy_releases=tuple(
                CupyRelease(str(r["version"]), tuple(_range(c) for c in r["cuda"]), p)
                for r, p in rows("cupy", "releases")
            ),
            ort_releases=tuple(
                OrtRelease(str(r["version"]), int(r["cuda"]), int(r["cudnn"]), p)
                for r, p in rows("onnxruntime", "releases")
            ),
            torch_releases=tuple(
                TorchRelease(
                    str(r["torch"]),
                    str(r["torchvision"]),
                    tuple(r["cuda"]),
                    (str(r["python"][0]), str(r["python"][1])),
                    p,
                    str(r["pypi"]) if r.get("pypi") else None,
                )
                for r, p in rows("pytorch", "releases")
            ),
            pytorch_index_url=str(files["pytorch"]["index_url"]),
            ubuntu={
                str(r["version"]): UbuntuRelease(
                    str(r["version"]), r["released"], r["end_of_standard_support"], r.get("end_of_esm"), p
                )
                for r, p in rows("ubuntu", "releases")
            },
            sources={name: (str(f["source"]), f["as_of"]) for name, f in files.items()},
            driver_branches={
                int(r["branch"]): DriverBranch(
                    int(r["branch"]),
                    r.get("kind"),
                    r.get("eol"),
                    str(r["eol_text"]),
                    bool(r.get("end_of_life", False)),
                    p,
                )
                for r, p in rows("cuda-drivers", "driver_branches")
            },
            driver_eol_rule=str(drivers.get("eol_rule", "")),
            majors_at_a_time=int(wording["majors_at_a_time"]),
            major_support_wording=" ".join(str(wording["wording"]).split()),
            major_support=major_source,
            major_releases={
                int(r["major"]): MajorRelease(int(r["major"]), str(r["release"]), r["released"], p)
                for r, p in rows("nvidia-support", "major_releases")
            },
            cudnn_of_extra={str(r["extra"]): int(r["cudnn"]) for r, _ in rows("nvidia-support", "cudnn_tags")},
            ngc_releases={
                str(r["release"]): NgcRelease(
                    str(r["release"]),
                    str(r["cuda"]),
                    str(r["min_driver"]),
                    str(r["pytorch"]),
                    str(r["ubuntu"]),
                    str(r["python"]),
                    p,
                )
                for r, p in rows("ngc-pytorch", "releases")
            },
            ngc_forward_compatibility=" ".join(str(ngc.get("forward_compatibility", "")).split()),
            ort_opsets=tuple(
                OrtOpsets(str(r["version"]), int(r["max_opset"]), int(r["max_ir"]), p)
                for r, p in rows("onnx-compat", "onnxruntime")
            ),
            torch_exports=tuple(
                TorchExport(
                    str(r["torch"]),
                    str(r["exporter"]),
                    int(r["default_opset"]),
                    int(r["ir_version"]) if r.get("ir_version") is not None else None,
                    int(r["min_opset"]),
                    int(r["max_opset"]),
                    p,
                    int(r["torchscript_max_opset"]) if r.get("torchscript_max_opset") is not None else None,
                )
                for r, p in rows("onnx-compat", "torch")
            ),
            opset_ir={int(r["opset"]): int(r["ir_version"]) for r, _ in rows("onnx-compat", "torchscript_ir")},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{data_dir}: facts file has an unexpected shape: {exc!r}") from exc
