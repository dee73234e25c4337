"""The quarterly review of one managed image, as plain functions the flow wraps in tasks:
registry facts, NVIDIA support state, drivers, wheels, libraries, advisories, and the plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from tasks.dockerfile.parser import BaseImage, read_dockerfile
from tasks.errors import BaseImageError, RegistryError
from tasks.images.tags import CudaTag, NgcTag
from tasks.registry.http import HttpTransport, Outcome, classify
from tasks.registry.session import ImageInfo, RegistrySession
from tasks.research import osv
from tasks.research.facts import Facts
from tasks.research.planner import ImagePlan, candidates, plan_cuda, plan_ngc
from tasks.research.pytorch_index import PyTorchIndex
from tasks.research.support import parse_unsupported


@dataclass
class ReviewSources:
    """Where this run's data comes from, said in every report."""

    mode: str  # live | offline | bundled
    description: str
    unsupported: dict[str, str]
    unsupported_from: str


def unsupported_releases(facts: Facts, transport: HttpTransport | None) -> tuple[dict[str, str], str]:
    """NVIDIA's unsupported list: live from its manifest, else the bundled table (said so)."""
    if transport is not None:
        response = transport.request("GET", facts.support_live_url)
        if classify(response.status_code) is Outcome.OK:
            return parse_unsupported(response.text, facts.support_live_url), facts.support_live_url
    bundled = {release: entry.reason for release, entry in facts.eol.items()}
    return bundled, f"bundled config/data/nvidia-support.yaml (as of {facts.eol_as_of})"


@dataclass
class ImageReview:
    image: str
    dockerfile: str
    line: int
    reference: str | None
    plan: ImagePlan | None = None
    info: dict[str, Any] = field(default_factory=dict)
    deprecation_banner: list[str] | None = None  # None: not checked
    banner_note: str = ""
    advisories: list[osv.Advisory] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.plan is None:
            return "error"
        return self.plan.status

    def to_json(self) -> dict[str, Any]:
        plan = self.plan.to_json() if self.plan else None
        reasons = list(plan["reasons"]) if plan else []
        if self.deprecation_banner:
            reasons.insert(0, "start-up logs show NVIDIA's deprecation banner")
        return {
            "image": self.image,
            "file": self.dockerfile,
            "line": self.line,
            "current": self.reference,
            "status": self.status,
            "eol": self.status in ("eol", "deleted"),
            "deprecation_banner": self.deprecation_banner,
            "banner_note": self.banner_note,
            "target": plan["target"] if plan else None,
            "action": plan["action"] if plan else "error",
            "recommended": bool(plan and plan["recommended"]) or bool(self.advisories) or bool(self.deprecation_banner),
            "reasons": reasons,
            "plan": plan,
            "registry": self.info,
            "advisories": [a.__dict__ for a in self.advisories],
            "errors": self.errors,
        }


def managed_bases(path: Path, label: str, build_args: dict[str, str]) -> list[BaseImage]:
    """The FROMs of a managed Dockerfile that name CUDA or NGC images."""
    return [
        b
        for b in read_dockerfile(path, build_args, label).bases
        if b.reference and (CudaTag.try_parse(b.reference.tag) or NgcTag.try_parse(b.reference.tag))
    ]


BannerCheck = Callable[[str], tuple[list[str] | None, str]]


def review_base(
    name: str,
    base: BaseImage,
    session: RegistrySession,
    facts: Facts,
    sources: ReviewSources,
    index: PyTorchIndex,
    *,
    python: str,
    fleet_min_driver: int,
    allow_major: bool,
    pin_minor: str | None,
    banner: BannerCheck | None = None,
) -> ImageReview:
    """Everything the review says about one FROM; failures become errors on the result."""
    assert base.reference is not None
    ref = base.reference
    review = ImageReview(name, base.file, base.line, str(ref))
    try:
        tags = session.tags(ref.registry, ref.repository) or []
        info: ImageInfo | None = session.inspect(ref) if ref.tag in tags else None
    except RegistryError as exc:
        review.errors.append(f"registry: {exc}")
        return review
    if info is not None:
        review.info = {
            "digest": info.digest,
            "cuda_version": info.cuda_version,
            "end_of_life": info.end_of_life,
            "platforms": [str(p) for p in info.platforms],
        }
    if banner is not None and info is not None:
        review.deprecation_banner, review.banner_note = banner(str(ref))
    cuda = CudaTag.try_parse(ref.tag)
    try:
        if cuda is not None:

            def torch_for(variant: str) -> list[Version] | None:
                return index.versions(variant, "torch", python) if index.wheels(variant, "torch") else None

            rows = candidates(
                cuda,
                tags,
                facts,
                fleet_min_driver,
                sources.unsupported,
                torch_for,
                current_config_eol=info.end_of_life if info else None,
                current_require=info.env.get("NVIDIA_REQUIRE_CUDA") if info else None,
            )
            review.plan = plan_cuda(
                name,
                base.file,
                str(ref),
                cuda,
                rows,
                facts,
                allow_major=allow_major,
                pin_minor=pin_minor,
                index_base=index.base_url,
            )
        else:
            ngc = NgcTag.parse(str(ref.tag))
            review.plan = plan_ngc(name, base.file, str(ref), ngc, tags, info.env if info else None)
    except BaseImageError as exc:
        review.errors.append(f"{type(exc).__name__}: {exc}")
    return review
