"""What ``migrate --to`` and ``migrate --report`` ask the registry and the PyTorch index before
anything is written (the I/O side; the checks and choices are pure, in ``tasks.update.plans``):
the managed images' FROMs and pinned files, tag lists, the target digests of digest-pinned bases,
and the torch / torchvision versions for each image's Python on the target's CUDA variants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.dockerfile.parser import read_dockerfile
from tasks.errors import BaseImageError
from tasks.images.reference import ImageReference
from tasks.images.tags import CudaTag, NgcTag
from tasks.registry.session import RegistrySession
from tasks.research.facts import Facts
from tasks.research.report_model import ReviewReport
from tasks.research.review import torch_answers
from tasks.research.sources.base import WheelIndex
from tasks.update.coupled import file_reader, read_stack
from tasks.update.pip_lines import dockerfile_pins
from tasks.update.plan import MigrationPlan
from tasks.update.plans import Answers, ManagedBase, Rules, check_report, from_report, from_target, target_for


def managed_bases(images: Sequence[Any], path_of: Any) -> list[ManagedBase]:
    """Every CUDA/NGC FROM of the managed images (`images` are the settings' ``images``,
    `path_of` resolves their paths); an unresolvable FROM is an error naming it."""
    out = []
    for image in images:
        parsed = read_dockerfile(path_of(image.dockerfile), image.build_args, str(image.dockerfile))
        pins = None
        stack_file = image.requirements or getattr(image, "pyproject", None)
        if stack_file:  # the requirements file with its includes, and the uv pyproject.toml
            pyproject = getattr(image, "pyproject", None)
            pins = read_stack(
                file_reader(),
                str(path_of(image.requirements)) if image.requirements else None,
                str(path_of(pyproject)) if pyproject else None,
            ).pins
        run_pins = dockerfile_pins(parsed.text, image.build_args)
        seen: set[str] = set()
        unresolved: list[str] = []
        for base in parsed.bases:
            ref = base.reference
            if ref is None and base.skip not in ("scratch", "stage-reference"):
                written = base.raw or "(nothing)"
                unresolved.append(f"{base.location}: FROM {written} cannot be resolved: {base.skip_reason}")
            if ref is None or not (CudaTag.try_parse(ref.tag) or NgcTag.try_parse(ref.tag)):
                continue
            if str(ref) in seen:  # two stages on one base: one move rewrites both FROMs
                continue
            seen.add(str(ref))
            out.append(
                ManagedBase(
                    image.name,
                    str(image.dockerfile),
                    str(ref),
                    str(stack_file) if stack_file else None,
                    image.python,
                    image.pin_minor,
                    pins,
                    run_pins,
                )
            )
        if not seen and unresolved:  # the image's base may be behind the FROM it cannot read
            raise BaseImageError(
                f"images[{image.name}]: {unresolved[0]}; declare the ARG with a default before the first FROM "
                f"or set it in images[{image.name}].build_args"
            )
    return out


def ask(
    session: RegistrySession,
    index: WheelIndex,
    bases: Sequence[ManagedBase],
    targets: Sequence[ImageReference],
    unsupported: dict[str, str],
    source: str,
) -> Answers:
    """Tag lists of every repository involved, digests of digest-pinned targets, and the index's
    torch/torchvision versions for every Python up to each target's CUDA minor."""
    tags: dict[str, list[str]] = {}
    for ref in [b.reference for b in bases] + list(targets):
        key = f"{ref.registry}/{ref.repository}"
        if key not in tags:
            tags[key] = session.tags(ref.registry, ref.repository) or []
    digests: dict[str, str | None] = {}
    pinned = {(b.reference.registry, b.reference.repository) for b in bases if b.reference.digest}
    for ref in targets:
        key = f"{ref.registry}/{ref.repository}:{ref.tag}"
        if (ref.registry, ref.repository) in pinned and ref.tag in tags[f"{ref.registry}/{ref.repository}"]:
            manifest = session.manifest(ref.registry, ref.repository, ref.tag or "latest")
            digests[key] = manifest.digest if manifest else None
    tops: dict[str, dict[int, int]] = {}  # python -> CUDA major -> highest minor asked
    wanted = [t for t in (CudaTag.try_parse(r.tag) for r in [*targets, *(b.reference for b in bases)]) if t]
    for base in bases:
        if (base.pins and base.pins.wants("torch")) or (base.run_pins and base.run_pins.wants("torch")):
            majors = tops.setdefault(base.python, {})
            for tag in wanted:
                majors[tag.version[0]] = max(majors.get(tag.version[0], 0), tag.version[1])
    torch = {python: torch_answers(index, majors, python, "torch") for python, majors in tops.items()}
    vision = {
        python: torch_answers(index, tops[python], python, "torchvision", set(found)) for python, found in torch.items()
    }
    return Answers(tags, unsupported, torch, vision, digests, source)


def checked_plan(
    to: str | None,
    report: ReviewReport | None,
    requirements_of: dict[str, str | None],
    bases: Sequence[ManagedBase],
    session: RegistrySession,
    index: WheelIndex,
    unsupported: dict[str, str],
    facts: Facts,
    rules: Rules,
    source: str,
) -> MigrationPlan | None:
    """The plan for ``--to`` or ``--report``, checked against the registry (see tasks.update.plans)."""
    if to is not None:
        from tasks.update.plans import parse_version

        parse_version(to)
        # the target as the registry spells it (cudnn8 -> cudnn); the tag lists are asked for once
        targets = [
            t
            for b in bases
            if (t := target_for(b, to, session.tags(b.reference.registry, b.reference.repository))) is not None
        ]
        return from_target(to, bases, ask(session, index, bases, targets, unsupported, source), facts, rules)
    assert report is not None
    plan = from_report(report, requirements_of)
    if plan is None:
        return None
    from tasks.images.reference import parse_reference

    refs = [parse_reference(c.target) for c in plan.changes]
    targets = [ImageReference(r.registry, r.repository, r.tag) for r in refs]
    return check_report(plan, report, bases, ask(session, index, bases, targets, unsupported, source), facts, rules)
