"""What the deprecation watch finds about one running container, as pure functions of what it
saw (image config, start-up log, NVIDIA's list, the registry, the deployment ledger, the fleet's
driver): each finding has a kind, a severity and a message that says what to do.

Kinds: ``nvidia-eol`` (NVIDIA's unsupported list), ``newer-patch`` (a newer patch of the same minor
is in the registry: EOL by NVIDIA's rule, which it applies without rebuilding the image with the
flag), ``eol-flag`` (``NVIDIA_CUDA_END_OF_LIFE`` in the config), ``banner`` (the deprecation
notice at start-up), ``tag-deleted``, ``tag-repushed`` (the tag names other content than what
was deployed), ``deletion-date`` (NVIDIA's estimated deletion, with days left) and
``driver-branch-eol`` (the fleet's driver branch itself)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from tasks.research.drivers import Constraint, listed_branches, parse_require_cuda
from tasks.research.facts import Facts, driver_key
from tasks.research.support import add_months

DEPRECATING = frozenset({"nvidia-eol", "newer-patch", "eol-flag", "banner", "tag-deleted"})
CRITICAL_DAYS = 30  # deletion (or the driver branch's EOL) this close is critical
WARNING_DAYS = 90


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True)
class Finding:
    environment: str
    container: str
    image: str  # the reference the finding is about: the running one, or a base it was built from
    kind: str
    severity: Severity
    message: str
    cuda_version: str | None = None
    estimated_deletion: date | None = None
    days_left: int | None = None

    @property
    def key(self) -> str:
        """Identity across watch runs (what alert state is kept by)."""
        return f"{self.environment}/{self.container}/{self.image}/{self.kind}"

    @property
    def deprecated(self) -> bool:
        return self.kind in DEPRECATING

    def line(self) -> str:
        return f"[{self.severity.label}] {self.environment}/{self.container}: {self.image}: {self.message}"


@dataclass(frozen=True)
class ContainerReport:
    """One running container: what it runs and everything found about it."""

    environment: str
    container: str
    image: str
    image_id: str | None
    cuda_version: str | None
    config_eol: bool
    banner: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()  # the references checked against the registry
    findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def deprecated(self) -> bool:
        return any(f.deprecated for f in self.findings)

    @property
    def estimated_deletion(self) -> date | None:
        return next((f.estimated_deletion for f in self.findings if f.estimated_deletion), None)

    def days_to_deletion(self, today: date) -> int | None:
        deletion = self.estimated_deletion
        return (deletion - today).days if deletion else None


@dataclass(frozen=True)
class Where:
    environment: str
    container: str
    image: str

    def finding(self, kind: str, severity: Severity, message: str, **more: object) -> Finding:
        return Finding(self.environment, self.container, self.image, kind, severity, message, **more)  # type: ignore[arg-type]


def days_severity(days_left: int) -> Severity:
    if days_left <= CRITICAL_DAYS:
        return Severity.CRITICAL
    return Severity.WARNING if days_left <= WARNING_DAYS else Severity.INFO


def estimated_deletion(cuda_version: str, facts: Facts) -> date | None:
    """NVIDIA's estimated deletion date of a release's tags (its chart, else EOL + 6 months)."""
    entry = facts.eol.get(cuda_version)
    if entry is None:
        return None
    if entry.estimated_deletion:
        return entry.estimated_deletion
    return add_months(entry.marked_eol, facts.deletion_after_months) if entry.marked_eol else None


@dataclass(frozen=True)
class ReleaseSignals:
    """What says whether the running CUDA release is deprecated."""

    cuda_version: str | None
    unsupported: Mapping[str, str]  # NVIDIA's list: release -> reason
    unsupported_from: str  # where the list came from (live URL, or the bundled table)
    config_eol: bool
    banner: Sequence[str] = ()
    newer_patch: str | None = None  # the newest patch of the same minor in the registry, when newer


def release_findings(where: Where, signals: ReleaseSignals, facts: Facts, today: date) -> list[Finding]:
    """NVIDIA's list, the newer-patch rule, the EOL flag, the banner, and the deletion date."""
    cuda = signals.cuda_version
    found: list[Finding] = []
    if cuda and cuda in signals.unsupported:
        found.append(
            where.finding(
                "nvidia-eol",
                Severity.WARNING,
                f"NVIDIA lists CUDA {cuda} as unsupported ({signals.unsupported[cuda]}; {signals.unsupported_from})",
                cuda_version=cuda,
            )
        )
    if signals.newer_patch:
        found.append(
            where.finding(
                "newer-patch",
                Severity.WARNING,
                f"CUDA {cuda} is superseded by {signals.newer_patch} in the registry: end of life by NVIDIA's rule, "
                "even without NVIDIA_CUDA_END_OF_LIFE in the image",
                cuda_version=cuda,
            )
        )
    if signals.config_eol:
        found.append(
            where.finding(
                "eol-flag", Severity.WARNING, "the image config sets NVIDIA_CUDA_END_OF_LIFE", cuda_version=cuda
            )
        )
    if signals.banner:
        found.append(
            where.finding(
                "banner",
                Severity.WARNING,
                f"the start-up log shows NVIDIA's deprecation banner ({signals.banner[0]})",
                cuda_version=cuda,
            )
        )
    if found and cuda:
        deletion = estimated_deletion(cuda, facts)
        if deletion is not None:
            left = (deletion - today).days
            when = f"{-left} days ago" if left < 0 else f"in {left} days"
            found.append(
                where.finding(
                    "deletion-date",
                    days_severity(left),
                    f"NVIDIA's estimated deletion of CUDA {cuda} tags is {deletion} ({when}); "
                    "migrate and keep a copy (registries.retain_to)",
                    cuda_version=cuda,
                    estimated_deletion=deletion,
                    days_left=left,
                )
            )
    return found


def newest_patch(cuda_version: str, tag_versions: Sequence[tuple[int, int, int]]) -> str | None:
    """The newest patch of `cuda_version`'s minor among the registry's tags, when newer than it."""
    try:
        current = tuple(int(p) for p in cuda_version.split("."))
    except ValueError:
        return None
    if len(current) != 3:
        return None
    same_minor = [v for v in tag_versions if v[:2] == current[:2] and v > current]
    return ".".join(map(str, max(same_minor))) if same_minor else None


def driver_cuda(branch: int, facts: Facts) -> tuple[int, int] | None:
    """The newest CUDA minor a driver of `branch` supports natively (from the toolkit table)."""
    minors = [
        (int(v.split(".")[0]), int(v.split(".")[1]))
        for v, driver in facts.toolkit_min_driver.items()
        if driver_key(driver)[0] <= branch
    ]
    return max(minors) if minors else None


def _meets(c: Constraint, branch: int, cuda: tuple[int, int] | None) -> bool:
    if c.key == "brand":
        return True  # a GPU brand (tesla, ...) is the hosts' hardware, not their driver: assumed present
    if c.key == "cuda":
        if cuda is None:
            return False
        wanted = tuple(int(p) for p in c.value.split(".")[:2])
        have: tuple[int, ...] = cuda
    elif c.key == "driver":
        wanted, have = (driver_key(c.value)[0],), (branch,)
    else:
        return True  # arch: not a driver property
    return {
        ">=": have >= wanted,
        ">": have > wanted,
        "<=": have <= wanted,
        "<": have < wanted,
        "=": have == wanted,
        "==": have == wanted,
    }[c.op]


def admits(require: str | None, branch: int, facts: Facts) -> tuple[bool, str]:
    """Whether the container toolkit lets a driver of `branch` start an image with this
    ``NVIDIA_REQUIRE_CUDA`` (space = OR, comma = AND), and which clause admits it."""
    if not require:
        return True, "no NVIDIA_REQUIRE_CUDA"
    cuda = driver_cuda(branch, facts)
    try:
        groups = parse_require_cuda(require)
    except ValueError as exc:
        return False, f"unreadable NVIDIA_REQUIRE_CUDA: {exc}"
    for group in groups:
        if all(_meets(c, branch, cuda) for c in group):
            return True, ",".join(f"{c.key}{c.op}{c.value}" for c in group)
    shown = f"CUDA {cuda[0]}.{cuda[1]}" if cuda else "unknown CUDA"
    return False, f"R{branch} ({shown} driver) meets none of its clauses"


@dataclass(frozen=True)
class Repush:
    """The tag's content now against what was deployed."""

    reference: str
    recorded_digest: str
    recorded_from: str  # "the deployment ledger" | "the local image" | "the retained copy record"
    registry_digest: str
    old_env: Mapping[str, str] = field(default_factory=dict)
    new_env: Mapping[str, str] = field(default_factory=dict)


def _groups(require: str | None) -> list[list[Constraint]]:
    try:
        return parse_require_cuda(require) if require else []
    except ValueError:
        return []


def _cuda_floor(require: str | None) -> str | None:
    found = [c.value for group in _groups(require) for c in group if c.key == "cuda" and c.op in (">=", ">")]
    return found[0] if found else None


def _branches(require: str | None) -> set[int]:
    try:
        return set(listed_branches(require))
    except ValueError:
        return set()


def _plural(word: str, items: list[int]) -> str:
    return f"{word}{'es' if len(items) > 1 else ''} {', '.join(f'R{b}' for b in items)}"


def requirement_change(old: str | None, new: str | None) -> str:
    """What changed between two ``NVIDIA_REQUIRE_CUDA`` values, in the terms that decide who runs
    the image: the ``cuda>=`` floor and the driver branches listed for forward compatibility."""
    said = []
    old_floor, new_floor = _cuda_floor(old), _cuda_floor(new)
    if old_floor != new_floor:
        said.append(f"cuda>={old_floor} -> cuda>={new_floor}")
    before, after = _branches(old), _branches(new)
    if dropped := sorted(before - after):
        said.append(f"{_plural('driver branch', dropped)} dropped")
    if added := sorted(after - before):
        said.append(f"{_plural('driver branch', added)} added")
    if said:
        return "; ".join(said)
    old_set, new_set = set((old or "").split()), set((new or "").split())
    removed = [c for c in (old or "").split() if c not in new_set][:4]
    extra = [c for c in (new or "").split() if c not in old_set][:4]
    parts = ([f"removed {' '.join(removed)}"] if removed else []) + ([f"added {' '.join(extra)}"] if extra else [])
    return "; ".join(parts) or "clauses reordered"


def repush_finding(where: Where, repush: Repush, fleet_branch: int, facts: Facts) -> Finding:
    """What changed in ``NVIDIA_REQUIRE_CUDA`` (and CUDA_VERSION) and whether the fleet still runs it."""
    old_req, new_req = repush.old_env.get("NVIDIA_REQUIRE_CUDA"), repush.new_env.get("NVIDIA_REQUIRE_CUDA")
    parts = [
        f"the registry's {repush.reference} is {repush.registry_digest[:19]}, not {repush.recorded_digest[:19]} "
        f"as in {repush.recorded_from}: the tag was re-pushed"
    ]
    old_cuda, new_cuda = repush.old_env.get("CUDA_VERSION"), repush.new_env.get("CUDA_VERSION")
    if old_cuda != new_cuda:
        parts.append(f"CUDA_VERSION {old_cuda} -> {new_cuda}")
    if old_req != new_req:
        parts.append(f"NVIDIA_REQUIRE_CUDA changed: {requirement_change(old_req, new_req)}")
    elif repush.new_env:
        parts.append("NVIDIA_REQUIRE_CUDA unchanged")
    severity = Severity.WARNING
    if repush.new_env:
        before, _ = admits(old_req, fleet_branch, facts)
        now, why = admits(new_req, fleet_branch, facts)
        if now:
            parts.append(f"the fleet (R{fleet_branch}) still runs it ({why})")
        else:
            severity = Severity.CRITICAL
            was = "ran the deployed one" if before else "did not run the deployed one either"
            parts.append(f"the fleet (R{fleet_branch}) can NOT run it: {why} (it {was}); do not rebuild or pull it")
    else:
        parts.append("the new config could not be read")
    return where.finding("tag-repushed", severity, "; ".join(parts), cuda_version=new_cuda or old_cuda)


def deleted_finding(where: Where, reference: str, retained: str | None) -> Finding:
    keep = (
        f"the retained copy {retained} is what a rollback or rebuild uses"
        if retained
        else "a rebuild or a pull of it fails; set registries.retain_to to keep copies"
    )
    return where.finding("tag-deleted", Severity.CRITICAL, f"{reference} is gone from the registry: {keep}")


def driver_branch_finding(branch: int, facts: Facts, today: date) -> Finding | None:
    """The fleet's driver branch at or near its own end of life (NVIDIA's branch table in
    config/data/cuda-drivers.yaml; a branch below the newest listed one that is not listed is EOL
    by NVIDIA's rule); None when it is not."""
    entry = facts.branch(branch)
    if entry is None:
        return None
    where = Where("fleet", "-", f"R{branch}")
    cite = f"({entry.provenance})" if entry.provenance else "(config/data/cuda-drivers.yaml)"
    kind = f" ({entry.kind})" if entry.kind else ""
    if entry.eol is None:
        if not entry.end_of_life:
            return None
        return where.finding(
            "driver-branch-eol",
            Severity.CRITICAL,
            f"driver branch R{branch}{kind} is end of life: {entry.eol_text} {cite}; CUDA images for it stop "
            "being supported; move the GPU hosts and fleet.min_driver to a supported branch",
        )
    left = (entry.eol - today).days
    if left > WARNING_DAYS:
        return None
    when = f"ended {entry.eol} ({-left} days ago)" if left < 0 else f"ends {entry.eol} (in {left} days)"
    return where.finding(
        "driver-branch-eol",
        days_severity(left),
        f"driver branch R{branch}{kind} {when} {cite}; plan the driver upgrade of the GPU hosts",
        days_left=left,
    )
