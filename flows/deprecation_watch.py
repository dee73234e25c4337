"""Daily deprecation watch: every environment's running containers (image config, the start of
their logs, NVIDIA's list, the registry, the deployment ledger) and the fleet's driver branch;
an alert when a finding appears or changes severity and a "resolved" when it is gone (state in
reports/watch/state.json); metrics to the Pushgateway."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from baseimage.settings import Settings, load_settings
from baseimage.wiring import redactor, registry_session, transport
from flows.outcome import record_outcome
from tasks.deploy.ledger import Ledger, RetainLog
from tasks.errors import BaseImageError
from tasks.monitoring import alerts, metrics
from tasks.monitoring.findings import ContainerReport, Finding, Severity, driver_branch_finding
from tasks.monitoring.watch import WatchContext, watch
from tasks.research.facts import load_facts
from tasks.research.support import unsupported_releases

STATE_FILE = Path("watch") / "state.json"


@task(name="scan-containers")
def scan_containers(settings: Settings, today: date) -> tuple[list[ContainerReport], list[Finding], list[str]]:
    """Each environment on its own Docker host (`docker_host`, else this host's daemon)."""
    from tasks.deploy.release import docker_client

    log = get_run_logger()
    facts = load_facts()
    if settings.research.nvidia_support_url:
        facts = replace(facts, support_live_url=settings.research.nvidia_support_url)
    http = transport(settings)
    try:
        unsupported, source = unsupported_releases(facts, http)
    except BaseImageError as exc:
        log.warning("NVIDIA's support manifest unavailable (%s): using the bundled table", exc)
        unsupported, source = unsupported_releases(facts, None)
    ctx = WatchContext(
        facts,
        unsupported,
        source,
        registry_session(settings, http),
        settings.fleet.min_driver,
        today,
        ledger_for=lambda environment: Ledger(settings.state_dir, environment),
        kept=RetainLog(settings.state_dir),
    )
    reports: list[ContainerReport] = []
    for name, env in settings.environments.items():
        reports += watch(docker_client(env.docker_host), {name: env.project}, ctx)
    fleet = driver_branch_finding(settings.fleet.min_driver, facts, today)
    return reports, [fleet] if fleet else [], [e for r in reports for e in r.errors]


def _last_review(out_dir: Path) -> datetime | None:
    reports = sorted(out_dir.glob("review-*.json"))
    if not reports:
        return None
    day = json.loads(reports[-1].read_text()).get("date")
    return datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None


@task(name="alert", retries=2, retry_delay_seconds=[2, 10])
def send_alert(settings: Settings, subject: str, body: str) -> str:
    block = None
    if settings.alerts.block:
        from prefect.blocks.core import Block

        block = Block.load(settings.alerts.block)
    return alerts.send(subject, body, block=block, webhook_url=settings.webhook_url())


def _channel(settings: Settings) -> bool:
    return bool(settings.alerts.block or settings.webhook_url())


@task(name="push-metrics", retries=2, retry_delay_seconds=[2, 10])
def push_metrics(
    settings: Settings, reports: list[ContainerReport], extra: list[Finding], today: date, reports_dir: str
) -> str:
    if not settings.monitoring.pushgateway:
        return "no Pushgateway configured (monitoring.pushgateway)"
    where = Path(reports_dir)
    registry = metrics.registry_for(
        reports,
        today,
        _last_review(where),
        metrics.last_soak_verdicts(where),
        extra,
        environments=list(settings.environments),
    )
    metrics.push(settings.monitoring.pushgateway, registry)
    return f"pushed to {settings.monitoring.pushgateway}"


def _row(report: ContainerReport, today: date) -> dict[str, Any]:
    return {
        "environment": report.environment,
        "container": report.container,
        "image": report.image,
        "cuda": report.cuda_version,
        "config_eol": report.config_eol,
        "banner": bool(report.banner),
        "deprecated": report.deprecated,
        "estimated_deletion": str(report.estimated_deletion or ""),
        "days_to_deletion": report.days_to_deletion(today),
        "findings": [{"kind": f.kind, "severity": f.severity.label, "message": f.message} for f in report.findings],
    }


@flow(name="deprecation-watch")
def deprecation_watch(config_path: str | None = None, reports_dir: str | None = None) -> dict[str, Any]:
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    reports_path = Path(reports_dir) if reports_dir else settings.state_dir
    today = datetime.now(UTC).date()
    reports, extra, errors = scan_containers(settings, today)
    findings = [f for r in reports for f in r.findings] + extra
    rows = [_row(r, today) for r in reports]
    if findings:
        create_table_artifact(
            key="deprecation-watch",
            table=[
                {
                    "severity": f.severity.label,
                    "where": f"{f.environment}/{f.container}",
                    "image": f.image,
                    "kind": f.kind,
                    "message": f.message,
                }
                for f in sorted(findings, key=lambda f: (-f.severity, f.key))
            ],
            description=f"Deprecation-watch findings on {today}",
        )
    state = alerts.AlertState.load(reports_path / STATE_FILE)
    unchecked = {(r.environment, r.container) for r in reports if r.errors}
    moves = alerts.transitions(
        state.sent, findings, lambda s: s.kind in alerts.REGISTRY_KINDS and (s.environment, s.container) in unchecked
    )
    problems: list[str] = []
    sent = {"alert": "no new finding: no alert", "resolved": "nothing resolved"}
    done = {"alert": False, "resolved": False}
    for what, message in (("alert", alerts.alert_message(moves, today)), ("resolved", alerts.resolved_message(moves))):
        if message is None:
            continue
        if not _channel(settings):
            sent[what] = "no alert channel configured (alerts.block or alerts.webhook_url): NOT sent"
            continue
        outcome = send_alert(settings, *message, return_state=True)
        if outcome.is_completed():
            sent[what], done[what] = f"{what} sent: {outcome.result()}", True
        else:
            error = redactor(settings).redact(str(outcome.result(raise_on_failure=False)))
            sent[what] = f"{what} NOT sent ({error}); the next run sends it again"
            problems.append(sent[what])
    state.save(
        alerts.next_state(state.sent, moves, alerted=done["alert"], resolved=done["resolved"], now=alerts.now_iso()),
        alerts.now_iso(),
    )
    pushed = push_metrics(settings, reports, extra, today, str(reports_path))
    deprecated = [r for r in reports if r.deprecated]
    critical = sum(f.severity is Severity.CRITICAL for f in findings)
    incomplete = f"; incomplete: {len(errors)} registry look-up(s) failed" if errors else ""
    line = (
        f"{len(reports)} running containers, {len(deprecated)} deprecated, {len(findings)} findings "
        f"({critical} critical); {sent['alert']}; {sent['resolved']}{incomplete}"
    )
    log.info("%s; %s", line, pushed)
    for error in errors:
        log.warning("%s", error)
    record_outcome(line)
    if problems:
        raise BaseImageError("; ".join(problems))
    return {
        "containers": rows,
        "deprecated": len(deprecated),
        "findings": [
            {"key": f.key, "kind": f.kind, "severity": f.severity.label, "image": f.image, "message": f.message}
            for f in findings
        ],
        "alert": sent["alert"],
        "resolved": sent["resolved"],
        "transitions": {
            "appeared": [f.key for f in moves.appeared],
            "changed": [f.key for f, _ in moves.changed],
            "resolved": [k for k, _ in moves.resolved],
        },
        "errors": errors,
        "metrics": pushed,
        "state": str(state.path),
    }
