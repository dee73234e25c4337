"""Migration plans (pure): from a review report (its recommended targets and the pins its plans
chose), from an annual report (targets, coupled here), or from ``--to VERSION``. Every target is
checked against the registry's answers before anything is written: the tag exists, NVIDIA supports
it, the fleet runs it, and the image's Python has the stack the plan needs. Images that share a
requirements file get one set of pins for it, or the plan is refused naming them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from packaging.version import InvalidVersion, Version

from tasks.errors import BaseImageError
from tasks.images.reference import ImageReference, parse_reference
from tasks.images.tags import CudaTag
from tasks.research.consumers import ConsumerRuntime, merge, plan_consumers
from tasks.research.drivers import fleet_check
from tasks.research.facts import Facts
from tasks.research.planner import cudnn_change, cudnn_major
from tasks.research.report_model import ReviewReport
from tasks.research.stack import Stack, StackRequest, choose_stack, variant_minor
from tasks.research.support import support_state
from tasks.update.plan import ImageChange, MigrationPlan
from tasks.update.requirements import CurrentPins, RequirementChanges

_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+", re.ASCII)


@dataclass(frozen=True)
class ManagedBase:
    """One managed image's FROM and the files that pin its stack."""

    image: str
    dockerfile: str  # relative to the repository
    current: str
    requirements: str | None = None
    python: str = "3.11"
    pin_minor: str | None = None
    pins: CurrentPins | None = None  # the requirements file
    run_pins: CurrentPins | None = None  # the Dockerfile's RUN pip install lines

    @property
    def reference(self) -> ImageReference:
        return parse_reference(self.current)


@dataclass(frozen=True)
class Answers:
    """What the registry and the index said, for the checks and the stack."""

    tags: dict[str, list[str]]  # "registry/repository" -> tags
    unsupported: dict[str, str]
    torch: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # python -> variant -> versions
    torchvision: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    digests: dict[str, str | None] = field(default_factory=dict)  # "registry/repository:tag" -> digest
    source: str = "live"


@dataclass(frozen=True)
class Rules:
    fleet_min_driver: int
    allow_missing: frozenset[str] = frozenset()
    consumers: tuple[ConsumerRuntime, ...] = ()  # who loads the exported model, with their ONNX Runtime
    bump_consumers: bool = False  # policy.bump_consumers


def _public(version: str | None) -> str | None:
    try:
        return str(Version(version).public) if version else None
    except InvalidVersion:
        return None


def with_consumers(
    plan: MigrationPlan, bases: Sequence[ManagedBase], facts: Facts, rules: Rules, why: str
) -> MigrationPlan:
    """`plan` with its consumer decision (tasks.research.consumers) for the torch each changed image
    runs afterwards (the plan's pin in its requirements file or Dockerfile pip lines, else what those
    pin today); a consumer that cannot load what it exports
    stops the plan, naming the consumer and both versions."""
    if not rules.consumers:
        return plan
    by_name = {b.image: b for b in bases}
    torches: list[str | None] = []
    for change in plan.changes:
        base = by_name.get(change.image)
        pinned = base.pins.version("torch") if base is not None and base.pins is not None else None
        run_pinned = base.run_pins.version("torch") if base is not None and base.run_pins is not None else None
        # The torch the image runs afterwards: the plan's, in its requirements file or its
        # Dockerfile's pip lines, else what either pins today.
        torches.append(_public(change.changes.torch or change.dockerfile_pins.torch or pinned or run_pinned))
    wanted: list[str | None] = [*sorted({t for t in torches if t}, key=Version)] or [None]
    decided = merge([plan_consumers(t, rules.consumers, facts, bump=rules.bump_consumers) for t in wanted])
    if decided.blocking:
        raise BaseImageError(f"{why}: nothing was written:\n  " + "\n  ".join(decided.blocking))
    notes = tuple(r for r in decided.reasons if r not in plan.reasons)
    return replace(plan, reasons=(*plan.reasons, *notes), consumers=decided)


def parse_version(text: str) -> tuple[int, int, int]:
    """``12.9.1`` -> (12, 9, 1); anything else (two parts, non-ASCII digits) is refused."""
    if not _VERSION.fullmatch(text):
        raise BaseImageError(
            f"--to {text!r}: expected a CUDA version of three ASCII-digit parts, like 12.9.1 (NVIDIA's tags use them)"
        )
    major, minor, patch = (int(p) for p in text.split("."))
    return major, minor, patch


def target_for(base: ManagedBase, version: str, tags: Sequence[str] | None = None) -> ImageReference | None:
    """`base` on `version` on its own track, as the registry's `tags` spell it (None: not an
    nvidia/cuda tag or pinned to another minor)."""
    ref = base.reference
    tag = CudaTag.try_parse(ref.tag)
    if tag is None:
        return None
    if base.pin_minor is not None and ".".join(version.split(".")[:2]) != base.pin_minor:
        return None
    return ImageReference(ref.registry, ref.repository, tag.on_track(version, tags))


def _repo(base: ManagedBase) -> str:
    return f"{base.reference.registry}/{base.reference.repository}"


def _request(base: ManagedBase, tag: CudaTag, answers: Answers, facts: Facts) -> StackRequest:
    minor = tag.minor
    torch = {
        v: list(x)
        for v, x in answers.torch.get(base.python, {}).items()
        if (m := variant_minor(v, minor[0])) is not None and m <= minor[1]
    }
    vision = answers.torchvision.get(base.python)
    return StackRequest(
        base.image,
        tag.version_str,
        base.python,
        cudnn_major(tag, None, facts),
        torch,
        {v: list(x) for v, x in vision.items() if v in torch} if vision is not None else None,
    )


def check_target(base: ManagedBase, target: ImageReference, answers: Answers, facts: Facts, rules: Rules) -> list[str]:
    """Why `base` cannot move to `target` (empty: it can): the registry, support, fleet."""
    repo = f"{target.registry}/{target.repository}"
    tags = answers.tags.get(repo, [])
    tag = CudaTag.try_parse(target.tag)
    problems: list[str] = []
    if target.tag not in tags:
        same = sorted(
            {t.version for t in (CudaTag.try_parse(x) for x in tags) if t and tag and t.same_track(tag)}, reverse=True
        )
        shown = ", ".join(".".join(map(str, v)) for v in same) or "none"
        problems.append(
            f"{base.image}: {target.familiar_name}:{target.tag} does not exist in the registry ({answers.source}); "
            f"releases on its track ({'-'.join(p for p in tag.track if p) if tag else target.tag}): {shown}"
        )
        return problems
    if tag is None:
        return problems
    parsed = [t for t in (CudaTag.try_parse(x) for x in tags) if t]
    newer = max((t.version for t in parsed if t.minor == tag.minor), default=tag.version)
    state = support_state(
        tag.version_str,
        facts,
        answers.unsupported,
        config_eol=None,
        newer_patch=".".join(map(str, newer)) if newer > tag.version else None,
        tag_present=True,
        newest_major=max((t.version[0] for t in parsed), default=None),
    )
    if not state.supported:
        problems.append(f"{base.image}: CUDA {tag.version_str} is not supported: {'; '.join(state.reasons)}")
    check = fleet_check(tag.version_str, rules.fleet_min_driver, facts)
    if not check.ok:
        problems.append(f"{base.image}: the fleet cannot run CUDA {tag.version_str}: {check.reason}")
    if base.reference.digest and answers.digests.get(f"{repo}:{target.tag}") is None:
        problems.append(f"{base.image}: {base.current} is pinned by digest and the registry gave none for {target.tag}")
    return problems


def _with_digest(base: ManagedBase, target: ImageReference, answers: Answers) -> ImageReference:
    if base.reference.digest is None:
        return target
    digest = answers.digests.get(f"{target.registry}/{target.repository}:{target.tag}")
    return ImageReference(target.registry, target.repository, target.tag, digest)


def _group_stack(
    members: Sequence[tuple[ManagedBase, CudaTag]], answers: Answers, facts: Facts, rules: Rules
) -> tuple[Stack, list[Stack]]:
    requests = [_request(base, tag, answers, facts) for base, tag in members]
    pins = members[0][0].pins or CurrentPins()
    own = [choose_stack([r], pins, facts, rules.allow_missing) for r in requests]
    return choose_stack(requests, pins, facts, rules.allow_missing), own


def couple(
    moves: Sequence[tuple[ManagedBase, ImageReference]],
    bases: Sequence[ManagedBase],
    answers: Answers,
    facts: Facts,
    rules: Rules,
    why: str,
) -> tuple[list[ImageChange], list[str]]:
    """The checked changes for `moves` (base -> target), with one stack per requirements file
    (every base that shares it counts, moving or not); raises naming every problem found."""
    problems: list[str] = []
    reasons: list[str] = []
    moving = {b.image: t for b, t in moves}
    for base, target in moves:
        if target.tag != base.reference.tag:
            problems += check_target(base, target, answers, facts, rules)
    if problems:
        raise BaseImageError(f"{why}: nothing was written:\n  " + "\n  ".join(problems))
    changes: dict[str, RequirementChanges] = {}
    run_changes: dict[str, RequirementChanges] = {}
    by_file: dict[str, list[ManagedBase]] = {}
    for base in bases:
        if base.requirements and base.pins is not None and CudaTag.try_parse(base.reference.tag):
            by_file.setdefault(base.requirements, []).append(base)
    for path, members in by_file.items():
        if not any(m.image in moving for m in members):
            continue
        final = [(m, CudaTag.parse(str((moving.get(m.image) or m.reference).tag))) for m in members]
        stack, own = _group_stack(final, answers, facts, rules)
        if stack.conflicts:
            problems.append(f"{path}: {stack.conflicts[0]}")
            continue
        wanted: set[str] = set()
        for (member, _tag), mine in zip(final, own, strict=True):
            if member.image in moving:
                wanted |= mine.changed
        problems += [f"{path}: {b}" for b in stack.blocking] if wanted else []
        found = stack.changes(wanted)
        for member in members:
            changes[member.image] = found
        reasons += [f"{path}: {c.reason}" for c in stack.choices if c.component in wanted or c.blocking]
        if len(members) > 1:
            reasons.append(f"{path} is shared by {', '.join(m.image for m in members)}: one set of pins for all")
    for base, target in moves:
        tag = CudaTag.try_parse(target.tag)
        if base.run_pins is not None and (base.run_pins.pins or base.run_pins.ranges) and tag is not None:
            run = choose_stack([_request(base, tag, answers, facts)], base.run_pins, facts, rules.allow_missing)
            problems += [f"{base.dockerfile} RUN pip install: {b}" for b in run.blocking]
            run_changes[base.image] = run.changes()
            reasons += [f"{base.dockerfile} RUN pip install: {c.reason}" for c in run.choices if c.changes]
    if problems:
        raise BaseImageError(f"{why}: nothing was written:\n  " + "\n  ".join(problems))
    out = [
        ImageChange(
            base.image,
            base.dockerfile,
            base.current,
            str(_with_digest(base, target, answers)),
            base.requirements,
            changes.get(base.image, RequirementChanges()),
            run_changes.get(base.image, RequirementChanges()),
        )
        for base, target in moves
    ]
    return out, reasons


def from_target(
    version: str, bases: Sequence[ManagedBase], answers: Answers, facts: Facts, rules: Rules
) -> MigrationPlan:
    """Move every nvidia/cuda image (except those pinned to another minor) to `version` on its own
    track, checked and coupled (see the module docstring)."""
    wanted = parse_version(version)
    moves = [(b, t) for b in bases if (t := target_for(b, version, answers.tags.get(_repo(b)))) is not None]
    if not moves:
        raise BaseImageError(f"--to {version}: no managed image is on nvidia/cuda (or every one is pinned elsewhere)")
    changes, reasons = couple(moves, bases, answers, facts, rules, f"--to {version}")
    note = [] if answers.source == "live" else [f"checked against {answers.source}"]
    down = [
        f"{b.image}: the base moves down, {current.version_str} -> {version} (an older CUDA, as requested)"
        for b, _t in moves
        if (current := CudaTag.try_parse(b.reference.tag or "")) is not None and current.version > wanted
    ]
    cudnn = [
        f"{b.image}: {text}"
        for b, t in moves
        if (now := CudaTag.try_parse(b.reference.tag)) is not None
        and (then := CudaTag.try_parse(t.tag)) is not None
        and (text := cudnn_change(now, then, None, facts))
    ]
    plan = MigrationPlan(tuple(changes), (f"requested: CUDA {version}", *note, *down, *cudnn, *reasons))
    return with_consumers(plan, bases, facts, rules, f"--to {version}")


def check_shared(changes: Sequence[ImageChange]) -> None:
    """Two changes that rewrite one requirements file differently are refused, naming both."""
    seen: dict[str, ImageChange] = {}
    for change in changes:
        if not change.requirements:
            continue
        other = seen.setdefault(change.requirements, change)
        if other.changes != change.changes:
            mine, theirs = change.changes.to_json(), other.changes.to_json()
            differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            detail = ", ".join(
                f"{k}: {theirs.get(k)} ({other.image}) vs {mine.get(k)} ({change.image})" for k in differ
            )
            raise BaseImageError(
                f"{change.requirements} is shared by {other.image} and {change.image}, whose plans pin it "
                f"differently ({detail}); nothing was written. Give each image its own requirements file, "
                "or run the review again so both get one plan"
            )


def from_report(report: ReviewReport, requirements_of: dict[str, str | None]) -> MigrationPlan | None:
    """Every image the review recommends changing, with the pins its plan chose; a conflict the
    review found in a shared requirements file stops the run, naming the images."""
    changes = []
    reasons: list[str] = []
    for image in report.images:
        target = image.planned_target
        if not image.recommended or not target or image.errors:  # an unfinished research plans nothing
            continue
        changes.append(
            ImageChange(
                image.image,
                image.file,
                str(image.current),
                target,
                requirements_of.get(image.image),
                image.changes,
                image.dockerfile_changes,
            )
        )
        reasons.extend(f"{image.image}: {r}" for r in image.reasons[:3])
        reasons.extend(
            f"{image.image}: {image.file} RUN pip install: {k} -> {v}"
            for k, v in image.dockerfile_changes.to_json().items()
            if k != "index_base" and v is not None
        )
    if report.conflicts:
        raise BaseImageError("the review found a conflict, nothing was written: " + "; ".join(report.conflicts))
    unreviewed = [(f"{i.image} ({i.file})", "; ".join(i.errors)) for i in report.images if i.errors]
    if not changes and (unreviewed or report.errors or not report.complete):  # not a "nothing to migrate"
        missed = [f"{name}: {why}" for name, why in unreviewed] + [f"lookup failed: {e}" for e in report.errors]
        raise BaseImageError(
            f"{report.source}: the review did not finish ("
            + ("; ".join(missed) or "the report says it is incomplete")
            + "), so it cannot say whether a migration is due; nothing was written. Fix that and run the review "
            "again, or name the target with --to"
        )
    if not changes:
        return None
    check_shared(changes)
    from tasks.research.report import matrix_markdown

    recommended = {c.image for c in changes}
    decided = merge([i.consumers for i in report.images if i.image in recommended and i.consumers is not None])
    return MigrationPlan(
        tuple(changes),
        tuple(reasons),
        matrix_markdown([dict(r) for r in report.matrix]),
        consumers=decided,
        warnings=(
            *(f"{name} was not reviewed, so this migration leaves it as it is: {why}" for name, why in unreviewed),
            *(
                f"the review could not look this up, so what it would change is not in this plan: {e}"
                for e in report.errors
            ),
        ),
    )


def check_report(
    plan: MigrationPlan,
    report: ReviewReport,
    bases: Sequence[ManagedBase],
    answers: Answers,
    facts: Facts,
    rules: Rules,
) -> MigrationPlan:
    """A plan from a saved report, checked against today's registry; an annual report's targets
    (which carry no pins of their own) get their coupled pins here."""
    by_name = {b.image: b for b in bases}
    planned = {i.image: i for i in report.images}
    moves: list[tuple[ManagedBase, ImageReference]] = []
    kept: list[ImageChange] = []
    problems: list[str] = []
    for change in plan.changes:
        base = by_name.get(change.image)
        if base is None or base.current != change.current:
            problems.append(
                f"{change.image}: the report's current base {change.current} is not what "
                f"{change.dockerfile} has now ({base.current if base else 'no such managed image'}); review again"
            )
            continue
        target = parse_reference(change.target)
        found = planned.get(change.image)
        if found is not None and not found.coupled_later:
            if target.tag != base.reference.tag:
                problems += check_target(base, target, answers, facts, rules)
            kept.append(change)
        else:
            moves.append((base, ImageReference(target.registry, target.repository, target.tag)))
    if problems:
        raise BaseImageError(f"--report {report.source}: nothing was written:\n  " + "\n  ".join(problems))
    coupled, reasons = couple(moves, bases, answers, facts, rules, "--report") if moves else ([], [])
    out = [*kept, *coupled]
    check_shared(out)
    checked = MigrationPlan(tuple(out), (*plan.reasons, *reasons), plan.matrix_markdown, warnings=plan.warnings)
    return with_consumers(checked, bases, facts, rules, "--report")
