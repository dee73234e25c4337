"""After every image is planned (pure, on the review's JSON): one plan per requirements file, and
advisories turned into pin bumps.

- Images that share a requirements file get one stack chosen for all of them (each image's index
  answers intersected); what any of them changes, the file changes for all, and each plan says
  so. Different CUDA majors in one file are a conflict naming the images, which blocks their plans.
- An advisory on a pinned package whose fix the chosen stack reaches becomes a pin bump (the
  advisory ids in the reason) and makes the plan due; one without a compatible fix is reported
  and does not make the review recommend anything.
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from tasks.research.facts import Facts
from tasks.research.stack import Choice, Stack, StackRequest, choose_stack
from tasks.update.requirements import CurrentPins

BANNER = "start-up logs show NVIDIA's deprecation banner"


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


def advisory_effects(found: list[dict[str, Any]], stack: Stack) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """(component -> advisory ids the stack fixes, reasons for those, reasons for the unfixed)."""
    fixed: dict[str, list[str]] = {}
    done: list[str] = []
    open_: list[str] = []
    for advisory in found:
        name, version, ident = str(advisory["package"]), str(advisory["version"]), str(advisory["id"])
        current = _version(version)
        fixes = sorted(v for v in (_version(f) for f in advisory.get("fixed") or []) if v and current and v > current)
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


def refresh(image: dict[str, Any]) -> None:
    """The image row's fields from its plan (recommended, action, target, reasons)."""
    plan = image.get("plan")
    if not plan:
        return
    moves = bool(plan.get("target") and plan["target"] != plan["current"])
    pins = bool(plan.get("changes")) or bool(plan.get("dockerfile_changes"))
    banner = bool(image.get("deprecation_banner"))
    plan["recommended"] = (moves or pins) and (bool(plan.get("due")) or banner) and not plan.get("blocking")
    plan["action"] = "migrate" if moves else "update-pins" if pins else "none"
    image["recommended"], image["action"], image["target"] = plan["recommended"], plan["action"], plan["target"]
    image["reasons"] = (
        ([BANNER] if banner else []) + list(plan["reasons"]) + [f"blocked: {b}" for b in plan.get("blocking") or []]
    )


def _legacy_fields(plan: dict[str, Any], stack: Stack, index_base: str | None) -> None:
    torch, cupy, ort, index = stack.get("torch"), stack.get("cupy"), stack.get("onnxruntime-gpu"), stack.get("index")
    if torch and torch.chosen and index and index.chosen:
        public = str(_version(torch.chosen))
        tv = stack.get("torchvision")
        major, minor = plan["request"]["cuda"].split(".")[:2]
        plan["torch"] = {
            "variant": index.chosen,
            "torch": public,
            "torchvision": str(_version(tv.chosen))
            if tv and tv.chosen
            else (plan.get("torch") or {}).get("torchvision"),
            "exact": index.chosen == f"cu{major}{minor}",
        }
        if index_base and plan.get("index_url"):
            plan["index_url"] = f"{index_base}/{index.chosen}"
    if cupy and cupy.chosen:
        plan["cupy_package"], _, plan["cupy_version"] = cupy.chosen.partition("==")
    if ort and ort.chosen:
        plan["onnxruntime_gpu"] = ort.chosen


def settle_requirements(
    images: list[dict[str, Any]],
    advisories: dict[str, list[dict[str, Any]]],
    requirements_of: dict[str, str | None],
    facts: Facts,
) -> list[str]:
    """Make every requirements file's plan consistent and apply its advisories (in place on the
    image rows); returns the conflicts found."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for image in images:
        path = requirements_of.get(image["image"])
        plan = image.get("plan")
        if path:
            image["advisories"] = advisories.get(path, [])
        if path and plan and plan.get("pins") is not None and plan.get("request"):
            groups.setdefault(path, []).append(image)
        elif plan and path and image["advisories"]:
            plan["reasons"].extend(
                f"advisory {a['id']} on {a['package']} {a['version']}: reported; this image's stack is not chosen here"
                for a in image["advisories"]
            )
    conflicts: list[str] = []
    for path, members in groups.items():
        pins = CurrentPins.from_json(members[0]["plan"]["pins"])
        allow = frozenset(members[0]["plan"].get("allow_missing") or [])
        requests = [StackRequest.from_json(m["plan"]["request"]) for m in members]
        own = [choose_stack([r], pins, facts, allow) for r in requests]
        stack = choose_stack(requests, pins, facts, allow)
        wanted: set[str] = set()
        for member, mine in zip(members, own, strict=True):
            plan = member["plan"]
            if plan.get("target") and plan["target"] != plan["current"]:
                wanted |= mine.changed
        fixed, done, unfixed = advisory_effects(advisories.get(path, []), stack)
        wanted |= set(fixed)
        names = [m["image"] for m in members]
        label = members[0]["plan"].get("requirements") or path
        if stack.conflicts:
            conflict = f"{label}: {stack.conflicts[0]}"
            conflicts.append(conflict)
        for member, mine in zip(members, own, strict=True):
            plan = member["plan"]
            plan["blocking"] = [b for b in plan.get("blocking") or [] if b not in mine.blocking]
            if stack.conflicts:
                plan["blocking"].append(conflict)
                plan["changes"] = {}
            else:
                plan["changes"] = stack.changes(wanted).to_json() if wanted else {}
                plan["choices"] = [c.to_json() for c in stack.choices]
                if wanted:
                    plan["blocking"].extend(b for b in stack.blocking if b not in plan["blocking"])
                    _legacy_fields(plan, stack, None)
                    plan["reasons"] = [r for r in plan["reasons"] if r not in {c.reason for c in mine.choices}]
                    plan["reasons"].extend(c.reason for c in stack.choices if c.notable)
                others = [n for n in names if n != member["image"]]
                if others and plan["changes"]:
                    plan["reasons"].append(
                        f"{label} is shared with {', '.join(others)}: its pins follow one plan that fits every "
                        "image using it"
                    )
            if fixed and not stack.conflicts:
                plan["due"] = True
            plan["reasons"].extend(done + unfixed)
    for image in images:
        refresh(image)
    return conflicts
