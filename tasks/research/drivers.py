"""Driver compatibility: ``NVIDIA_REQUIRE_CUDA`` (space = OR, comma = AND) and whether the fleet's
minimum driver runs a CUDA release natively or through minor-version compatibility; and the end
of life of the fleet's own driver branch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tasks.research.facts import Facts, driver_key

_CONSTRAINT = re.compile(r"^(cuda|driver|brand|arch)(>=|<=|==|>|<|=)(.+)$")


@dataclass(frozen=True)
class Constraint:
    key: str
    op: str
    value: str


def parse_require_cuda(value: str) -> list[list[Constraint]]:
    """Alternatives (ORed) of constraint groups (ANDed), as the container toolkit reads them."""
    alternatives = []
    for group in value.split():
        constraints = []
        for part in group.split(","):
            match = _CONSTRAINT.match(part.strip())
            if match is None:
                raise ValueError(f"NVIDIA_REQUIRE_CUDA constraint {part!r} is not KEY OP VALUE")
            constraints.append(Constraint(match[1], match[2], match[3]))
        alternatives.append(constraints)
    return alternatives


def listed_branches(value: str | None) -> list[int]:
    """Driver branches the image declares usable through cuda-compat (``brand=...,driver>=N``)."""
    if not value:
        return []
    branches = set()
    for group in parse_require_cuda(value):
        for c in group:
            if c.key == "driver" and c.op == ">=":
                branches.add(driver_key(c.value)[0])
    return sorted(branches)


@dataclass(frozen=True)
class DriverCheck:
    ok: bool
    how: str  # native | minor-version compatibility | forward compatibility only | unknown
    min_driver: str | None
    reason: str


def fleet_check(cuda_version: str, fleet_min_driver: int, facts: Facts, require_cuda: str | None = None) -> DriverCheck:
    """Can every host with at least driver branch `fleet_min_driver` run `cuda_version`?"""
    major = int(cuda_version.split(".")[0])
    needed = facts.toolkit_min_driver.get(cuda_version)
    if needed and fleet_min_driver >= driver_key(needed)[0]:
        return DriverCheck(True, "native", needed, f"R{fleet_min_driver} >= {needed}, the toolkit's driver")
    floor = facts.mvc_floor.get(major)
    if floor and fleet_min_driver >= driver_key(floor)[0]:
        return DriverCheck(
            True,
            "minor-version compatibility",
            needed,
            f"R{fleet_min_driver} >= {floor}, the CUDA {major}.x minor-version-compatibility "
            f"floor (toolkit driver {needed or 'unknown'}; new-minor features may need it)",
        )
    branches = listed_branches(require_cuda)
    if fleet_min_driver in branches:
        return DriverCheck(
            False,
            "forward compatibility only",
            needed,
            f"R{fleet_min_driver} is below the CUDA {major}.x floor {floor}; the image lists it "
            "for cuda-compat forward compatibility, which needs datacenter GPUs",
        )
    if floor is None and needed is None:
        return DriverCheck(False, "unknown", None, f"no driver data for CUDA {cuda_version}")
    return DriverCheck(
        False,
        "none",
        needed,
        f"R{fleet_min_driver} is below {floor or needed}, the minimum for CUDA {cuda_version}",
    )


def branch_finding(fleet_min_driver: int, facts: Facts, today: date) -> str | None:
    """The fleet's driver branch lifecycle as a finding (None: no lifecycle facts for it)."""
    branch = facts.branch(fleet_min_driver)
    if branch is None:
        return None
    name = f"R{branch.branch}{' ' + branch.kind if branch.kind else ''}"
    source = f" (source: {branch.provenance})" if branch.provenance else ""
    supported = sorted(
        (
            b
            for b in facts.driver_branches.values()
            if b.kind == "LTSB" and b.eol and b.branch > branch.branch and not b.ended_by(today)
        ),
        key=lambda b: b.branch,
    )
    advice = (
        f"; move the fleet to a supported branch (R{supported[0].branch} LTSB, end of life {supported[0].eol_text}) "
        "and raise fleet.min_driver"
        if supported
        else ""
    )
    if branch.ended_by(today):
        when = f"on {branch.eol.isoformat()} ({branch.eol_text})" if branch.eol else f"({branch.eol_text})"
        return f"the fleet's driver branch {name} reached end of life {when}{advice}{source}"
    assert branch.eol is not None
    days = (branch.eol - today).days
    return (
        f"the fleet's driver branch {name} reaches end of life on {branch.eol.isoformat()} "
        f"({branch.eol_text}, in {days} days){advice}{source}"
    )
