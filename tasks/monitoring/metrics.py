"""Metrics for Prometheus through a Pushgateway: deprecated images, days to estimated deletion,
the watch's findings by severity, the last review's time and each environment's last soak
verdict (read from the migration outcomes that carry it)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tasks.monitoring.findings import ContainerReport, Finding, Severity
from tasks.statuses import SoakStatus, StatusError, parse

JOB = "baseimage"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SoakVerdict:
    environment: str
    status: SoakStatus  # finished: passed, failed or aborted
    source: str  # the file it was read from

    @property
    def passed(self) -> bool:
        return self.status == SoakStatus.PASSED


def last_soak_verdicts(reports_dir: Path) -> dict[str, SoakVerdict]:
    """Each environment's newest finished soak (passed, failed or aborted), from the migration
    outcomes (``migrate-*.json``, newest file last); a soak still running is not a verdict."""
    verdicts: dict[str, SoakVerdict] = {}
    files = sorted(reports_dir.glob("migrate-*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    for path in files:
        try:
            soak = json.loads(path.read_text(encoding="utf-8")).get("soak")
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("%s: not a migration outcome (%s); skipped", path, exc)
            continue
        if not isinstance(soak, dict):
            continue
        try:
            status = parse(SoakStatus, soak.get("status"), f"{path}: soak status")
        except StatusError as exc:  # a file this reader cannot trust says nothing about the soak
            log.warning("%s; skipped", exc)
            continue
        if not status.finished:
            continue
        environment = str(soak.get("environment") or "staging")
        verdicts[environment] = SoakVerdict(environment, status, str(path))
    return verdicts


def registry_for(
    reports: Sequence[ContainerReport],
    today: date,
    last_review: datetime | None,
    soak: Mapping[str, SoakVerdict] | None = None,
    extra: Sequence[Finding] = (),
    environments: Sequence[str] = (),
) -> CollectorRegistry:
    """Every baseimage gauge (registered even when it has no sample, so the dashboard and the
    alerting rules can be checked against what is exported)."""
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
    findings = Gauge(
        "baseimage_watch_findings",
        "Deprecation-watch findings by severity",
        ["environment", "severity"],
        registry=registry,
    )
    review = Gauge("baseimage_last_review_timestamp_seconds", "When the last quarterly review ran", registry=registry)
    soak_passed = Gauge(
        "baseimage_soak_passed", "1 when the environment's last soak passed", ["environment"], registry=registry
    )
    names = sorted({*environments, *(r.environment for r in reports)})
    for environment in names:
        deprecated.labels(environment).set(sum(r.deprecated for r in reports if r.environment == environment))
    for report in reports:
        remaining = report.days_to_deletion(today)
        if remaining is not None:
            days.labels(report.environment, report.image).set(remaining)
    every = [f for r in reports for f in r.findings] + list(extra)
    for environment in sorted({*names, *(f.environment for f in every)}):
        for severity in Severity:
            count = sum(f.environment == environment and f.severity is severity for f in every)
            findings.labels(environment, severity.label).set(count)
    if last_review is not None:
        review.set(last_review.timestamp())
    else:
        registry.unregister(review)  # no review yet: absent, not "1970"
    for environment, verdict in sorted((soak or {}).items()):
        soak_passed.labels(environment).set(1 if verdict.passed else 0)
    return registry


def push(gateway: str, registry: CollectorRegistry, job: str = JOB) -> None:
    """Replace this job's metrics on the Pushgateway (``host:port`` or a URL)."""
    push_to_gateway(gateway, job=job, registry=registry, timeout=10)
