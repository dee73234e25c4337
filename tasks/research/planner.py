"""The migration planner (pure): for a managed CUDA image, every release on its track with its
support status, driver fit, wheels and libraries (the compatibility matrix rows), and the target:
the newest supported release the fleet runs, with torch wheels for the configured Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from packaging.version import Version

from tasks.images.tags import CudaTag, NgcTag
from tasks.research.drivers import DriverCheck, fleet_check
from tasks.research.facts import Facts
from tasks.research.pytorch_index import variant_for
from tasks.research.support import SupportState, support_state

# variant (cu126) -> torch versions with a wheel for the Python asked, newest first; None: no page
TorchLookup = Callable[[str], list[Version] | None]


@dataclass(frozen=True)
class TorchChoice:
    variant: str
    torch: str
    torchvision: str | None
    exact: bool  # False: the nearest lower variant of the same major


@dataclass(frozen=True)
class Candidate:
    tag: CudaTag
    support: SupportState
    driver: DriverCheck
    torch: TorchChoice | None
    cupy_package: str | None
    cupy_version: str | None
    onnxruntime_gpu: str | None
    ubuntu_end_of_support: date | None

    def row(self) -> dict[str, Any]:
        """One compatibility-matrix row."""
        return {
            "cuda": self.tag.version_str,
            "tag": str(self.tag),
            "status": self.support.status,
            "estimated_deletion": self.support.estimated_deletion.isoformat()
            if self.support.estimated_deletion
            else None,
            "min_driver": self.driver.min_driver,
            "fleet_ok": self.driver.ok,
            "driver_path": self.driver.how,
            "torch_variant": self.torch.variant if self.torch else None,
            "torch": self.torch.torch if self.torch else None,
            "torchvision": self.torch.torchvision if self.torch else None,
            "cupy": f"{self.cupy_package}=={self.cupy_version}" if self.cupy_package else None,
            "onnxruntime_gpu": self.onnxruntime_gpu,
            "ubuntu_end_of_support": self.ubuntu_end_of_support.isoformat() if self.ubuntu_end_of_support else None,
        }


@dataclass
class ImagePlan:
    image: str
    dockerfile: str
    kind: str  # cuda | ngc
    current: str
    status: str  # supported | eol | deleted | unknown
    target: str | None = None
    recommended: bool = False  # migration recommended (deprecated, EOL, deleted soon, vulnerable)
    reasons: list[str] = field(default_factory=list)
    torch: TorchChoice | None = None
    index_url: str | None = None
    cupy_package: str | None = None
    cupy_version: str | None = None
    onnxruntime_gpu: str | None = None
    matrix: list[dict[str, Any]] = field(default_factory=list)

    @property
    def action(self) -> str:
        return "migrate" if self.target and self.target != self.current else "none"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action
        return data


def choose_torch(minor: tuple[int, int], lookup: TorchLookup, facts: Facts) -> TorchChoice | None:
    """Newest torch for `minor`'s variant, else for the nearest lower variant of the same major."""
    for lower in range(minor[1], -1, -1):
        variant = variant_for((minor[0], lower))
        versions = lookup(variant)
        if versions:
            torch = str(versions[0])
            return TorchChoice(variant, torch, facts.torchvision_for(torch), exact=lower == minor[1])
    return None


def candidates(
    current: CudaTag,
    tags: list[str],
    facts: Facts,
    fleet_min_driver: int,
    unsupported: dict[str, str],
    torch_lookup: TorchLookup,
    current_config_eol: bool | None = None,
    current_require: str | None = None,
) -> list[Candidate]:
    """Every release on `current`'s track (current included), oldest first."""
    parsed = [t for t in (CudaTag.try_parse(x) for x in tags) if t is not None]
    track = sorted({t.version: t for t in parsed if t.same_track(current)}.values(), key=lambda t: t.version)
    newest_patch: dict[tuple[int, int], tuple[int, int, int]] = {}
    for t in parsed:
        if newest_patch.get(t.minor, (0, 0, 0)) < t.version:
            newest_patch[t.minor] = t.version
    if current.version not in {t.version for t in track}:
        track.append(current)
        track.sort(key=lambda t: t.version)
    out = []
    for tag in track:
        is_current = tag.version == current.version
        newer = newest_patch.get(tag.minor)
        state = support_state(
            tag.version_str,
            facts,
            unsupported,
            config_eol=current_config_eol if is_current else None,
            newer_patch=".".join(map(str, newer)) if newer and newer > tag.version else None,
            tag_present=str(tag) in tags,
        )
        package, cupy = facts.cupy_for(tag.minor)
        ubuntu = facts.ubuntu.get(tag.os_version) if tag.os == "ubuntu" else None
        out.append(
            Candidate(
                tag,
                state,
                fleet_check(
                    tag.version_str,
                    fleet_min_driver,
                    facts,
                    current_require if is_current else None,
                ),
                choose_torch(tag.minor, torch_lookup, facts),
                package,
                cupy,
                facts.ort_for(tag.version[0]),
                ubuntu.end_of_standard_support if ubuntu else None,
            )
        )
    return out


def plan_cuda(
    image: str,
    dockerfile: str,
    current_ref: str,
    current: CudaTag,
    rows: list[Candidate],
    facts: Facts,
    *,
    allow_major: bool,
    pin_minor: str | None,
    index_base: str,
) -> ImagePlan:
    """Pick the target among `rows`; say why for the choice and for every rejection that matters."""
    now = next(c for c in rows if c.tag.version == current.version)
    plan = ImagePlan(image, dockerfile, "cuda", current_ref, now.support.status, matrix=[c.row() for c in rows])
    plan.reasons.extend(now.support.reasons)
    plan.recommended = not now.support.supported

    def eligible(c: Candidate, majors: set[int]) -> bool:
        return (
            c.support.supported
            and c.driver.ok
            and c.torch is not None
            and c.tag.version[0] in majors
            and (pin_minor is None or f"{c.tag.minor[0]}.{c.tag.minor[1]}" == pin_minor)
        )

    same_major = [c for c in rows if eligible(c, {current.version[0]})]
    pool = same_major
    if allow_major or not same_major:
        others = [c for c in rows if eligible(c, {c.tag.version[0]})]
        if allow_major:
            pool = others
        elif (
            not same_major
            and others
            and not any(c.support.supported for c in rows if c.tag.version[0] == current.version[0])
        ):
            pool = others
            plan.reasons.append(
                f"every CUDA {current.version[0]}.x release on this track is unsupported: crossing the major"
            )
    rejected_newer = [c for c in rows if c.tag.version > current.version and c not in pool]
    for c in rejected_newer[-3:]:
        why = (
            "not supported"
            if not c.support.supported
            else f"fleet drivers: {c.driver.reason}"
            if not c.driver.ok
            else "no torch wheels"
            if c.torch is None
            else f"pinned to CUDA {pin_minor}"
            if pin_minor
            else f"CUDA major {c.tag.version[0]} needs policy.allow_major_upgrade"
        )
        plan.reasons.append(f"{c.tag.version_str} not chosen: {why}")
    if not pool:
        plan.reasons.append("no eligible release on this track")
        return plan
    best = max(pool, key=lambda c: c.tag.version)
    if best.tag.version <= current.version:
        plan.reasons.append(f"{current.version_str} is the newest eligible release on its track")
        return plan
    plan.target = current_ref.rsplit(":", 1)[0] + ":" + str(best.tag)
    plan.torch = best.torch
    plan.index_url = f"{index_base.rstrip('/')}/{best.torch.variant}" if best.torch else None
    plan.cupy_package, plan.cupy_version = best.cupy_package, best.cupy_version
    plan.onnxruntime_gpu = best.onnxruntime_gpu
    plan.reasons.append(
        f"target {best.tag.version_str}: newest supported release on the track that the fleet runs ({best.driver.how})"
    )
    if best.torch:
        exact = "" if best.torch.exact else f" (nearest lower variant: no wheels for {variant_for(best.tag.minor)})"
        plan.reasons.append(
            f"torch {best.torch.torch} + torchvision {best.torch.torchvision} from {best.torch.variant}{exact}"
        )
    if not plan.recommended:
        plan.reasons.append("current release is still supported: the update is optional")
    return plan


def plan_ngc(
    image: str,
    dockerfile: str,
    current_ref: str,
    current: NgcTag,
    tags: list[str],
    env: dict[str, str] | None,
) -> ImagePlan:
    """NGC images: the newest release on the same track (py3 / igpu); never deprecated by policy."""
    parsed = [t for t in (NgcTag.try_parse(x) for x in tags) if t is not None and t.same_track(current)]
    present = str(current) in tags
    plan = ImagePlan(image, dockerfile, "ngc", current_ref, "supported" if present else "deleted")
    if not present:
        plan.recommended = True
        plan.reasons.append(f"{current} is gone from the registry")
    newest = max(parsed, key=lambda t: t.sort_key) if parsed else None
    if newest and newest.sort_key > current.sort_key:
        plan.target = current_ref.rsplit(":", 1)[0] + ":" + str(newest)
        plan.reasons.append(f"newest NGC release on the track is {newest.release}")
    else:
        plan.reasons.append(f"{current.release} is the newest NGC release on its track")
    if env:
        plan.reasons.append(f"current contents: CUDA {env.get('CUDA_VERSION')}, PyTorch {env.get('PYTORCH_VERSION')}")
    return plan
