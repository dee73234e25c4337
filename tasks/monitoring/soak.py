"""The soak monitor's parts (pure of Prefect): one sample of a running service (health and its
latency, container restarts, the log lines written since the previous sample with CUDA
out-of-memory errors, tracebacks or the deprecation banner, task success rate and GPU
utilisation from /metrics), an append-only sample store that survives a crash mid-write, the
schedule that records missed slots as gaps instead of filling them, the verdict (coverage
included), and a chart."""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests

from tasks.deprecation import find_deprecation_banner
from tasks.statuses import SoakStatus

OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory", re.I)
TRACEBACK = "Traceback (most recent call last)"
_METRIC = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$")

OnLowCoverage = Literal["extend", "fail"]


@dataclass(frozen=True)
class Thresholds:
    max_health_failures: int = 3
    max_latency_ms: float = 2000.0
    min_success_rate: float = 0.95
    min_coverage: float = 0.9  # share of the window's slots that must hold a real sample
    on_low_coverage: OnLowCoverage = "extend"
    abort_on_oom: bool = True
    abort_on_banner: bool = True


@dataclass
class Sample:
    """One slot of the window: a real sample, or a gap (`missed`) the monitor could not take."""

    index: int
    at: str
    health_ok: bool | None  # None: a missed slot, nothing was measured
    latency_ms: float | None
    restarts: int = 0
    oom_lines: list[str] = field(default_factory=list)
    tracebacks: int = 0
    banner: bool = False
    success_rate: float | None = None
    gpu_util: float | None = None
    missed: bool = False
    t: float | None = None  # unix time of the sample (log lines are read up to it)

    @classmethod
    def gap(cls, index: int, due: float) -> Sample:
        return cls(index, _iso(due), None, None, missed=True, t=due)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sample:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line of a Prometheus text exposition."""
    values = {}
    for line in text.splitlines():
        match = _METRIC.match(line.strip())
        if match and not line.startswith("#"):
            key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
            try:
                values[key] = float(match["value"])
            except ValueError:
                continue
    return values


def success_rate(metrics: dict[str, float]) -> float | None:
    ok = metrics.get('training_tasks_total{outcome="success"}', 0.0)
    bad = metrics.get('training_tasks_total{outcome="failure"}', 0.0)
    return ok / (ok + bad) if ok + bad else None


def take_sample(
    index: int,
    health_url: str,
    metrics_url: str | None,
    containers: Sequence[Any],
    since: float | None,
    timeout: float = 10.0,
    now: float | None = None,
) -> Sample:
    """One sample; the containers' log lines written after `since` (unix seconds; None: since
    they started) and up to now are scanned, so an outage of the monitor loses no log line."""
    began = time.perf_counter()
    try:
        ok = requests.get(health_url, timeout=timeout).status_code == 200
        latency: float | None = (time.perf_counter() - began) * 1000
    except requests.RequestException:
        ok, latency = False, None
    at = time.time() if now is None else now
    sample = Sample(index, _iso(at), ok, latency, t=at)
    if metrics_url:
        try:
            metrics = parse_metrics(requests.get(metrics_url, timeout=timeout).text)
            sample.success_rate = success_rate(metrics)
            sample.gpu_util = metrics.get("training_gpu_util_peak_percent")
        except requests.RequestException:
            pass  # a missing /metrics shows as None in the sample, and the health check says why
    for container in containers:
        container.reload()
        sample.restarts += int(container.attrs.get("RestartCount", 0))
        window: dict[str, float] = {"until": at}
        if since:
            window["since"] = since
        log = container.logs(**window).decode(errors="replace")
        sample.oom_lines += [line.strip() for line in log.splitlines() if OOM.search(line)]
        sample.tracebacks += log.count(TRACEBACK)
        sample.banner = sample.banner or bool(find_deprecation_banner(log))
    return sample


class SampleStore:
    """Slots of one soak window as JSON lines, each written and fsynced as it is taken.

    A line cut by a crash mid-write is cut off the file when it is loaded, so the next append
    starts on a line of its own and the window resumes at the first missing index."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[Sample]:
        """The contiguous slots 0..n-1 kept (a cut or unreadable tail is removed from the file)."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        samples: list[Sample] = []
        good = 0  # bytes at the start of the file that hold complete, readable, contiguous lines
        while good < len(data):
            end = data.find(b"\n", good)
            if end < 0:
                break  # the last line has no newline: cut by a crash mid-write
            raw = data[good:end]
            if raw.strip():
                try:
                    sample = Sample.from_json(json.loads(raw))
                except (ValueError, TypeError, UnicodeDecodeError):
                    break
                if sample.index != len(samples):
                    break
                samples.append(sample)
            good = end + 1
        if good < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())
        return samples

    def append(self, sample: Sample) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(sample)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


@dataclass
class Verdict:
    status: SoakStatus
    reasons: list[str]
    taken: int = 0
    missed: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) index of each run of missed slots

    @property
    def coverage(self) -> float:
        total = self.taken + self.missed
        return self.taken / total if total else 0.0


def gaps_of(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for s in samples:
        if not s.missed:
            continue
        if runs and runs[-1][1] == s.index - 1:
            runs[-1] = (runs[-1][0], s.index)
        else:
            runs.append((s.index, s.index))
    return runs


def required_samples(expected: int, thresholds: Thresholds) -> int:
    return max(1, math.ceil(thresholds.min_coverage * expected - 1e-9))


def evaluate(samples: Sequence[Sample], expected: int, thresholds: Thresholds, max_slots: int | None = None) -> Verdict:
    """Abort early on out-of-memory or the banner; fail on health, latency, restarts or success
    rate; a window whose real samples cover less than `min_coverage` of its slots is never
    "passed": it runs on (extend, up to `max_slots`) or fails. Missed slots are always said."""
    real = [s for s in samples if not s.missed]
    gaps = gaps_of(samples)
    verdict = Verdict(SoakStatus.RUNNING, [], len(real), len(samples) - len(real), gaps)
    gap_note = [_gap_text(samples, gaps)] if gaps else []
    oom = [line for s in real for line in s.oom_lines]
    if thresholds.abort_on_oom and oom:
        verdict.status, verdict.reasons = SoakStatus.ABORTED, [f"CUDA out-of-memory in the logs: {oom[0]}", *gap_note]
        return verdict
    if thresholds.abort_on_banner and any(s.banner for s in real):
        verdict.status, verdict.reasons = SoakStatus.ABORTED, ["deprecation banner in the service logs", *gap_note]
        return verdict
    reasons = []
    failures = sum(s.health_ok is False for s in real)
    if failures > thresholds.max_health_failures:
        reasons.append(f"{failures} failed health checks (allowed {thresholds.max_health_failures})")
    slow = [s.latency_ms for s in real if s.latency_ms is not None and s.latency_ms > thresholds.max_latency_ms]
    if slow:
        reasons.append(f"{len(slow)} health checks slower than {thresholds.max_latency_ms:g} ms")
    if real and real[-1].restarts:
        reasons.append(f"containers restarted {real[-1].restarts} times")
    rates = [s.success_rate for s in real if s.success_rate is not None]
    if rates and rates[-1] < thresholds.min_success_rate:
        reasons.append(f"task success rate {rates[-1]:.0%} below {thresholds.min_success_rate:.0%}")
    if reasons:
        verdict.status, verdict.reasons = SoakStatus.FAILED, [*reasons, *gap_note]
        return verdict
    need = required_samples(expected, thresholds)
    if len(samples) < expected:
        verdict.reasons = [f"{len(samples)}/{expected} slots, {len(real)} sampled", *gap_note]
        return verdict
    if len(real) >= need and (len(samples) == expected or thresholds.on_low_coverage == "extend"):
        extended = f" (window extended by {len(samples) - expected} slots)" if len(samples) > expected else ""
        verdict.status = SoakStatus.PASSED
        verdict.reasons = [
            f"{len(real)} of {len(samples)} slots sampled ({verdict.coverage:.0%} coverage), "
            f"all within thresholds{extended}",
            *gap_note,
        ]
        return verdict
    short = f"coverage {len(real)}/{expected} samples is below {thresholds.min_coverage:.0%} (needs {need})"
    limit = max_slots if max_slots is not None else expected
    if thresholds.on_low_coverage == "extend" and len(samples) < limit:
        verdict.reasons = [f"{short}; window extended to collect the missing samples", *gap_note]
        return verdict
    verdict.status = SoakStatus.FAILED
    ended = " even after extending the window" if len(samples) > expected else ""
    verdict.reasons = [f"{short}{ended}", *gap_note]
    return verdict


def _gap_text(samples: Sequence[Sample], gaps: list[tuple[int, int]]) -> str:
    parts = []
    for first, last in gaps:
        span = f"slot {first}" if first == last else f"slots {first}-{last}"
        parts.append(f"{span} ({samples[first].at} to {samples[last].at})")
    total = sum(last - first + 1 for first, last in gaps)
    return f"{total} slots missed while the monitor was down: {', '.join(parts)}"


@dataclass(frozen=True)
class Window:
    """Where and how a soak window samples."""

    health_url: str
    metrics_url: str | None
    window_s: float
    interval_s: float
    thresholds: Thresholds
    max_extension_s: float | None = None  # how long `extend` may run past the window (default: the window again)

    @property
    def expected(self) -> int:
        return max(1, round(self.window_s / self.interval_s))

    @property
    def max_slots(self) -> int:
        extension = self.window_s if self.max_extension_s is None else self.max_extension_s
        return self.expected + round(extension / self.interval_s)


def run_window(
    store: SampleStore,
    window: Window,
    containers: Sequence[Any],
    *,
    max_samples: int | None = None,
    on_sample: Callable[[Sample, Verdict], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Sample], Verdict]:
    """Sample on the window's schedule (slot k is due at start + k x interval), continuing a
    window already in `store`. Slots whose time passed while nothing sampled (the monitor was
    down, or a sample took too long) are written as gaps, never filled in afterwards; log lines
    are read from the last real sample's time, so what the service printed meanwhile is seen.
    Stops when the verdict is final or after `max_samples` new samples."""
    samples = store.load()
    expected = window.expected
    start = samples[0].t if samples and samples[0].t is not None else clock()
    verdict = evaluate(samples, expected, window.thresholds, window.max_slots)
    taken = 0
    while not verdict.status.finished and (max_samples is None or taken < max_samples):
        index = len(samples)
        now = clock()
        due_now = math.floor((now - start) / window.interval_s + 1e-9)
        if due_now > index:  # slots that went by unsampled: recorded as gaps
            for missed in range(index, min(due_now, window.max_slots)):
                gap = Sample.gap(missed, start + missed * window.interval_s)
                store.append(gap)
                samples.append(gap)
            verdict = evaluate(samples, expected, window.thresholds, window.max_slots)
            if verdict.status.finished:
                break
            index = len(samples)
        else:
            sleep(max(0.0, start + index * window.interval_s - now))
        previous = next((s.t for s in reversed(samples) if not s.missed and s.t), None)
        sample = take_sample(index, window.health_url, window.metrics_url, containers, previous, now=clock())
        store.append(sample)
        samples.append(sample)
        taken += 1
        verdict = evaluate(samples, expected, window.thresholds, window.max_slots)
        if on_sample:
            on_sample(sample, verdict)
    return samples, verdict


def chart(samples: list[Sample], path: Path) -> Path:
    """PNG of health latency, GPU utilisation and task success rate over the window (gaps blank)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s.index for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    series = [
        ([s.latency_ms for s in samples], "health latency (ms)"),
        ([s.gpu_util for s in samples], "GPU utilisation (%)"),
        ([None if s.success_rate is None else s.success_rate * 100 for s in samples], "task success (%)"),
    ]
    for ax, (values, label) in zip(axes, series, strict=True):
        ax.plot(x, [float("nan") if v is None else v for v in values], marker="o", markersize=3)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        for first, last in gaps_of(samples):
            ax.axvspan(first - 0.5, last + 0.5, color="red", alpha=0.12)
    axes[-1].set_xlabel("sample (red: missed while the monitor was down)")
    fig.suptitle("Soak monitor")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
