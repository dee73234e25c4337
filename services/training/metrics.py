"""Prometheus metrics kept in Redis, so the API process reports what the workers did."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

KEY = "baseimage:metrics"


class Metrics:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def task_finished(self, outcome: str) -> None:
        self.redis.hincrby(KEY, f"tasks:{outcome}", 1)

    def cuda_oom(self) -> None:
        self.redis.hincrby(KEY, "cuda_oom", 1)

    def gpu_utilization(self, mean: float | None, peak: float | None) -> None:
        if mean is not None and peak is not None:
            self.redis.hset(KEY, mapping={"gpu_util_mean": mean, "gpu_util_peak": peak})

    def read(self) -> dict[str, float]:
        raw = self.redis.hgetall(KEY)
        return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}

    def render(self) -> bytes:
        """The Prometheus text exposition of the current values."""
        values = self.read()
        registry = CollectorRegistry()

        class _Collector:
            def collect(self) -> Iterator[Any]:
                tasks = CounterMetricFamily("training_tasks", "Training jobs finished", labels=["outcome"])
                for outcome in ("success", "failure"):
                    tasks.add_metric([outcome], values.get(f"tasks:{outcome}", 0.0))
                yield tasks
                yield CounterMetricFamily(
                    "cuda_oom",
                    "CUDA out-of-memory errors in jobs",
                    value=values.get("cuda_oom", 0.0),
                )
                for key, help_text in (
                    ("gpu_util_mean", "Mean GPU utilisation % of the last job"),
                    ("gpu_util_peak", "Peak GPU utilisation % of the last job"),
                ):
                    if key in values:
                        yield GaugeMetricFamily(f"training_{key}_percent", help_text, value=values[key])

        registry.register(_Collector())
        return generate_latest(registry)
