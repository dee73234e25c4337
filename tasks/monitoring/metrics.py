"""Metrics for Prometheus through a Pushgateway: deprecated images, days to estimated deletion,
the last review's time and soak results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tasks.monitoring.watch import Finding

JOB = "baseimage"


def registry_for(
    findings: Sequence[Finding], today: date, last_review: datetime | None, soak_passed: dict[str, bool] | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry()
    deprecated = Gauge(
        "baseimage_deprecated_images",
        "Running containers whose image is deprecated",
        ["environment"],
        registry=registry,
    )
    days = Gauge(
        "baseimage_days_to_deletion",
        "Days until NVIDIA's estimated deletion of a running image's tags",
        ["environment", "image"],
        registry=registry,
    )
    for environment in sorted({f.environment for f in findings}):
        deprecated.labels(environment).set(sum(f.deprecated for f in findings if f.environment == environment))
    for finding in findings:
        remaining = finding.days_to_deletion(today)
        if remaining is not None:
            days.labels(finding.environment, finding.image).set(remaining)
    if last_review is not None:
        Gauge("baseimage_last_review_timestamp_seconds", "When the last quarterly review ran", registry=registry).set(
            last_review.timestamp()
        )
    if soak_passed:
        soak = Gauge(
            "baseimage_soak_passed", "1 when the environment's last soak passed", ["environment"], registry=registry
        )
        for environment, passed in soak_passed.items():
            soak.labels(environment).set(1 if passed else 0)
    return registry


def push(gateway: str, registry: CollectorRegistry, job: str = JOB) -> None:
    """Replace this job's metrics on the Pushgateway (``host:port`` or a URL)."""
    push_to_gateway(gateway, job=job, registry=registry, timeout=10)
