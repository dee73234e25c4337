"""Daily deprecation watch: every environment's running containers, their image configs and
start-up logs; an alert when something is deprecated; metrics to the Pushgateway."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from baseimage.settings import Settings, load_settings
from flows.outcome import record_outcome
from tasks.monitoring import alerts, metrics
from tasks.monitoring.watch import Finding, watch
from tasks.research.facts import load_facts


@task(name="scan-containers")
def scan_containers(settings: Settings) -> list[Finding]:
    """Each environment on its own Docker host (`docker_host`, else this host's daemon)."""
    from tasks.deploy.release import docker_client

    facts = load_facts()
    findings: list[Finding] = []
    for name, env in settings.environments.items():
        findings += watch(docker_client(env.docker_host), {name: env.project}, facts)
    return findings


def _last_review(out_dir: Path) -> datetime | None:
    reports = sorted(out_dir.glob("review-*.json"))
    if not reports:
        return None
    day = json.loads(reports[-1].read_text()).get("date")
    return datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None


@task(name="alert", retries=2, retry_delay_seconds=[2, 10])
def alert(settings: Settings, findings: list[Finding], today: date) -> str:
    subject, body = alerts.message(findings, today)
    block = None
    if settings.alerts.block:
        from prefect.blocks.core import Block

        block = Block.load(settings.alerts.block)
    return alerts.send(subject, body, block=block, webhook_url=settings.webhook_url())


@task(name="push-metrics", retries=2, retry_delay_seconds=[2, 10])
def push_metrics(settings: Settings, findings: list[Finding], today: date, reports_dir: str) -> str:
    if not settings.monitoring.pushgateway:
        return "no Pushgateway configured (monitoring.pushgateway)"
    registry = metrics.registry_for(findings, today, _last_review(Path(reports_dir)))
    metrics.push(settings.monitoring.pushgateway, registry)
    return f"pushed to {settings.monitoring.pushgateway}"


@flow(name="deprecation-watch")
def deprecation_watch(config_path: str | None = None, reports_dir: str = "reports") -> dict[str, Any]:
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    today = datetime.now(UTC).date()
    findings = scan_containers(settings)
    rows = [
        {
            "environment": f.environment,
            "container": f.container,
            "image": f.image,
            "cuda": f.cuda_version,
            "config_eol": f.config_eol,
            "banner": bool(f.banner),
            "estimated_deletion": str(f.estimated_deletion or ""),
            "days_to_deletion": f.days_to_deletion(today),
        }
        for f in findings
    ]
    if rows:
        create_table_artifact(key="deprecation-watch", table=rows, description=f"Running containers on {today}")
    deprecated = [f for f in findings if f.deprecated]
    sent = alert(settings, findings, today) if deprecated else "nothing deprecated: no alert"
    pushed = push_metrics(settings, findings, today, reports_dir)
    log.info("%d containers, %d deprecated; %s; %s", len(findings), len(deprecated), sent, pushed)
    record_outcome(f"{len(findings)} running containers, {len(deprecated)} deprecated; {sent}")
    return {"containers": rows, "deprecated": len(deprecated), "alert": sent, "metrics": pushed}
