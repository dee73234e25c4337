"""The migration planner (pure): for a managed image, every release on its track with its support
status, driver fit, wheels and libraries (the compatibility matrix rows), and one joint choice of
base target and Python stack, each part with its reason.

Base target (CUDA images), in this order:
1. Fleet first: a current image the fleet cannot run is the most urgent finding; it moves to the
   newest release on its track the fleet runs, across a CUDA major when needed.
2. Otherwise the newest supported release on the same track (extra family, flavor, OS) that the
   fleet runs, with torch wheels when the image pins torch, within ``pin_minor``; a CUDA major
   change only with ``policy.allow_major_upgrade`` or when every release of the current major is
   unsupported (NVIDIA supports two majors at a time). When the policy keeps the major, the plan
   says what the next major would bring.
3. A digest-pinned base stays pinned: the target gets the registry's digest of the new tag.
NGC images: the newest release on the track whose CUDA the fleet runs (tasks/research/ngc_plan.py).
The stack (torch, torchvision, index, CuPy, onnxruntime-gpu) is `tasks.research.stack`'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from tasks.images.reference import ImageReference
from tasks.images.tags import CudaTag
from tasks.research.consumers import ConsumerPlan
from tasks.research.drivers import DriverCheck, fleet_check
from tasks.research.facts import Facts
from tasks.research.sources.pytorch_index import variant_for
from tasks.research.stack import Choice, Stack, StackRequest, choose_stack, variant_minor
from tasks.research.support import SupportState, support_state
from tasks.statuses import PlanAction, SupportStatus
from tasks.update.requirements import CurrentPins

# variant (cu126) -> versions with a wheel for the image's Python (what the index answered)
Answers = Mapping[str, list[str]]


@dataclass(frozen=True)
class TorchChoice:
    variant: str
    torch: str
    torchvision: str | None
    exact: bool  # False: a lower variant of the same major than the release's own minor


def newest_torch(minor: tuple[int, int], answers: Answers, facts: Facts) -> TorchChoice | None:
    """The newest torch on any variant of `minor`'s major up to `minor` (wheels bring their own
    CUDA runtime); the highest such variant that carries it."""
    found: list[tuple[Version, int]] = []
    for variant, versions in answers.items():
        m = variant_minor(variant, minor[0])
        if m is None or m > minor[1]:
            continue
        for text in versions:
            try:
                found.append((Version(Version(text).public), m))
            except InvalidVersion:
                continue
    if not found:
        return None
    best = max(v for v, _ in found)
    m = max(x for v, x in found if v == best)
    return TorchChoice(f"cu{minor[0]}{m}", str(best), facts.torchvision_for(str(best)), exact=m == minor[1])


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
    kind: Literal["cuda", "ngc"]
    current: str
    status: SupportStatus  # the current base's (an NGC tag: supported or deleted)
    target: str | None = None
    recommended: bool = False  # the plan changes something, for a reason that makes it due, and nothing blocks it
    reasons: list[str] = field(default_factory=list)
    torch: TorchChoice | None = None
    index_url: str | None = None
    cupy_package: str | None = None
    cupy_version: str | None = None
    onnxruntime_gpu: str | None = None
    matrix: list[dict[str, Any]] = field(default_factory=list)
    urgent: bool = False  # the fleet cannot run the current image
    due: bool = False  # something makes a change due (EOL, deleted, urgent, an advisory the plan fixes)
    blocking: list[str] = field(default_factory=list)
    requirements: str | None = None
    pins: CurrentPins | None = None  # the requirements file's pins
    request: StackRequest | None = None  # the stack request for the final base
    choices: list[Choice] = field(default_factory=list)  # the stack's choices with reasons
    changes: dict[str, str] = field(default_factory=dict)  # what the requirements file changes
    dockerfile_pins: CurrentPins | None = None  # RUN pip install pins in the Dockerfile
    dockerfile_choices: list[Choice] = field(default_factory=list)
    dockerfile_changes: dict[str, str] = field(default_factory=dict)  # decided here; the Dockerfile edit is separate
    allow_missing: list[str] = field(default_factory=list)
    consumers: ConsumerPlan | None = None  # the exported model's consumers, decided once every plan is settled

    @property
    def moves_base(self) -> bool:
        return bool(self.target and self.target != self.current)

    @property
    def action(self) -> PlanAction:
        if self.moves_base:
            return PlanAction.MIGRATE
        return PlanAction.UPDATE_PINS if self.changes or self.dockerfile_changes else PlanAction.NONE

    def settle(self) -> None:
        """Recompute `recommended` from what the plan changes, why and what blocks it."""
        changes = self.moves_base or bool(self.changes) or bool(self.dockerfile_changes)
        self.recommended = changes and self.due and not self.blocking

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["consumers"]
        data["status"], data["action"] = str(self.status), str(self.action)
        if self.consumers is not None:
            data["consumers"] = self.consumers.to_json()
        return data


def _answers_for(answers: Answers, minor: tuple[int, int]) -> dict[str, list[str]]:
    return {
        variant: list(versions)
        for variant, versions in answers.items()
        if (m := variant_minor(variant, minor[0])) is not None and m <= minor[1] and versions
    }


def cudnn_major(tag: CudaTag, env: Mapping[str, str] | None, facts: Facts) -> int | None:
    """The cuDNN major of a CUDA image: its config's NV_CUDNN_VERSION, else the tag's extra."""
    if tag.extra is None or not tag.extra.startswith("cudnn"):
        return None
    version = (env or {}).get("NV_CUDNN_VERSION", "")
    if version[:1].isdigit():
        return int(version.split(".")[0])
    return facts.cudnn_of_extra.get(tag.extra)


def candidates(
    current: CudaTag,
    tags: list[str],
    facts: Facts,
    fleet_min_driver: int,
    unsupported: Mapping[str, str],
    torch_answers: Answers,
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
    newest_major = max((t.version[0] for t in parsed), default=None)
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
            newest_major=newest_major,
        )
        package, cupy = facts.cupy_for(tag.minor)
        ubuntu = facts.ubuntu.get(tag.os_version) if tag.os == "ubuntu" else None
        out.append(
            Candidate(
                tag,
                state,
                fleet_check(tag.version_str, fleet_min_driver, facts, current_require if is_current else None),
                newest_torch(tag.minor, torch_answers, facts),
                package,
                cupy,
                facts.ort_for(tag.version[0]),
                ubuntu.end_of_standard_support if ubuntu else None,
            )
        )
    return out


@dataclass(frozen=True)
class StackInputs:
    """What the stack choice needs besides the base: the pinned files and the index's answers."""

    python: str = "3.11"
    pins: CurrentPins | None = None  # the requirements file (None: the image has none)
    requirements: str | None = None
    dockerfile_pins: CurrentPins | None = None  # RUN pip install pins
    torch: Answers = field(default_factory=dict)
    torchvision: Answers | None = None
    allow_missing: frozenset[str] = frozenset()

    def request(self, image: str, cuda: str, cudnn: int | None, manages_torch: bool = True) -> StackRequest:
        minor = (int(cuda.split(".")[0]), int(cuda.split(".")[1]))
        return StackRequest(
            image,
            cuda,
            self.python,
            cudnn,
            _answers_for(self.torch, minor),
            _answers_for(self.torchvision, minor) if self.torchvision is not None else None,
            manages_torch,
        )


def apply_stack(plan: ImagePlan, inputs: StackInputs, request: StackRequest, facts: Facts) -> Stack:
    """The stack for `request` on `plan`: choices, changes (when the base moves), blocking reasons."""
    plan.requirements = inputs.requirements
    plan.request = request
    plan.allow_missing = sorted(inputs.allow_missing)
    stack = Stack()
    if inputs.pins is not None:
        plan.pins = inputs.pins
        stack = choose_stack([request], inputs.pins, facts, inputs.allow_missing)
        plan.choices = list(stack.choices)
        if plan.moves_base:
            plan.changes = stack.changes().to_json()
            plan.blocking.extend(stack.blocking)
            plan.reasons.extend(c.reason for c in stack.choices if c.notable)
    if inputs.dockerfile_pins is not None and (inputs.dockerfile_pins.pins or inputs.dockerfile_pins.ranges):
        plan.dockerfile_pins = inputs.dockerfile_pins
        run = choose_stack([request], inputs.dockerfile_pins, facts, inputs.allow_missing)
        plan.dockerfile_choices = list(run.choices)
        if plan.moves_base:
            plan.dockerfile_changes = run.changes().to_json()
            plan.blocking.extend(f"{plan.dockerfile} RUN pip install: {b}" for b in run.blocking)
            plan.reasons.extend(f"{plan.dockerfile} RUN pip install: {c.reason}" for c in run.choices if c.notable)
    torch, cupy, ort = stack.get("torch"), stack.get("cupy"), stack.get("onnxruntime-gpu")
    if torch is not None and torch.chosen:
        version = Version(torch.chosen).public
        index = stack.get("index")
        variant = (index.chosen if index and index.chosen else None) or torch.chosen.partition("+")[2] or None
        if variant:
            plan.torch = TorchChoice(
                variant, version, facts.torchvision_for(version), variant == variant_for(request.minor)
            )
    if cupy is not None and cupy.chosen:
        plan.cupy_package, _, plan.cupy_version = cupy.chosen.partition("==")
    if ort is not None and ort.chosen:
        plan.onnxruntime_gpu = ort.chosen
    return stack


def _why_not(c: Candidate, pin_minor: str | None, wants_torch: bool) -> str:
    if not c.support.supported and not c.driver.ok:  # both: the fleet's is the one to act on
        return f"fleet drivers: {c.driver.reason}; and not supported by NVIDIA"
    if not c.support.supported:
        return "not supported by NVIDIA"
    if not c.driver.ok:
        return f"fleet drivers: {c.driver.reason}"
    if wants_torch and c.torch is None:
        return "no torch wheels"
    if pin_minor:
        return f"pinned to CUDA {pin_minor}"
    return f"CUDA major {c.tag.version[0]} needs policy.allow_major_upgrade"


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
    inputs: StackInputs | None = None,
    current_env: Mapping[str, str] | None = None,
) -> ImagePlan:
    """Pick the target among `rows` and the stack for it; say why for each choice and for every
    rejection that matters."""
    inputs = inputs or StackInputs()
    ref_repo = current_ref.split("@", 1)[0].rsplit(":", 1)[0]
    now = next(c for c in rows if c.tag.version == current.version)
    plan = ImagePlan(image, dockerfile, "cuda", current_ref, now.support.status, matrix=[c.row() for c in rows])
    wants_torch = inputs.pins is None or inputs.pins.wants("torch")
    if not now.driver.ok:
        plan.urgent = True
        plan.reasons.append(
            f"URGENT: the fleet cannot run the current image {current}: {now.driver.reason}; "
            "moving to the newest release the fleet runs"
        )
    plan.reasons.extend(now.support.reasons)
    plan.due = plan.urgent or not now.support.supported

    def eligible(c: Candidate, majors: set[int] | None = None) -> bool:
        return (
            c.support.supported
            and c.driver.ok
            and (c.torch is not None or not wants_torch)
            and (majors is None or c.tag.version[0] in majors)
            and (pin_minor is None or f"{c.tag.minor[0]}.{c.tag.minor[1]}" == pin_minor or plan.urgent)
        )

    major = current.version[0]
    same_major = [c for c in rows if eligible(c, {major})]
    everywhere = [c for c in rows if eligible(c)]
    pool = same_major
    if plan.urgent and not same_major and everywhere:
        pool = everywhere
        best_other = max(pool, key=lambda c: c.tag.version)
        plan.reasons.append(
            f"the fleet runs no CUDA {major}.x release on this track: crossing to CUDA {best_other.tag.version[0]}"
        )
    elif allow_major:
        pool = everywhere
    elif not same_major and everywhere and not any(c.support.supported for c in rows if c.tag.version[0] == major):
        pool = everywhere
        plan.reasons.append(f"every CUDA {major}.x release on this track is unsupported: crossing the major")
    rejected_newer = [c for c in rows if c.tag.version > current.version and c not in pool]
    for c in rejected_newer[-3:]:
        plan.reasons.append(f"{c.tag.version_str} not chosen: {_why_not(c, pin_minor, wants_torch)}")
    if not allow_major and pool and all(c.tag.version[0] == major for c in pool):
        _next_major_note(plan, rows, major, wants_torch)
    best = max(pool, key=lambda c: c.tag.version) if pool else None
    if best is None:
        plan.reasons.append("no eligible release on this track")
    elif best.tag.version == current.version:
        plan.reasons.append(f"{current.version_str} is the newest eligible release on its track")
    elif best.tag.version < current.version and not plan.urgent:
        plan.reasons.append(f"{current.version_str} is newer than every eligible release: it stays")
        best = None
    else:
        plan.target = f"{ref_repo}:{best.tag}"
        how = best.driver.how
        plan.reasons.append(
            f"target {best.tag.version_str}: the newest release on the track that the fleet runs ({how})"
            if plan.urgent
            else f"target {best.tag.version_str}: newest supported release on the track that the fleet runs ({how})"
        )
        _cudnn_note(plan, current, best.tag, current_env, facts)
    base = best.tag if best is not None and plan.moves_base else current
    chosen_row = best if best is not None and plan.moves_base else now
    cudnn = cudnn_major(base, current_env if base == current else None, facts)
    request = inputs.request(image, base.version_str, cudnn)
    apply_stack(plan, inputs, request, facts)
    if plan.torch is None and chosen_row.torch is not None and plan.moves_base:
        plan.torch = chosen_row.torch
    if plan.moves_base:
        if inputs.pins is None:  # no pinned file: say what the target has, change nothing
            plan.cupy_package, plan.cupy_version = chosen_row.cupy_package, chosen_row.cupy_version
            plan.onnxruntime_gpu = chosen_row.onnxruntime_gpu
        if plan.torch:
            plan.index_url = f"{index_base.rstrip('/')}/{plan.torch.variant}"
        if not plan.due:
            plan.reasons.append("current release is still supported: the update is optional")
    plan.settle()
    return plan


def _next_major_note(plan: ImagePlan, rows: list[Candidate], major: int, wants_torch: bool) -> None:
    """What a CUDA major upgrade would bring while the policy keeps the major."""
    higher = [c for c in rows if c.tag.version[0] > major and c.support.supported]
    if not higher:
        return
    runs = [c for c in higher if c.driver.ok and (c.torch is not None or not wants_torch)]
    if runs:
        best = max(runs, key=lambda c: c.tag.version)
        plan.reasons.append(
            f"{best.tag.version_str} runs on this fleet; set policy.allow_major_upgrade or see the annual update"
        )
    else:
        newest = max(higher, key=lambda c: c.tag.version)
        plan.reasons.append(
            f"CUDA {newest.tag.version[0]} ({newest.tag.version_str}) does not run on this fleet: "
            f"{newest.driver.reason}; see the annual update"
        )


def cudnn_change(current: CudaTag, target: CudaTag, env: Mapping[str, str] | None, facts: Facts) -> str | None:
    """What a move from `current` to `target` does to cuDNN, when its major changes (None: it does not)."""
    before, after = cudnn_major(current, env, facts), cudnn_major(target, None, facts)
    if before is None or after is None or before == after:
        return None
    return (
        f"the cuDNN major changes {before} -> {after} ({current.extra} -> {target.extra}): code built "
        f"against cuDNN {before} must be rebuilt, and onnxruntime-gpu needs a cuDNN {after} build"
    )


def _cudnn_note(
    plan: ImagePlan, current: CudaTag, target: CudaTag, env: Mapping[str, str] | None, facts: Facts
) -> None:
    note = cudnn_change(current, target, env, facts)
    if note:
        plan.reasons.append(note)


def pin_digest(plan: ImagePlan, current: ImageReference, digest: str | None) -> None:
    """A digest-pinned base stays pinned: the target becomes ``tag@<digest of the new tag>``."""
    if current.digest is None or not plan.moves_base or plan.target is None:
        return
    tag = plan.target.rsplit(":", 1)[1]
    if digest is None:
        plan.blocking.append(f"{current} is pinned by digest and the registry gave no digest for {tag}")
        plan.settle()
        return
    plan.target = str(ImageReference(current.registry, current.repository, tag, digest))
    plan.reasons.append(f"the base stays pinned by digest: {tag} is {digest} in the registry")
