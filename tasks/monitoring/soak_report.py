"""What a staging soak window proved, as one typed value: the soak-monitor flow builds it from its
verdict, returns its JSON (the persisted result a caller on another pool reads), and the
deployment phase reads it back once (`from_json`) for the production approval, the rollback
reason and the migration's outcome (``reports/migrate-<run>.json: soak``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.errors import ConfigError
from tasks.monitoring.soak import Verdict
from tasks.statuses import SoakStatus, parse


@dataclass(frozen=True)
class SoakReport:
    environment: str
    window: str
    status: SoakStatus
    reasons: tuple[str, ...]
    expected: int  # the window's slots
    slots: int  # slots gone by (a window extended for coverage has more than expected)
    samples: int  # slots actually sampled
    missed: int
    gaps: tuple[tuple[int, int], ...]  # (first, last) slot of each run of missed ones
    coverage: float
    store: str  # the samples file (JSON lines)
    run: str = ""  # the soak's flow run id
    chart: str | None = None  # the PNG, once the window has a verdict

    @classmethod
    def of(
        cls, verdict: Verdict, environment: str, window: str, expected: int, slots: int, store: str, run: str
    ) -> SoakReport:
        return cls(
            environment,
            window,
            verdict.status,
            tuple(verdict.reasons),
            expected,
            slots,
            verdict.taken,
            verdict.missed,
            tuple(verdict.gaps),
            round(verdict.coverage, 4),
            store,
            run,
        )

    @property
    def passed(self) -> bool:
        return self.status == SoakStatus.PASSED

    def coverage_line(self) -> str:
        """``41 samples in 48 of 48 slots (85% coverage, 7 missed)``."""
        missed = f", {self.missed} missed" if self.missed else ""
        return f"{self.samples} samples in {self.slots} of {self.expected} slots ({self.coverage:.0%} coverage{missed})"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run": self.run,
            "environment": self.environment,
            "window": self.window,
            "expected": self.expected,
            "slots": self.slots,
            "samples": self.samples,
            "missed": self.missed,
            "gaps": [list(g) for g in self.gaps],
            "coverage": self.coverage,
            "status": self.status.value,
            "reasons": list(self.reasons),
            "store": self.store,
        }
        if self.chart is not None:
            data["chart"] = self.chart
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> SoakReport:
        """The soak-monitor flow's result, or a ConfigError naming `where` it came from."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: not a soak report ({type(data).__name__})")
        try:
            samples = int(data["samples"])
            return cls(
                str(data["environment"]),
                str(data["window"]),
                parse(SoakStatus, data["status"], f"{where}: status"),
                tuple(str(r) for r in data.get("reasons") or ()),
                int(data["expected"]),
                int(data.get("slots", samples)),
                samples,
                int(data.get("missed", 0)),
                tuple((int(a), int(b)) for a, b in data.get("gaps") or ()),
                float(data.get("coverage", 0.0)),
                str(data["store"]),
                str(data.get("run") or ""),
                None if data.get("chart") is None else str(data["chart"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: not a soak report ({type(exc).__name__}: {exc})") from exc
