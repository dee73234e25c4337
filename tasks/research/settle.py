"""After every image is planned (pure, on the typed reviews): one plan per requirements file, and
advisories turned into pin bumps.

- Images that share a requirements file get one stack chosen for all of them (each image's index
  answers intersected); what any of them changes, the file changes for all, and each plan says
  so. Different CUDA majors in one file are a conflict naming the images, which blocks their plans.
- An advisory on a pinned package whose fix the chosen stack reaches becomes a pin bump (the
  advisory ids in the reason) and makes the plan due; one without a compatible fix is reported
  and does not make the review recommend anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.version import InvalidVersion, Version

from tasks.research.facts import Facts
from tasks.research.osv import Advisory
from tasks.research.planner import ImagePlan, TorchChoice
from tasks.research.review import ImageReview
from tasks.research.stack import Choice, Stack, choose_stack
from tasks.update.requirements import CurrentPins


def component_of(package: str) -> str | None:
    """The stack component an advisory's package is (None: not one the planner chooses)."""
    if package in ("torch", "torchvision", "onnxruntime-gpu"):
        return package
    return "cupy" if package.startswith("cupy-cuda") else None


def _version(text: str | None) -> Version | None:
    try:
        return Version(Version(text).public) if text else None
    except InvalidVersion:
        return None


def _chosen_version(choice: Choice) -> Version | None:
    if choice.chosen is None:
        return None
    return _version(choice.chosen.rpartition("==")[2])


def advisory_effects(found: Sequence[Advisory], stack: Stack) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """(component -> advisory ids the stack fixes, reasons for those, reasons for the unfixed)."""
    fixed: dict[str, list[str]] = {}
    done: list[str] = []
    open_: list[str] = []
    for advisory in found:
        name, version, ident = advisory.package, advisory.version, advisory.id
        current = _version(version)
        fixes = sorted(v for v in (_version(f) for f in advisory.fixed) if v and current and v > current)
        component = component_of(name)
        label = f"advisory {ident} on {name} {version}"
        if not fixes:
            open_.append(f"{label}: no fixed version is published; reported, not planned")
            continue
        if component is None:
            open_.append(
                f"{label}: fixed in {fixes[0]}, but baseimage has no compatibility facts for {name}: "
                "not bumped; reported"
            )
            continue
        choice = stack.get(component)
        chosen = _chosen_version(choice) if choice else None
        if choice is not None and chosen is not None and chosen >= fixes[0]:
            fixed.setdefault(component, []).append(ident)
            done.append(f"{label} is fixed in {fixes[0]}: the plan pins {choice.chosen} ({choice.reason})")
        else:
            why = choice.reason if choice else f"{name} is not a choice of this stack"
            open_.append(
                f"{label}: fixed in {fixes[0]}, but no release compatible with the chosen stack has it "
                f"({why}); reported"
            )
    return fixed, done, open_


def _chosen_pins(plan: ImagePlan, stack: Stack) -> None:
    """The plan's torch, CuPy and ONNX Runtime fields (what the matrix and older readers show) from
    the stack chosen for its requirements file."""
    torch, cupy, ort, index = stack.get("torch"), stack.get("cupy"), stack.get("onnxruntime-gpu"), stack.get("index")
    if torch and torch.chosen and index and index.chosen:
        tv = stack.get("torchvision")
        assert plan.request is not None  # only plans with a stack request are settled
        major, minor = plan.request.cuda.split(".")[:2]
        plan.torch = TorchChoice(
            index.chosen,
            str(_version(torch.chosen)),
            str(_version(tv.chosen)) if tv and tv.chosen else plan.torch.torchvision if plan.torch else None,
            exact=index.chosen == f"cu{major}{minor}",
        )
    if cupy and cupy.chosen:
        plan.cupy_package, _, plan.cupy_version = cupy.chosen.partition("==")
    if ort and ort.chosen:
        plan.onnxruntime_gpu = ort.chosen


def settle_requirements(
    images: Sequence[ImageReview],
    advisories: Mapping[str, Sequence[Advisory]],
    requirements_of: Mapping[str, str | None],
    facts: Facts,
) -> list[str]:
    """Make every requirements file's plan consistent and apply its advisories (in place on the
    reviews' plans); returns the conflicts found."""
    groups: dict[str, list[tuple[ImageReview, ImagePlan]]] = {}
    for image in images:
        path = requirements_of.get(image.image)
        plan = image.plan
        if path:
            image.advisories = list(advisories.get(path, []))
        if path and plan and plan.pins is not None and plan.request:
            groups.setdefault(path, []).append((image, plan))
        elif plan and path and image.advisories:
            plan.reasons.extend(
                f"advisory {a.id} on {a.package} {a.version}: reported; this image's stack is not chosen here"
                for a in image.advisories
            )
    conflicts: list[str] = []
    for path, members in groups.items():
        first = members[0][1]
        pins = first.pins or CurrentPins()
        allow = frozenset(first.allow_missing)
        requests = [plan.request for _image, plan in members if plan.request is not None]
        own = [choose_stack([r], pins, facts, allow) for r in requests]
        stack = choose_stack(requests, pins, facts, allow)
        wanted: set[str] = set()
        for (_image, plan), mine in zip(members, own, strict=True):
            if plan.moves_base:
                wanted |= mine.changed
        fixed, done, unfixed = advisory_effects(advisories.get(path, []), stack)
        wanted |= set(fixed)
        names = [image.image for image, _plan in members]
        label = first.requirements or path
        conflict = f"{label}: {stack.conflicts[0]}" if stack.conflicts else None
        if conflict:
            conflicts.append(conflict)
        for (image, plan), mine in zip(members, own, strict=True):
            plan.blocking = [b for b in plan.blocking if b not in mine.blocking]
            if conflict:
                plan.blocking.append(conflict)
                plan.changes = {}
            else:
                plan.changes = stack.changes(wanted).to_json() if wanted else {}
                plan.choices = list(stack.choices)
                if wanted:
                    plan.blocking.extend(b for b in stack.blocking if b not in plan.blocking)
                    _chosen_pins(plan, stack)
                    plan.reasons = [r for r in plan.reasons if r not in {c.reason for c in mine.choices}]
                    plan.reasons.extend(c.reason for c in stack.choices if c.notable)
                others = [n for n in names if n != image.image]
                if others and plan.changes:
                    plan.reasons.append(
                        f"{label} is shared with {', '.join(others)}: its pins follow one plan that fits every "
                        "image using it"
                    )
            if fixed and not conflict:
                plan.due = True
            plan.reasons.extend(done + unfixed)
    for image in images:
        image.settle()
    return conflicts
