"""The rollback flow, automatic after a failed validation, staging deploy, soak or production
deploy, and ad hoc (`baseimage rollback --env ENV [--to IMAGE]`): keep the service logs as
evidence, put the previous image back through compose and check health, revert the migration
commit on a branch when it was merged, and open a tracker issue (GitHub, or a local report).

`to` must be an image the environment's ledger knows (it ran there, or was replaced there); any
other image only with `break_glass` and a reason, which is recorded and opens an incident.
Idempotent: a rollback has an id; running it again restores nothing twice, opens no second issue
and overwrites no evidence (each run's logs are kept in their own file)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from baseimage.settings import Settings, load_settings
from baseimage.wiring import github_client, redactor, target_of
from flows.outcome import record_outcome
from tasks.deploy.approvals import rollback_permission
from tasks.deploy.incident import incident_body, open_incident
from tasks.deploy.ledger import RESTORED, Ledger
from tasks.deploy.release import docker_client, image_record
from tasks.deploy.restore import RollbackError, restore, revert, stamp
from tasks.deploy.rollback_record import CodeRevert, EnvironmentRestore, RollbackRecord
from tasks.errors import ConfigError
from tasks.files import write_atomic
from tasks.images.reference import parse_reference

__all__ = ["RollbackError", "check_rollback_target", "rollback"]


def check_rollback_target(settings: Settings, environment: str, to: str, break_glass: bool, reason: str) -> str:
    """Why `to` may replace what `environment` runs: an image of its ledger, an approved one, or a
    break-glass with a reason (recorded); else ApprovalRequiredError before anything changes."""
    parse_reference(to)  # an ImageReferenceError names what is wrong with it
    target = target_of(settings, environment)
    client = docker_client(target.env.docker_host)
    image = image_record(client, to)
    return rollback_permission(settings.state_dir, environment, image, break_glass, reason)


@task(name="restore-environment")
def restore_environment(
    settings: Settings, environment: str, to: str | None, rollback_id: str, reason: str, evidence_dir: Path
) -> EnvironmentRestore:
    """Logs first (evidence), then the previous image (or `to`) back and healthy."""
    target = target_of(settings, environment)
    row = restore(
        docker_client(target.env.docker_host),
        target,
        Ledger(settings.state_dir, environment),
        to,
        rollback_id,
        reason,
        evidence_dir,
        redactor(settings),
    )
    get_run_logger().info("%s: %s %s (health %s)", environment, row.action, row.to, row.health)
    return row


@task(name="revert-code")
def revert_code(settings: Settings, branch: str | None, commit: str | None, reason: str = "") -> CodeRevert:
    """The migration commit reverted on a branch when it reached the base branch (see
    tasks.deploy.restore.revert); the remote's base is fetched first when GitHub is configured."""
    gh = settings.github
    return revert(
        settings.root,
        gh.base_branch if gh else "main",
        gh.remote if gh else None,
        branch,
        commit,
        reason,
        datetime.now(UTC).date(),
    )


@task(name="open-incident", retries=2, retry_delay_seconds=[2, 10])
def open_incident_task(settings: Settings, incident_id: str, title: str, body: str, known: str | None) -> str:
    """A GitHub issue when a repository and token are configured, else a local Markdown report;
    once per id."""
    return open_incident(settings.state_dir, incident_id, title, body, github_client(settings), known)


@flow(name="rollback")
def rollback(
    environments: list[str],
    reason: str = "ad hoc rollback",
    to: str | None = None,
    config_path: str | None = None,
    rollback_id: str | None = None,
    branch: str | None = None,
    commit: str | None = None,
    break_glass: bool = False,
) -> dict[str, Any]:
    """Put each environment (in the order given) back on its previous image, revert the migration
    commit if merged, keep the logs and open an incident; fails if an environment stays unhealthy."""
    settings = load_settings(Path(config_path) if config_path else None)
    for name in environments:
        target_of(settings, name)  # every name checked before anything changes
    if to is not None and len(environments) != 1:
        raise ConfigError("--to IMAGE applies to one environment: name exactly one with --env")
    allowed = check_rollback_target(settings, environments[0], to, break_glass, reason) if to else None
    log = get_run_logger()
    if allowed:
        log.info("rolling back to %s: %s", to, allowed)
    secret = redactor(settings)
    rid = rollback_id or f"{'-'.join(environments) or 'code'}-{stamp()}"
    evidence = settings.state_dir / "rollbacks" / rid
    record_path = evidence / "rollback.json"
    earlier = None
    if record_path.exists():  # an earlier run of this rollback id: its runs, its incident
        earlier = RollbackRecord.from_json(json.loads(record_path.read_text()), str(record_path))
    record = RollbackRecord(
        rid,
        secret.redact(reason),
        (*(earlier.runs if earlier else ()), stamp()),
        {"image": str(to), "why": allowed} if allowed else (earlier.to if earlier else None),
        incident=earlier.incident if earlier else None,
        path=str(record_path),
    )
    if not commit and environments:  # ad hoc: the migration the newest deploy (not a restore) came from
        deploys = [d for d in Ledger(settings.state_dir, environments[0]).history() if d.status != RESTORED]
        if deploys:
            branch, commit = deploys[-1].branch, deploys[-1].commit
    rows: list[EnvironmentRestore] = []
    failures: list[str] = []
    for name in environments:
        state = restore_environment(settings, name, to, rid, reason, evidence, return_state=True)
        if state.is_completed():
            rows.append(state.result())
        else:
            error = state.result(raise_on_failure=False)
            rows.append(EnvironmentRestore.failed(name, secret.redact(str(error))))
            failures.append(f"{name}: {error}")
    code = revert_code(settings, branch, commit, reason)
    title = f"baseimage rollback {rid}: {secret.redact(reason.splitlines()[0] if reason else '')[:120]}"
    body = incident_body(reason, rows, code, evidence, secret)
    if allowed and allowed.startswith("break-glass"):
        body = f"**{allowed}** (outside the ledger and without an approval)\n\n{body}"
    incident = open_incident_task(settings, rid, title, body, record.incident)
    record = replace(record, environments=tuple(rows), code=code, incident=incident)
    write_atomic(record_path, json.dumps(record.to_json(), indent=2, default=str) + "\n")
    create_markdown_artifact(key="rollback", markdown=f"# Rollback {rid}\n\nIncident: {incident}\n\n{body}")
    record_outcome(f"rollback {rid}: {record.summary}")
    if failures:
        raise RollbackError("rollback did not restore every environment: " + "; ".join(failures))
    log.info("rollback %s done: %s; incident %s", rid, "; ".join(r.action for r in rows), incident)
    return record.result()
