"""The rollback flow, automatic after a failed validation, staging deploy, soak or production
deploy, and ad hoc (`baseimage rollback --env ENV [--to IMAGE]`): keep the service logs as
evidence, put the previous image back through compose and check health, revert the migration
commit on a branch when it was merged, and open a tracker issue (GitHub, or a local report).

Idempotent: a rollback has an id; running it again restores nothing twice, opens no second issue
and overwrites no evidence (each run's logs are kept in their own file)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from baseimage.settings import Settings, github_token, load_settings
from flows.outcome import record_outcome
from tasks.deploy.ledger import RESTORED, ImageRecord, Ledger
from tasks.deploy.release import (
    DeployError,
    Target,
    deploy,
    docker_client,
    logs,
    restorable,
    rollback_target,
    running_image,
    wait_healthy,
)
from tasks.errors import BaseImageError, ConfigError
from tasks.images.reference import parse_reference
from tasks.research.report import write_atomic
from tasks.update import git
from tasks.update.apply import POLICY_DOC, rollback_changelog
from tasks.update.github import GitHub, GitHubRepo


class RollbackError(BaseImageError):
    """An environment did not come back healthy; the evidence is kept and the message says where."""


def target_of(settings: Settings, environment: str) -> Target:
    if environment not in settings.environments:
        raise ConfigError(
            f"no environment {environment!r} in {settings.source}: "
            f"one of {', '.join(sorted(settings.environments)) or 'none'}"
        )
    env = settings.environments[environment]
    return Target(environment, env, settings.path(env.compose_file))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


@task(name="restore-environment")
def restore_environment(
    settings: Settings, environment: str, to: str | None, rollback_id: str, reason: str, evidence_dir: Path
) -> dict[str, Any]:
    """Logs first (evidence), then the previous image (or `to`) back and healthy."""
    log = get_run_logger()
    target = target_of(settings, environment)
    client = docker_client(target.env.docker_host)
    ledger = Ledger(settings.state_dir, environment)
    current = running_image(client, target)
    text = logs(target, current.image if current else (to or "none"))
    log_file = evidence_dir / f"{environment}-logs-{_stamp()}.txt"
    write_atomic(log_file, text)
    row: dict[str, Any] = {
        "environment": environment,
        "from": current.describe() if current else None,
        "logs": str(log_file),
        "log_tail": text.splitlines()[-40:],
    }
    if to:
        desired: ImageRecord | None = ImageRecord(to)
        last = ledger.last()
    else:
        desired, last = rollback_target(ledger)
    if desired is None:
        if last is not None and last.status == RESTORED:
            wait_healthy(client, target)
            row.update(action="none: already rolled back", to=last.image.describe(), health="ok")
            log.info("%s: already rolled back to %s (%s)", environment, last.image.describe(), last.note)
            return row
        raise RollbackError(
            f"{environment}: no previous image recorded in {ledger.path}; name one with "
            f"`baseimage rollback --env {environment} --to IMAGE`"
        )
    if current and desired.image_id and current.image_id == desired.image_id:
        wait_healthy(client, target)
        row.update(action="none: already running it", to=desired.describe(), health="ok")
        return row
    reference = to if to else restorable(client, desired, environment)
    try:
        restored = deploy(client, target, reference, ledger, status=RESTORED, note=f"rollback {rollback_id}: {reason}")
    except DeployError as exc:
        write_atomic(evidence_dir / f"{environment}-restore-failed-{_stamp()}.txt", exc.logs)
        raise RollbackError(
            f"{environment}: restoring {reference} did not end healthy: {exc}; evidence in {evidence_dir}"
        ) from exc
    row.update(action="restored", to=restored.image.describe(), health="ok")
    log.info("%s: restored %s (health ok)", environment, restored.image.describe())
    return row


@task(name="revert-code")
def revert_code(settings: Settings, branch: str | None, commit: str | None, reason: str = "") -> dict[str, Any]:
    """When the migration commit reached the base branch: on ``baseimage/rollback-<commit>`` (from
    the base branch), the files it changed as they were before it (Dockerfiles, requirements; the
    backups and the changelogs stay) and a "Rolled back" CHANGELOG entry, for review and merge."""
    if not commit:
        return {"action": "none: no migration commit given"}
    repo = settings.root
    base = git.base_branch(repo, settings.github.base_branch if settings.github else "main")
    if not git.is_ancestor(repo, commit, base):
        return {
            "action": f"none: {branch or commit[:12]} is not merged into {base}; {base} is unchanged",
            "branch": branch,
        }
    name = f"baseimage/rollback-{commit[:12]}"
    if git.branch_exists(repo, name):
        return {"action": f"none: {name} already holds the revert", "branch": name}
    changed = git.git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", commit).split()
    keep = {"CHANGELOG.md", POLICY_DOC}
    files: dict[str, str] = {}
    for rel in changed:
        before = git.show(repo, f"{commit}^", rel)
        if rel not in keep and not rel.endswith(".bak") and before is not None:
            files[rel] = before
    today = datetime.now(UTC).date()
    label = branch or commit[:12]
    files["CHANGELOG.md"] = rollback_changelog(git.show(repo, base, "CHANGELOG.md"), label, reason, today)
    git.git(repo, "branch", name, base)
    try:
        sha = git.commit_on_branch(repo, name, files, f"baseimage: roll back {branch or commit[:12]}\n\n{reason}\n")
    except BaseException:
        git.git(repo, "branch", "-D", name, check=False)
        raise
    restored = ", ".join(sorted(f for f in files if f != "CHANGELOG.md"))
    return {
        "action": f"reverted {commit[:12]} on {name} (from {base}: {restored}); review and merge it",
        "branch": name,
        "commit": sha,
    }


def _incident_body(reason: str, rows: list[dict[str, Any]], code: dict[str, Any], evidence: Path) -> str:
    lines = [f"## What failed\n\n{reason}\n", "## Environments\n"]
    for row in rows:
        lines.append(
            f"- **{row['environment']}**: {row.get('action', 'failed')}; from {row.get('from')} to "
            f"{row.get('to', '-')}; health {row.get('health', 'NOT OK')}"
        )
        if row.get("error"):
            lines.append(f"  - error: {row['error']}")
    lines.append(f"\n## Code\n\n{code.get('action')}\n")
    lines.append(f"## Evidence\n\nKept in `{evidence}`.\n")
    for row in rows:
        if row.get("log_tail"):
            lines.append(f"### {row['environment']} logs (tail)\n\n```\n" + "\n".join(row["log_tail"]) + "\n```\n")
    return "\n".join(lines)


@task(name="open-incident", retries=2, retry_delay_seconds=[2, 10])
def open_incident(settings: Settings, rollback_id: str, title: str, body: str, known: str | None) -> str:
    """A GitHub issue when a repository and token are configured, else a local Markdown report;
    once per rollback id."""
    if known:
        return known
    if settings.github is not None:
        token = github_token(settings.github)
        if token:
            github = GitHub(GitHubRepo.parse(settings.github.repository, settings.github.api_url), token)
            issue = github.open_issue(title, body, ["baseimage", "rollback"])
            return str(issue.get("html_url") or issue.get("url"))
    path = settings.state_dir / "incidents" / f"{rollback_id}.md"
    if not path.exists():
        write_atomic(path, f"# {title}\n\n{body}")
    return str(path)


@flow(name="rollback")
def rollback(
    environments: list[str],
    reason: str = "ad hoc rollback",
    to: str | None = None,
    config_path: str | None = None,
    rollback_id: str | None = None,
    branch: str | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """Put each environment (in the order given) back on its previous image, revert the migration
    commit if merged, keep the logs and open an incident; fails if an environment stays unhealthy."""
    settings = load_settings(Path(config_path) if config_path else None)
    for name in environments:
        target_of(settings, name)  # every name checked before anything changes
    if to is not None and len(environments) != 1:
        raise ConfigError("--to IMAGE applies to one environment: name exactly one with --env")
    if to is not None:
        parse_reference(to)  # an ImageReferenceError names what is wrong with it
    log = get_run_logger()
    rid = rollback_id or f"{'-'.join(environments) or 'code'}-{_stamp()}"
    evidence = settings.state_dir / "rollbacks" / rid
    record_path = evidence / "rollback.json"
    record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.exists() else {}
    record.update(id=rid, reason=reason, runs=[*record.get("runs", []), _stamp()])
    if not commit and environments:  # ad hoc: the migration the newest deploy (not a restore) came from
        deploys = [d for d in Ledger(settings.state_dir, environments[0]).history() if d.status != RESTORED]
        if deploys:
            branch, commit = deploys[-1].branch, deploys[-1].commit
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for name in environments:
        state = restore_environment(settings, name, to, rid, reason, evidence, return_state=True)
        if state.is_completed():
            rows.append(state.result())
        else:
            error = state.result(raise_on_failure=False)
            rows.append({"environment": name, "action": "FAILED", "error": str(error)})
            failures.append(f"{name}: {error}")
    code = revert_code(settings, branch, commit, reason)
    record.update(environments=rows, code=code)
    title = f"baseimage rollback {rid}: {reason.splitlines()[0][:120]}"
    body = _incident_body(reason, rows, code, evidence)
    record["incident"] = open_incident(settings, rid, title, body, record.get("incident"))
    write_atomic(record_path, json.dumps(record, indent=2, default=str) + "\n")
    create_markdown_artifact(key="rollback", markdown=f"# Rollback {rid}\n\nIncident: {record['incident']}\n\n{body}")
    record_outcome(
        f"rollback {rid}: "
        + ("; ".join(f"{r['environment']} {r['action']}" for r in rows) or "no environment")
        + f"; code: {code['action']}"
    )
    if failures:
        raise RollbackError("rollback did not restore every environment: " + "; ".join(failures))
    log.info("rollback %s done: %s; incident %s", rid, "; ".join(r["action"] for r in rows), record["incident"])
    return {**record, "record": str(record_path)}
