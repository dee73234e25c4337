"""The quarterly review of one managed image, as plain functions the flow wraps in tasks:
registry facts, NVIDIA support state, drivers, wheels, libraries, the pinned files, and the plan.
Every FROM of a managed Dockerfile appears: one that cannot be resolved is an error row."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.dockerfile.parser import BaseImage, read_dockerfile
from tasks.errors import BaseImageError, RegistryError, RegistryTransientError, RegistryUnreachableError
from tasks.images.reference import ImageReference
from tasks.images.tags import CudaTag, NgcTag
from tasks.registry.session import ImageInfo, RegistrySession
from tasks.research import osv
from tasks.research.facts import Facts
from tasks.research.ngc_plan import plan_ngc
from tasks.research.planner import ImagePlan, StackInputs, candidates, pin_digest, plan_cuda
from tasks.research.sources.base import WheelIndex
from tasks.statuses import PlanAction, SupportStatus
from tasks.update.coupled import file_reader, read_stack
from tasks.update.pip_lines import dockerfile_pins
from tasks.update.requirements import CurrentPins


@dataclass
class ReviewSources:
    """Where this run's data comes from, said in every report."""

    mode: str  # live | offline | bundled
    description: str
    unsupported: Mapping[str, str]  # may resolve later: the registry work starts without waiting for it
    unsupported_from: str


BANNER = "start-up logs show NVIDIA's deprecation banner"


@dataclass
class ImageReview:
    """One reviewed FROM, from its research to the report: the plan stays typed while the review
    settles shared requirements files and the consumers (tasks/research/assembly.py); `to_json`
    is the image's row in the report."""

    image: str
    dockerfile: str
    line: int
    reference: str | None
    plan: ImagePlan | None = None
    registry: ImageInfo | None = None  # what the registry says of the current base (None: not read)
    deprecation_banner: list[str] | None = None  # None: not checked
    banner_note: str = ""
    advisories: list[osv.Advisory] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    transient: bool = False  # a registry error that a later attempt may not meet (503, 429, timeout)
    notes: list[str] = field(default_factory=list)  # reasons after the plan's own (the consumers' decisions)

    @property
    def status(self) -> SupportStatus | None:
        """The current base's support status; None when the review could not plan the image."""
        return self.plan.status if self.plan else None

    @property
    def recommended(self) -> bool:
        return bool(self.plan and self.plan.recommended)

    @property
    def target(self) -> str | None:
        return self.plan.target if self.plan else None

    @property
    def urgent(self) -> bool:
        return bool(self.plan and self.plan.urgent)

    @property
    def reasons(self) -> list[str]:
        """Why, in the report's order: NVIDIA's banner, the plan's reasons, what blocks it, the notes."""
        banner = [BANNER] if self.deprecation_banner else []
        if self.plan is None:
            return [*banner, *self.notes]
        return [*banner, *self.plan.reasons, *(f"blocked: {b}" for b in self.plan.blocking), *self.notes]

    def settle(self) -> None:
        """Recompute the plan's `recommended` (NVIDIA's own banner makes a change due)."""
        if self.plan is not None:
            if self.deprecation_banner:
                self.plan.due = True
            self.plan.settle()

    def to_json(self) -> dict[str, Any]:
        self.settle()
        return {
            "image": self.image,
            "file": self.dockerfile,
            "line": self.line,
            "current": self.reference,
            "status": str(self.status or PlanAction.ERROR),
            "eol": self.status in (SupportStatus.EOL, SupportStatus.DELETED),
            "deprecation_banner": self.deprecation_banner,
            "banner_note": self.banner_note,
            "target": self.target,
            "action": str(self.plan.action if self.plan else PlanAction.ERROR),
            "recommended": self.recommended,
            "urgent": self.urgent,
            "reasons": self.reasons,
            "plan": self.plan.to_json() if self.plan else None,
            "registry": _registry_json(self.registry),
            "advisories": [dataclasses.asdict(a) for a in self.advisories],
            "errors": self.errors,
        }


def _ignored(base: BaseImage) -> bool:
    """FROMs that name no image to review: ``scratch`` and earlier build stages."""
    code = getattr(base, "skip", None)  # the machine-readable skip code, where the parser has it
    if code is not None:
        return code in ("scratch", "stage-reference")
    reason = base.skip_reason or ""
    return reason.startswith("scratch") or reason.startswith("refers to the earlier build stage")


def _is_managed_kind(ref: ImageReference | None) -> bool:
    return bool(ref and (CudaTag.try_parse(ref.tag) or NgcTag.try_parse(ref.tag)))


BannerCheck = Callable[[str], tuple[list[str] | None, str]]


@dataclass(frozen=True)
class ReviewOptions:
    """The image's settings the review needs beside its Dockerfile."""

    python: str
    fleet_min_driver: int
    allow_major: bool
    pin_minor: str | None
    allow_missing: frozenset[str] = frozenset()
    requirements: Path | None = None  # the image's requirements file, as read
    requirements_label: str | None = None  # ... and as the plan names it (relative to the repository)
    pyproject: Path | None = None  # images[].pyproject, as read (else the pyproject.toml beside the requirements)


@dataclass(frozen=True)
class Occurrence:
    """One CUDA/NGC FROM of a Dockerfile, with what its plan depends on besides the registry."""

    image: str
    base: BaseImage
    options: ReviewOptions
    pins: CurrentPins | None
    run_pins: CurrentPins | None
    pins_text: str = ""  # what `pins` and `run_pins` were read from (research is shared by equal texts)

    @property
    def key(self) -> tuple[Any, ...]:
        """Equal keys get the same research: the base, the image's settings and its pinned files."""
        o = self.options
        return (
            str(self.base.reference),
            o.python,
            o.fleet_min_driver,
            o.allow_major,
            o.pin_minor,
            o.allow_missing,
            o.requirements_label,
            self.pins_text,
        )


def dockerfile_occurrences(
    name: str,
    path: Path,
    label: str,
    build_args: dict[str, str],
    options: ReviewOptions,
    *,
    managed: bool = True,
) -> tuple[list[ImageReview], list[Occurrence]]:
    """The FROMs of one Dockerfile to research, and an error row for every FROM that cannot be
    resolved (and, for a managed image, when there is no CUDA/NGC base at all, or its pinned
    requirements cannot be read)."""
    try:
        parsed = read_dockerfile(path, build_args, label)
        pins = None
        text = ""
        if options.requirements is not None or options.pyproject is not None:
            # the requirements file with its -r/-c includes, and the uv pyproject.toml (tasks.update.coupled);
            # a file that cannot be read or decoded is an error naming it
            stack = read_stack(
                file_reader(),
                str(options.requirements) if options.requirements else None,
                str(options.pyproject) if options.pyproject else None,
            )
            pins = stack.pins
            text = json.dumps([pinned.to_json() for _path, pinned in stack.per_file], sort_keys=True)
    except BaseImageError as exc:
        return [ImageReview(name, label, 0, None, errors=[str(exc)])], []
    errors: list[ImageReview] = []
    found: list[Occurrence] = []
    run_pins = dockerfile_pins(parsed.text, build_args)
    fingerprint = f"{text}\0{sorted(run_pins.pins.items()) if run_pins else ''}"
    for base in parsed.bases:
        if _ignored(base):
            continue
        if base.reference is None:
            errors.append(
                ImageReview(
                    name,
                    label,
                    base.line,
                    None,
                    errors=[f"{base.location}: FROM {base.raw or '(nothing)'} cannot be resolved: {base.skip_reason}"],
                )
            )
            continue
        if _is_managed_kind(base.reference) and all(str(o.base.reference) != str(base.reference) for o in found):
            # two stages on one base are one finding (the first FROM's line): one move rewrites both
            found.append(Occurrence(name, base, options, pins, run_pins, fingerprint))
    if managed and not errors and not found:
        errors.append(
            ImageReview(
                name,
                label,
                0,
                None,
                errors=[f"{label}: no FROM names an nvidia/cuda or NGC PyTorch image; check images[].dockerfile"],
            )
        )
    return errors, found


def _registry_json(info: ImageInfo | None) -> dict[str, Any]:
    """The report's ``registry`` object of an image: {} when the registry was not read."""
    if info is None:
        return {}
    return {
        "digest": info.digest,
        "cuda_version": info.cuda_version,
        "end_of_life": info.end_of_life,
        "platforms": [str(p) for p in info.platforms],
    }


def research(
    occurrence: Occurrence,
    session: RegistrySession,
    facts: Facts,
    sources: ReviewSources,
    index: WheelIndex,
    banner: BannerCheck | None = None,
) -> ImageReview:
    """The review of one distinct occurrence (see `Occurrence.key`)."""
    o = occurrence
    return review_base(o.image, o.base, session, facts, sources, index, o.options, o.pins, o.run_pins, banner=banner)


def for_occurrence(review: ImageReview, occurrence: Occurrence) -> ImageReview:
    """`review` (the research of an equal occurrence) as the review of `occurrence`'s image and FROM."""
    plan = copy.deepcopy(review.plan)
    if plan is not None:
        plan.image, plan.dockerfile = occurrence.image, occurrence.base.file
    return dataclasses.replace(
        review,
        image=occurrence.image,
        dockerfile=occurrence.base.file,
        line=occurrence.base.line,
        plan=plan,
        advisories=list(review.advisories),
        errors=list(review.errors),
        notes=list(review.notes),
    )


def review_dockerfile(
    name: str,
    path: Path,
    label: str,
    build_args: dict[str, str],
    session: RegistrySession,
    facts: Facts,
    sources: ReviewSources,
    index: WheelIndex,
    options: ReviewOptions,
    *,
    managed: bool = True,
    banner: BannerCheck | None = None,
) -> list[ImageReview]:
    """One review per CUDA/NGC FROM of the Dockerfile, and an error row for every FROM that cannot
    be resolved (and, for a managed image, when there is no CUDA/NGC base at all)."""
    errors, found = dockerfile_occurrences(name, path, label, build_args, options, managed=managed)
    return errors + [research(o, session, facts, sources, index, banner) for o in found]


def torch_answers(
    index: WheelIndex, majors: dict[int, int], python: str, package: str, only: set[str] | None = None
) -> dict[str, list[str]]:
    """variant -> versions of `package` for `python`, for every variant cu<M><0..max minor>."""
    variants = [
        f"cu{major}{minor}"
        for major, top in sorted(majors.items())
        for minor in range(top + 1)
        if only is None or f"cu{major}{minor}" in only
    ]
    index.prefetch([(variant, package) for variant in variants])  # one round trip, not one per variant
    out: dict[str, list[str]] = {}
    for variant in variants:
        if index.wheels(variant, package):
            versions = index.versions(variant, package, python)
            if versions:
                out[variant] = [str(v) for v in versions]
    return out


def review_base(
    name: str,
    base: BaseImage,
    session: RegistrySession,
    facts: Facts,
    sources: ReviewSources,
    index: WheelIndex,
    options: ReviewOptions,
    pins: CurrentPins | None = None,
    run_pins: CurrentPins | None = None,
    *,
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
        review.transient = isinstance(exc, RegistryTransientError) and not isinstance(exc, RegistryUnreachableError)
        return review
    review.registry = info
    if banner is not None and info is not None:
        review.deprecation_banner, review.banner_note = banner(str(ref))
    cuda = CudaTag.try_parse(ref.tag)
    try:
        if cuda is not None:
            track = [t for t in (CudaTag.try_parse(x) for x in tags) if t and t.same_track(cuda)] + [cuda]
            majors: dict[int, int] = {}
            for t in track:
                majors[t.version[0]] = max(majors.get(t.version[0], 0), t.version[1])
            torch = torch_answers(index, majors, options.python, "torch")
            wants_vision = bool(pins and pins.version("torchvision")) or bool(
                run_pins and run_pins.version("torchvision")
            )
            vision = torch_answers(index, majors, options.python, "torchvision", set(torch)) if wants_vision else None
            inputs = StackInputs(
                options.python,
                pins,
                options.requirements_label,
                run_pins,
                torch,
                vision,
                options.allow_missing,
            )
            rows = candidates(
                cuda,
                tags,
                facts,
                options.fleet_min_driver,
                sources.unsupported,
                torch,
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
                allow_major=options.allow_major,
                pin_minor=options.pin_minor,
                index_base=index.base_url,
                inputs=inputs,
                current_env=info.env if info else None,
            )
        else:
            ngc = NgcTag.parse(str(ref.tag))

            def cuda_of(tag: str) -> str | None:
                try:
                    found = session.inspect(ImageReference(ref.registry, ref.repository, tag))
                except RegistryError:
                    return None
                return found.cuda_version if found else None

            inputs = StackInputs(options.python, None, None, run_pins, allow_missing=options.allow_missing)
            review.plan = plan_ngc(
                name,
                base.file,
                str(ref),
                ngc,
                tags,
                info.env if info else None,
                facts,
                fleet_min_driver=options.fleet_min_driver,
                cuda_of=cuda_of,
                inputs=inputs,
            )
        if ref.digest and review.plan.moves_base and review.plan.target:
            new_tag = review.plan.target.rsplit(":", 1)[1]
            manifest = session.manifest(ref.registry, ref.repository, new_tag)
            pin_digest(review.plan, ref, manifest.digest if manifest else None)
    except BaseImageError as exc:
        review.errors.append(f"{type(exc).__name__}: {exc}")
    return review
