"""The consumers of the exported model (pure): can every consumer's ONNX Runtime load what the
planned torch exports? Per consumer, in this order:

1. torch's default export (its default opset, and the IR version its default exporter writes)
   loads in the consumer's release: nothing to do;
2. with ``policy.bump_consumers``, the consumer's pin moves to the oldest release (newest patch of
   that minor) that loads it, a ``onnxruntime-gpu`` pin only within its CUDA major's builds;
3. otherwise the training service exports with a lower opset (``BASEIMAGE_ONNX_OPSET``), the
   highest that every such consumer loads and the exporter writes (the dynamo exporter of torch
   2.9 and later writes IR 10 at any opset and nothing below opset 18 natively);
4. otherwise the plan is blocked, naming the consumer and both versions.

A consumer or a torch release the facts do not know is said so (the validation's consumer check
is then the only proof); it neither passes nor blocks the plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from tasks.research.facts import Facts, OrtOpsets, TorchExport
from tasks.statuses import ConsumerAction, parse

OPSET_VARIABLE = "BASEIMAGE_ONNX_OPSET"


@dataclass(frozen=True)
class ConsumerRuntime:
    """A consumer and the ONNX Runtime it runs (read from its pin, or fixed in the policy)."""

    name: str
    version: str
    package: str = "onnxruntime"  # or onnxruntime-gpu
    file: str | None = None  # where the pin is, relative to the repository (None: a fixed version)
    where: str = ""  # the place, for messages: "services/inference/requirements.txt:3"
    dockerfile: bool = False  # the pin is in a Dockerfile's RUN pip install (else a requirements file)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "package": self.package,
            "file": self.file,
            "where": self.where,
            "dockerfile": self.dockerfile,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerRuntime:
        return cls(
            str(data["name"]),
            str(data["version"]),
            str(data.get("package") or "onnxruntime"),
            data.get("file"),
            str(data.get("where") or ""),
            bool(data.get("dockerfile")),
        )


@dataclass(frozen=True)
class ConsumerBump:
    """A coupled change of a consumer's ONNX Runtime pin."""

    consumer: str
    file: str
    package: str
    current: str
    target: str
    dockerfile: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "file": self.file,
            "package": self.package,
            "current": self.current,
            "target": self.target,
            "dockerfile": self.dockerfile,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerBump:
        return cls(
            str(data["consumer"]),
            str(data["file"]),
            str(data["package"]),
            str(data["current"]),
            str(data["target"]),
            bool(data.get("dockerfile")),
        )

    def line(self) -> str:
        return f"consumer {self.consumer}: {self.package} {self.current} -> {self.target} in {self.file}"


@dataclass(frozen=True)
class ConsumerDecision:
    consumer: str
    version: str  # the consumer's onnxruntime now
    action: ConsumerAction
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"consumer": self.consumer, "version": self.version, "action": str(self.action), "reason": self.reason}


@dataclass(frozen=True)
class ConsumerPlan:
    """What the plan does about the consumers of the exported model."""

    torch: str | None = None
    default_opset: int | None = None
    export_opset: int | None = None  # the opset the training service must export with, when lowered
    bumps: tuple[ConsumerBump, ...] = ()
    blocking: tuple[str, ...] = ()
    decisions: tuple[ConsumerDecision, ...] = ()
    consumers: tuple[ConsumerRuntime, ...] = ()  # what was compared (each consumer and its runtime)

    @property
    def environment(self) -> dict[str, str]:
        """The variables the training service (workload, validation, compose) runs with."""
        return {OPSET_VARIABLE: str(self.export_opset)} if self.export_opset is not None else {}

    @property
    def reasons(self) -> list[str]:
        return [d.reason for d in self.decisions]

    def to_json(self) -> dict[str, Any]:
        return {
            "torch": self.torch,
            "default_opset": self.default_opset,
            "export_opset": self.export_opset,
            "environment": self.environment,
            "bumps": [b.to_json() for b in self.bumps],
            "blocking": list(self.blocking),
            "decisions": [d.to_json() for d in self.decisions],
            "consumers": [c.to_json() for c in self.consumers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ConsumerPlan:
        data = data or {}
        return cls(
            data.get("torch"),
            data.get("default_opset"),
            data.get("export_opset"),
            tuple(ConsumerBump.from_json(b) for b in data.get("bumps") or []),
            tuple(str(b) for b in data.get("blocking") or []),
            tuple(
                ConsumerDecision(
                    str(d["consumer"]),
                    str(d["version"]),
                    parse(ConsumerAction, d["action"], f"consumer {d['consumer']}: action"),
                    str(d["reason"]),
                )
                for d in data.get("decisions") or []
            ),
            tuple(ConsumerRuntime.from_json(c) for c in data.get("consumers") or []),
        )

    @property
    def empty(self) -> bool:
        return not self.decisions


def export_ir(export: TorchExport, opset: int, facts: Facts) -> int | None:
    """The IR version `export`'s default exporter writes at `opset` (None: the facts cannot say)."""
    if export.ir_version is not None:
        return export.ir_version
    return facts.opset_ir.get(opset)


def lowered_exports(export: TorchExport, facts: Facts) -> list[tuple[int, str, int]]:
    """(opset, exporter, IR) of each export the training service can make when told an opset
    (``BASEIMAGE_ONNX_OPSET``), highest first, other than torch's default: the TorchScript exporter
    (dynamo=False) where torch still has it, which writes the IR of the opset, else the default
    exporter from its lowest native opset."""
    out: list[tuple[int, str, int]] = []
    for opset in range(max(export.default_opset, export.torchscript_max_opset or 0), 6, -1):
        if export.torchscript_max_opset is not None and opset <= export.torchscript_max_opset:
            how, ir = "torchscript", facts.opset_ir.get(opset)
        elif export.min_opset <= opset <= export.max_opset:
            how, ir = export.exporter, export_ir(export, opset, facts)
        else:
            continue
        if ir is None or (opset, how) == (export.default_opset, export.exporter) or opset > export.default_opset:
            continue
        out.append((opset, how, ir))
    return out


def _ends(exports: list[tuple[int, str, int]]) -> list[tuple[int, str, int]]:
    return exports[:1] + exports[-1:] if len(exports) > 1 else exports


def _fits(limits: OrtOpsets, opset: int, ir: int | None) -> bool:
    return opset <= limits.max_opset and ir is not None and ir <= limits.max_ir


def _v(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def bump_target(consumer: ConsumerRuntime, opset: int, ir: int, facts: Facts) -> str | None:
    """The oldest release newer than the consumer's that loads `opset`/`ir` (the newest patch of
    its minor), within the consumer's CUDA major for onnxruntime-gpu; None when the facts have none."""
    now = _v(consumer.version)
    if now is None:
        return None
    build = facts.ort_build(consumer.version) if consumer.package == "onnxruntime-gpu" else None
    if consumer.package == "onnxruntime-gpu" and build is None:
        return None
    fitting = []
    for row in facts.ort_opsets:
        version = _v(row.version)
        if version is None or version <= now or not _fits(row, opset, ir):
            continue
        if build is not None:
            other = facts.ort_build(row.version)
            if other is None or (other.cuda, other.cudnn) != (build.cuda, build.cudnn):
                continue
        fitting.append(version)
    if not fitting:
        return None
    oldest = min(fitting)
    same_minor = [v for v in fitting if (v.major, v.minor) == (oldest.major, oldest.minor)]
    return str(max(same_minor))


def _limits_text(limits: OrtOpsets) -> str:
    return f"opset <= {limits.max_opset}, IR <= {limits.max_ir}"


def plan_consumers(
    torch: str | None, consumers: Sequence[ConsumerRuntime], facts: Facts, *, bump: bool = False
) -> ConsumerPlan:
    """The decision for every consumer against the export of `torch` (see the module docstring)."""
    if not consumers:
        return ConsumerPlan(torch)
    listed = tuple(consumers)
    if torch is None:
        return ConsumerPlan(
            None,
            decisions=tuple(
                ConsumerDecision(
                    c.name, c.version, ConsumerAction.UNKNOWN, f"consumer {c.name}: no torch in the plan to compare"
                )
                for c in consumers
            ),
            consumers=listed,
        )
    export = facts.torch_export(torch)
    if export is None:
        known = max((e.torch for e in facts.torch_exports), key=Version, default="none")
        return ConsumerPlan(
            torch,
            decisions=tuple(
                ConsumerDecision(
                    c.name,
                    c.version,
                    ConsumerAction.UNKNOWN,
                    f"consumer {c.name}: the facts know no ONNX export defaults for torch {torch} (newest "
                    f"known {known}): only the validation's consumer check can show onnxruntime {c.version} loads it",
                )
                for c in consumers
            ),
            consumers=listed,
        )
    default = export.default_opset
    default_ir = export_ir(export, default, facts)
    stamp = f"torch {torch} exports opset {default} (IR {default_ir}) by default ({export.exporter} exporter)"
    decisions: dict[str, ConsumerDecision] = {}
    bumps: list[ConsumerBump] = []
    needing: list[tuple[ConsumerRuntime, OrtOpsets]] = []
    for consumer in consumers:
        limits = facts.ort_limits(consumer.version)
        if limits is None:
            decisions[consumer.name] = ConsumerDecision(
                consumer.name,
                consumer.version,
                ConsumerAction.UNKNOWN,
                f"consumer {consumer.name}: the facts do not know which opset onnxruntime {consumer.version} "
                "loads: only the validation's consumer check can show it",
            )
        elif _fits(limits, default, default_ir):
            decisions[consumer.name] = ConsumerDecision(
                consumer.name,
                consumer.version,
                ConsumerAction.OK,
                f"consumer {consumer.name}: onnxruntime {consumer.version} ({_limits_text(limits)}) loads what {stamp}",
            )
        else:
            target = (
                bump_target(consumer, default, default_ir, facts)
                if bump and consumer.file and default_ir is not None
                else None
            )
            if target is not None and consumer.file:
                bumps.append(
                    ConsumerBump(
                        consumer.name, consumer.file, consumer.package, consumer.version, target, consumer.dockerfile
                    )
                )
                decisions[consumer.name] = ConsumerDecision(
                    consumer.name,
                    consumer.version,
                    ConsumerAction.BUMP,
                    f"consumer {consumer.name}: {consumer.package} {consumer.version} -> {target} in "
                    f"{consumer.where or consumer.file} (policy.bump_consumers): {consumer.version} loads "
                    f"{_limits_text(limits)}, and {stamp}",
                )
            else:
                needing.append((consumer, limits))
    export_opset: int | None = None
    blocking: list[str] = []
    if needing:
        chosen = next(
            (
                (opset, how, ir)
                for opset, how, ir in lowered_exports(export, facts)
                if all(_fits(limits, opset, ir) for _, limits in needing)
            ),
            None,
        )
        for consumer, limits in needing:
            if chosen is not None:
                decisions[consumer.name] = ConsumerDecision(
                    consumer.name,
                    consumer.version,
                    ConsumerAction.EXPORT_OPSET,
                    f"consumer {consumer.name}: onnxruntime {consumer.version} loads {_limits_text(limits)} and "
                    f"{stamp}: the training service exports with {OPSET_VARIABLE}={chosen[0]} "
                    f"({chosen[1]} exporter, IR {chosen[2]})",
                )
                continue
            how = (
                "no release in the facts loads it within the consumer's builds"
                if bump
                else f"set policy.bump_consumers to bump {consumer.package} in {consumer.where or consumer.file}"
                if consumer.file
                else f"raise consumers[{consumer.name}].onnxruntime"
            )
            lowest = ", ".join(f"opset {o} IR {i} ({h})" for o, h, i in _ends(lowered_exports(export, facts)))
            reason = (
                f"consumer {consumer.name}: onnxruntime {consumer.version} ({_limits_text(limits)}) cannot load "
                f"what torch {torch} exports (opset {default}, IR {default_ir}), nor any lower export it makes "
                f"({lowest or 'none'}): {how}, or keep torch below {torch}"
            )
            decisions[consumer.name] = ConsumerDecision(consumer.name, consumer.version, ConsumerAction.BLOCKED, reason)
            blocking.append(reason)
        export_opset = chosen[0] if chosen is not None else None
    return ConsumerPlan(
        torch,
        default,
        export_opset,
        tuple(bumps),
        tuple(blocking),
        tuple(decisions[c.name] for c in consumers),
        listed,
    )


def merge(plans: Sequence[ConsumerPlan]) -> ConsumerPlan:
    """One consumer plan for a migration that moves several images (each exporting with its own
    torch): the lowest export opset, every bump (the highest target per consumer), every block."""
    real = [p for p in plans if not p.empty]
    if not real:
        return plans[0] if plans else ConsumerPlan()
    if len(real) == 1:
        return real[0]
    opsets = [p.export_opset for p in real if p.export_opset is not None]
    bumps: dict[str, ConsumerBump] = {}
    for plan in real:
        for b in plan.bumps:
            if b.consumer not in bumps or Version(b.target) > Version(bumps[b.consumer].target):
                bumps[b.consumer] = b
    newest = max(real, key=lambda p: Version(p.torch) if p.torch and _v(p.torch) else Version("0"))
    seen: dict[tuple[str, str], ConsumerDecision] = {}
    for plan in real:
        for d in plan.decisions:
            seen.setdefault((d.consumer, d.reason), d)
    blocking = list(dict.fromkeys(b for p in real for b in p.blocking))
    consumers = {c.name: c for p in real for c in p.consumers}
    return ConsumerPlan(
        newest.torch,
        newest.default_opset,
        min(opsets) if opsets else None,
        tuple(bumps.values()),
        tuple(blocking),
        tuple(seen.values()),
        tuple(consumers.values()),
    )
