"""The migrate flow: research (or a given plan / --to) -> update (branch, rewrite, backup, commit,
PR) -> approval -> validation (the `validate` deployment on the gpu pool, or a subflow) ->
deployment (staging, soak, production approval, production, release notes, merge: see
flows/deployment.py). A rejection or a timed-out approval ends the run cleanly: the branch is kept,
the PR commented, the outcome recorded; a failure after the update runs the rollback flow."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.context import get_run_context

from baseimage.settings import Settings, github_token, load_settings
from flows.approvals import Decision, ask
from flows.deployment import deployment_phase, roll_back_migration
from flows.outcome import record_outcome
from tasks.errors import BaseImageError, RegistryUnreachableError
from tasks.research.report import write_atomic
from tasks.update import git
from tasks.update.apply import ApplyResult, MigrationPlan, apply_plan
from tasks.update.github import GitHub, GitHubRepo
from tasks.update.plans import from_report


@task(name="plan", cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def make_plan(config_path: str | None, to: str | None, report_path: str | None) -> MigrationPlan | None:
    settings = load_settings(Path(config_path) if config_path else None)
    requirements_of = {i.name: str(i.requirements) if i.requirements else None for i in settings.images}
    if to or report_path:
        report = json.loads(Path(report_path).read_text()) if report_path else None
        return _checked_plan(settings, to, report, requirements_of)
    from flows.quarterly_review import quarterly_review

    report = quarterly_review(config_path=config_path, sources="auto", update_docs=False, check_banner=False)
    for image in report["images"]:  # the report's file is relative to the repo for managed images
        image["file"] = str(image["file"])
    return from_report(report, requirements_of)


def _checked_plan(
    settings: Settings, to: str | None, report: dict[str, Any] | None, requirements_of: dict[str, str | None]
) -> MigrationPlan | None:
    """--to / --report checked against the registry and the index before anything is written; the
    bundled snapshot (said in the plan) when the network is unreachable."""
    from flows.quarterly_review import fetch_unsupported, make_transport, research_sources
    from tasks.registry.models import Platform
    from tasks.registry.session import RegistrySession
    from tasks.research.answers import checked_plan, managed_bases
    from tasks.research.pytorch_index import PyTorchIndex
    from tasks.update.plans import Rules

    facts, index_url = research_sources(settings, None)
    bases = managed_bases(settings.images, settings.path)
    rules = Rules(settings.fleet.min_driver, frozenset(settings.policy.allow_missing))
    first: RegistryUnreachableError | None = None
    for sources in ("live", "offline"):
        transport, description = make_transport(settings, sources, None, None)
        session = RegistrySession(
            mirrors=settings.registries.mirrors,
            credentials=settings.registry_credentials(),
            transport=transport,
            platform=Platform.parse(settings.registries.platform),
        )
        unsupported, _ = fetch_unsupported.fn(facts, transport, sources == "live")
        index = PyTorchIndex(index_url, transport)
        try:
            return checked_plan(
                to, report, requirements_of, bases, session, index, unsupported, facts, rules, description
            )
        except RegistryUnreachableError as exc:
            if first is not None:
                raise BaseImageError(
                    f"cannot check the plan: registry unreachable ({first}); bundled snapshot: {exc}"
                ) from exc
            first = exc
            get_run_logger().warning("registry unreachable (%s): checking the plan against the bundled snapshot", exc)
    return None


@task(name="update")
def update(repo: str, plan: MigrationPlan, dry_run: bool) -> ApplyResult:
    return apply_plan(Path(repo), plan, dry_run=dry_run)


@task(name="pull-request")
def open_pull_request(settings: Settings, plan: MigrationPlan, result: ApplyResult) -> dict[str, Any] | None:
    log = get_run_logger()
    if settings.github is None:
        log.info("no GitHub repository configured: branch %s stays local", result.branch)
        return None
    token = github_token(settings.github)
    if not token:
        log.warning(
            "no GitHub token (Secret block %s or $%s): branch %s stays local",
            settings.github.token_block,
            settings.github.token_env,
            result.branch,
        )
        return None
    git.push(settings.root, settings.github.remote, result.branch)
    body = (
        "## Plan\n\n"
        + plan.summary()
        + "\n\n## Why\n\n"
        + "\n".join(f"- {r}" for r in plan.reasons)
        + "\n\n## Remaining checklist\n\n- [ ] approval (update)\n- [ ] validation on the GPU pool\n"
        "- [ ] approval (production)\n- [ ] staging, soak, production\n"
    )
    github = GitHub(GitHubRepo.parse(settings.github.repository, settings.github.api_url), token)
    return github.open_pull_request(
        result.branch, settings.github.base_branch, f"Migrate base images: {result.branch.split('/', 1)[1]}", body
    )


def _validate(settings: Settings, plan: MigrationPlan, branch: str, mode: str) -> tuple[bool, str]:
    """`mode` is deployment, subflow or skip (auto already resolved)."""
    if mode == "skip":
        return True, "validation skipped (--validation skip)"
    dockerfiles = sorted({c.dockerfile for c in plan.changes})
    buildargs = {str(i.dockerfile): dict(i.build_args) for i in settings.images}
    if mode == "deployment":
        from prefect.deployments import run_deployment

        for dockerfile in dockerfiles:
            run: Any = run_deployment(
                name="validate/validate",
                parameters={
                    "context": str(settings.root),
                    "ref": branch,
                    "dockerfile": dockerfile,
                    "buildargs": buildargs.get(dockerfile, {}),
                    "config_path": str(settings.source.resolve()),
                    "out_dir": str(settings.state_dir),
                },
                timeout=None,
            )
            if run.state is None or not run.state.is_completed():
                return False, f"validation of {dockerfile} on the gpu pool ended {run.state.name if run.state else '?'}"
        return True, f"validated {', '.join(dockerfiles)} on the gpu pool"
    from flows.validate import validate

    with git.worktree(settings.root, branch, detach=False) as tree:
        for dockerfile in dockerfiles:
            state = validate(
                context=str(tree),
                dockerfile=dockerfile,
                buildargs=buildargs.get(dockerfile, {}),
                config_path=str(settings.source),
                out_dir=str(settings.state_dir),
                return_state=True,
            )
            if not state.is_completed():
                return False, f"validation of {dockerfile} failed: {state.message}"
    return True, f"validated {', '.join(dockerfiles)}"


def _record(outcome: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    run_id = _run_id()
    outcome["run"] = run_id
    outcome["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    path = out_dir / f"migrate-{run_id[:12]}.json"
    write_atomic(path, json.dumps(outcome, indent=2, default=str) + "\n")
    outcome["report"] = str(path)
    decisions = "\n".join(
        f"- {d['stage']}: {d['outcome']} by {d['reviewer'] or '-'} {d['comment']}" for d in outcome.get("decisions", [])
    )
    record_outcome(f"{outcome['outcome']} ({outcome.get('branch') or 'no branch'})")
    create_markdown_artifact(
        key="migration-outcome",
        markdown=f"# Migration: {outcome['outcome']}\n\nBranch `{outcome.get('branch')}`\n\n{decisions}\n",
    )
    return outcome


@flow(name="migrate")
def migrate(
    to: str | None = None,
    dry_run: bool = False,
    no_pr: bool = False,
    config_path: str | None = None,
    report_path: str | None = None,
    validation: str = "auto",
    out_dir: str = "reports",
    poll_interval_s: int = 10,
) -> dict[str, Any]:
    """Propose, approve, validate and approve a base-image migration; returns the outcome."""
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    if validation not in ("auto", "deployment", "subflow", "skip"):
        raise BaseImageError(f"validation={validation!r}: use auto, deployment, subflow or skip")
    plan = make_plan(config_path, to, report_path)
    if plan is None:
        return _record({"outcome": "no action: nothing to migrate"}, Path(out_dir))
    result = update(str(settings.root), plan, dry_run)
    outcome: dict[str, Any] = {
        "branch": result.branch,
        "commit": result.commit,
        "plan": plan.summary(),
        "files": result.files,
        "decisions": [],
    }
    if dry_run:
        print(result.diff)
        outcome.update(outcome="dry run: nothing changed", diff=result.diff)
        return outcome
    pr = None if no_pr else open_pull_request(settings, plan, result)
    outcome["pull_request"] = pr.get("html_url") if pr else None
    github = (
        GitHub(
            GitHubRepo.parse(settings.github.repository, settings.github.api_url), github_token(settings.github) or ""
        )
        if pr and settings.github
        else None
    )

    def stop(decision: Decision) -> dict[str, Any]:
        outcome["outcome"] = f"stopped at {decision.stage}: {decision.outcome}"
        if github and pr:
            github.comment(
                int(pr["number"]),
                f"{decision.stage} {decision.outcome} by {decision.reviewer or 'nobody'}"
                f"{': ' + decision.comment if decision.comment else ''}. The branch is kept.",
            )
        log.warning("migration %s; branch %s kept", outcome["outcome"], result.branch)
        return _record(outcome, Path(out_dir))

    timeout = settings.approvals.timeout_s
    summary = (
        f"## Approve the update?\n\nBranch `{result.branch}`\n\n{plan.summary()}\n\n```diff\n{result.diff[:6000]}\n```"
    )
    if "update" in settings.approvals.required_for:
        first = ask("update", summary, timeout, poll_interval_s)
    else:
        first = Decision("update", "approved", None, "not required (approvals.required_for)")
    outcome["decisions"].append(first.to_json())
    if not first.approved:
        return stop(first)
    if validation == "auto":  # on a server the GPU-bound steps go to the gpu pool
        validation = "deployment" if os.environ.get("PREFECT_API_URL") else "subflow"
    ok, message = _validate(settings, plan, result.branch, validation)
    outcome["validation"] = message
    run_id = _run_id()
    if not ok:
        reason = f"validation failed during migration to {result.branch}: {message}"
        outcome["rollback"], _ = roll_back_migration(settings, [], reason, run_id, result.branch, result.commit)
        outcome["outcome"] = f"validation failed: {message}"
        return _record(outcome, Path(out_dir))
    deployment_phase(settings, plan, result, outcome, run_id, pr, poll_interval_s, on_pool=validation == "deployment")
    return _record(outcome, Path(out_dir))


def _run_id() -> str:
    ctx = get_run_context()
    return str(getattr(getattr(ctx, "flow_run", None), "id", None) or "local")
