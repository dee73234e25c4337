"""The soak monitor's parts (pure of Prefect): one sample of a running service (health and its
latency, container restarts, new log lines with CUDA out-of-memory errors, tracebacks or the
deprecation banner, task success rate and GPU utilisation from /metrics), an append-only sample
store that a re-run continues without losing or repeating a sample, the verdict, and a chart."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from tasks.deprecation import find_deprecation_banner

OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory", re.I)
TRACEBACK = "Traceback (most recent call last)"
_METRIC = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$")


@dataclass(frozen=True)
class Thresholds:
    max_health_failures: int = 3
    max_latency_ms: float = 2000.0
    min_success_rate: float = 0.95
    abort_on_oom: bool = True
    abort_on_banner: bool = True


@dataclass
class Sample:
    index: int
    at: str
    health_ok: bool
    latency_ms: float | None
    restarts: int = 0
    oom_lines: list[str] = field(default_factory=list)
    tracebacks: int = 0
    banner: bool = False
    success_rate: float | None = None
    gpu_util: float | None = None


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
    containers: list[Any],
    since: int | None,
    timeout: float = 10.0,
) -> Sample:
    """One sample; `since` (unix seconds) limits the log lines to the new ones."""
    began = time.perf_counter()
    try:
        ok = requests.get(health_url, timeout=timeout).status_code == 200
        latency: float | None = (time.perf_counter() - began) * 1000
    except requests.RequestException:
        ok, latency = False, None
    sample = Sample(index, datetime.now(UTC).isoformat(timespec="seconds"), ok, latency)
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
        log = (
            container.logs(since=since).decode(errors="replace") if since else container.logs().decode(errors="replace")
        )
        sample.oom_lines += [line.strip() for line in log.splitlines() if OOM.search(line)]
        sample.tracebacks += log.count(TRACEBACK)
        sample.banner = sample.banner or bool(find_deprecation_banner(log))
    return sample


class SampleStore:
    """Samples of one soak window as JSON lines, each written and fsynced as it is taken."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[Sample]:
        if not self.path.exists():
            return []
        samples = {}
        for line in self.path.read_text().splitlines():
            if line.strip():
                try:
                    data = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash mid-write: the sample is taken again
                samples[data["index"]] = Sample(**data)
        return [samples[i] for i in sorted(samples)]

    def append(self, sample: Sample) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(sample)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


@dataclass
class Verdict:
    status: str  # running | passed | failed | aborted
    reasons: list[str]


def evaluate(samples: list[Sample], expected: int, thresholds: Thresholds) -> Verdict:
    """Abort early on out-of-memory or the banner; fail on health, latency, restarts or success rate."""
    oom = [line for s in samples for line in s.oom_lines]
    if thresholds.abort_on_oom and oom:
        return Verdict("aborted", [f"CUDA out-of-memory in the logs: {oom[0]}"])
    if thresholds.abort_on_banner and any(s.banner for s in samples):
        return Verdict("aborted", ["deprecation banner in the service logs"])
    reasons = []
    failures = sum(not s.health_ok for s in samples)
    if failures > thresholds.max_health_failures:
        reasons.append(f"{failures} failed health checks (allowed {thresholds.max_health_failures})")
    slow = [s.latency_ms for s in samples if s.latency_ms is not None and s.latency_ms > thresholds.max_latency_ms]
    if slow:
        reasons.append(f"{len(slow)} health checks slower than {thresholds.max_latency_ms:g} ms")
    if samples and samples[-1].restarts:
        reasons.append(f"containers restarted {samples[-1].restarts} times")
    rates = [s.success_rate for s in samples if s.success_rate is not None]
    if rates and rates[-1] < thresholds.min_success_rate:
        reasons.append(f"task success rate {rates[-1]:.0%} below {thresholds.min_success_rate:.0%}")
    if reasons:
        return Verdict("failed", reasons)
    if len(samples) < expected:
        return Verdict("running", [f"{len(samples)}/{expected} samples"])
    return Verdict("passed", [f"{len(samples)} samples within thresholds"])


def chart(samples: list[Sample], path: Path) -> Path:
    """PNG of health latency, GPU utilisation and task success rate over the window."""
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
    axes[-1].set_xlabel("sample")
    fig.suptitle("Soak monitor")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
