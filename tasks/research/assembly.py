"""The quarterly review as the run assembles it, typed from the research to the file.

`assemble` takes every image's `ImageReview` (its plan still an `ImagePlan`) and the review-wide
answers, settles what images share (one plan per requirements file, advisories as pin bumps:
tasks/research/settle.py), and returns a `Review`; `review_consumers` adds what the exported
model's consumers need. Nothing here reads or writes a dict of the report: `Review.to_json` is
the one place the report's documented shape (``schema`` `REPORT_SCHEMA`) is written, and
`ReviewReport.from_json` (tasks/research/report_model.py) the one place it is read back."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from packaging.version import InvalidVersion, Version

from tasks.research.consumers import ConsumerRuntime, plan_consumers
from tasks.research.drivers import branch_finding
from tasks.research.facts import Facts, load_facts
from tasks.research.osv import Advisory
from tasks.research.planner import ImagePlan
from tasks.research.report_model import REPORT_SCHEMA
from tasks.research.review import ImageReview
from tasks.research.settle import settle_requirements
from tasks.statuses import ConsumerAction

__all__ = ["Review", "assemble", "planned_torch", "review_consumers"]


@dataclass
class Review:
    """The review report. Its own findings and the settled images decide `recommended` (exit 10)
    and `complete` (exit 3); the rest is filled in as the run writes and places it."""

    date: str
    sources: str
    fleet_min_driver: int
    images: list[ImageReview]  # urgent ones first
    findings: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    advisories: list[Advisory] = field(default_factory=list)  # every advisory found, once
    distinct_bases: int | None = None
    files: dict[str, str] | None = None  # markdown, json and csv paths, once written
    warnings: list[str] | None = None  # what could not be placed in the policy document
    policy_doc_updated: bool | None = None
    snapshot: str | None = None  # the recorded snapshot (--record)
    outcome: str | None = None  # the run's one-line outcome

    @property
    def recommended(self) -> bool:
        return any(image.recommended for image in self.images)

    @property
    def complete(self) -> bool:
        return not any(image.errors for image in self.images)

    @property
    def matrix(self) -> list[dict[str, Any]]:
        """One row per CUDA release on each image's track (the compatibility matrix)."""
        return [{"image": i.image, **row} for i in self.images for row in (i.plan.matrix if i.plan else [])]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "date": self.date,
            "sources": self.sources,
            "fleet_min_driver": self.fleet_min_driver,
            "findings": list(self.findings),
            "conflicts": list(self.conflicts),
            "images": [image.to_json() for image in self.images],
            "advisories": [dataclasses.asdict(a) for a in self.advisories],
            "recommended": self.recommended,
            "complete": self.complete,
            "matrix": self.matrix,
        }
        optional = {
            "distinct_bases": self.distinct_bases,
            "files": self.files,
            "warnings": self.warnings,
            "policy_doc_updated": self.policy_doc_updated,
            "snapshot": self.snapshot,
            "outcome": self.outcome,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data


def assemble(
    images: Sequence[ImageReview],
    advisories: Mapping[str, Sequence[Advisory]],
    requirements_of: Mapping[str, str | None],
    sources: str,
    fleet_min_driver: int,
    day: str,
    facts: Facts | None = None,
) -> Review:
    """The review report. Images that share a requirements file get one plan for it (or a
    conflict naming them); an advisory the chosen stack fixes becomes a pin bump; the fleet's
    driver branch lifecycle is a finding."""
    facts = facts or load_facts()
    conflicts = settle_requirements(images, advisories, requirements_of, facts)
    findings = []
    branch = branch_finding(fleet_min_driver, facts, date.fromisoformat(day))
    if branch:
        findings.append(branch)
    findings += [f"{i.image}: {i.reasons[0]}" for i in images if i.urgent and i.reasons]
    findings += [
        f"{i.image}: a change is due but blocked: {'; '.join(i.plan.blocking)}"
        for i in images
        if i.plan and i.plan.due and i.plan.blocking
    ]
    every = {(a.id, a.package, a.version): a for found in advisories.values() for a in found}
    return Review(
        day,
        sources,
        fleet_min_driver,
        sorted(images, key=lambda i: not i.urgent),
        findings,
        conflicts,
        list(every.values()),
    )


def planned_torch(plan: ImagePlan) -> str | None:
    """The torch an image runs after its review plan: the change (in its requirements file, else
    in its Dockerfile's pip lines), else what either pins today, else the planner's choice."""
    torch = plan.changes.get("torch") or plan.dockerfile_changes.get("torch")
    if not torch:
        torch = plan.pins.version("torch") if plan.pins else None
    if not torch:
        torch = plan.dockerfile_pins.version("torch") if plan.dockerfile_pins else None
    if not torch and plan.torch:
        torch = plan.torch.torch
    try:
        return Version(str(torch)).public if torch else None
    except InvalidVersion:
        return None


def review_consumers(
    review: Review, consumers: Sequence[ConsumerRuntime], facts: Facts, *, bump: bool = False
) -> Review:
    """Each plan's ``consumers`` decision (in place): a blocking one makes the plan blocked (no
    longer recommended), and is a finding; the review's ``recommended`` follows."""
    if not consumers:
        return review
    for image in review.images:
        plan = image.plan
        if not plan or not (plan.target or plan.changes or plan.dockerfile_changes):
            continue
        decided = plan_consumers(planned_torch(plan), consumers, facts, bump=bump)
        plan.consumers = decided
        if decided.blocking:
            plan.blocking.extend(decided.blocking)
            plan.settle()
            review.findings.append(f"{image.image}: the consumers block the plan: {'; '.join(decided.blocking)}")
        image.notes.extend(d.reason for d in decided.decisions if d.action != ConsumerAction.OK)
    return review
