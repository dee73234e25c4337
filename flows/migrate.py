"""The migrate flow: research (or a given plan / --to) -> update (branch, rewrite, backup, commit,
PR) -> approval -> validation (the `validate` deployment on the gpu pool, or a subflow) ->
deployment (staging, soak, production approval, production, release notes, merge: see
flows/deployment.py). Every run makes its plan afresh (a retry of the same run reuses it); a
plan that does not match the repository stops before any approval. The run ends in a state that
says what happened: Completed only when it did what it was for, Cancelled(Rejected) for a "no",
Failed (named: TimedOut, NotProven, RolledBack, ...) otherwise; a failure after the update runs
the rollback flow."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext, get_run_context

from baseimage import wiring
from baseimage.settings import Settings, load_settings
from baseimage.wiring import github_client, redactor, registry_session
from flows.approvals import ask
from flows.deployment import STAGES, deployment_phase, roll_back_migration
from flows.outcome import cancel_on_termination, record_outcome, state_of
from tasks.errors import BaseImageError, RegistryUnreachableError
from tasks.files import write_atomic
from tasks.research.report_model import ReviewReport
from tasks.statuses import CheckStatus, DecisionOutcome
from tasks.update import git
from tasks.update.apply import ApplyResult, apply_plan
from tasks.update.approval_text import pull_request_body, update_description
from tasks.update.github import PullRequest
from tasks.update.outcome import Decision, MigrationOutcome, Result
from tasks.update.plan import MigrationPlan, NoMigration
from tasks.update.plans import from_report
from tasks.validation import ValidationReport


def plan_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Plans are made fresh by every run: the key holds the flow run's id, so only a retry of the
    same run (same id) gets the plan back; a new run always asks the registry and the policy again."""
    run_id = context.task_run.flow_run_id
    if run_id is None:
        return None
    inputs = json.dumps(parameters, sort_keys=True, default=str)
    return f"migrate-plan-{run_id}-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}"


@task(name="plan", cache_key_fn=plan_key, persist_result=True)
def make_plan(config_path: str | None, to: str | None, report_path: str | None) -> MigrationPlan | NoMigration:
    settings = load_settings(Path(config_path) if config_path else None)
    requirements_of = {i.name: str(i.requirements) if i.requirements else None for i in settings.images}
    if to or report_path:
        report = ReviewReport.read(Path(report_path)) if report_path else None
        plan = _checked_plan(settings, to, report, requirements_of)
        if plan is not None:
            return wiring.with_repository_facts(plan, settings)
        if report is not None and report.offline:  # its "nothing due" was the snapshot's
            return NoMigration.in_offline_report(report.source)
        return NoMigration()
    from flows.quarterly_review import quarterly_review

    down = wiring.network_down(settings)
    if down:  # as `review` and `--to` do: said loudly, and the plan carries it
        get_run_logger().warning("registry unreachable (%s): planning against the bundled snapshot", down)
    sources = "offline" if down else "live"
    reviewed = quarterly_review(config_path=config_path, sources=sources, update_docs=False, check_banner=False)
    plan = from_report(ReviewReport.from_json(reviewed, "this run's review"), requirements_of)
    if plan is None:  # nothing due: on the snapshot that says nothing of today's registry
        return NoMigration.on_snapshot(down) if down else NoMigration()
    return wiring.with_repository_facts(plan.on_snapshot(down) if down else plan, settings)


def _checked_plan(
    settings: Settings, to: str | None, report: ReviewReport | None, requirements_of: dict[str, str | None]
) -> MigrationPlan | None:
    """--to / --report checked against the registry and the index before anything is written; the
    bundled snapshot (said in the plan) when the network is unreachable."""
    from tasks.research.answers import checked_plan, managed_bases
    from tasks.research.support import unsupported_or_bundled

    facts, index_url = wiring.research_sources(settings, None)
    bases = managed_bases(settings.images, settings.path)
    rules = wiring.plan_rules(settings)
    first: RegistryUnreachableError | None = None
    for sources in ("live", "offline"):
        transport, description = wiring.make_transport(settings, sources, None, None)
        session = registry_session(settings, transport)
        unsupported, _ = unsupported_or_bundled(facts, transport if sources == "live" else None)
        index = wiring.wheel_index(index_url, transport)
        try:
            plan = checked_plan(
                to, report, requirements_of, bases, session, index, unsupported, facts, rules, description
            )
            return plan.on_snapshot(first) if plan is not None and first is not None else plan
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
    from tasks.http import HttpTransport
    from tasks.update.hashes import IndexHashes

    # A changed pin's --hash values come from the index the requirements file names.
    result = apply_plan(Path(repo), plan, dry_run=dry_run, hashes=IndexHashes(HttpTransport()))
    for note in result.notes:
        get_run_logger().info("%s", note)
    for warning in result.warnings:
        get_run_logger().warning("%s", warning)
    return result


@task(name="pull-request")
def open_pull_request(settings: Settings, plan: MigrationPlan, result: ApplyResult) -> PullRequest | None:
    log = get_run_logger()
    if settings.github is None:
        log.info("no GitHub repository configured: branch %s stays local", result.branch)
        return None
    github = github_client(settings)
    if github is None:
        log.warning(
            "no GitHub token (Secret block %s or $%s): branch %s stays local",
            settings.github.token_block,
            settings.github.token_env,
            result.branch,
        )
        return None
    git.push(settings.root, settings.github.remote, result.branch)
    title = f"Migrate base images: {result.branch.split('/', 1)[1]}"
    return github.open_pull_request(result.branch, settings.github.base_branch, title, pull_request_body(plan))


def _validate(settings: Settings, plan: MigrationPlan, result: ApplyResult, mode: str) -> ValidationReport:
    """`mode` is deployment, subflow or skip (auto already resolved). Every candidate is built with
    the build args the migration commit gives it (a migration may move them)."""
    if mode == "skip":
        return ValidationReport.skipped()
    branch = result.branch
    dockerfiles = sorted({c.dockerfile for c in plan.changes})
    current = {str(i.dockerfile): dict(i.build_args) for i in settings.images}
    buildargs = {d: result.build_args.get(d, current.get(d, {})) for d in dockerfiles}
    summaries: list[dict[str, Any]] = []
    if mode == "deployment":
        from prefect.deployments import run_deployment

        for dockerfile in dockerfiles:
            run: Any = run_deployment(
                name="validate/validate",
                parameters={
                    "context": str(settings.root),
                    "ref": branch,
                    "dockerfile": dockerfile,
                    "buildargs": buildargs[dockerfile],
                    "config_path": str(settings.source.resolve()),
                    "out_dir": str(settings.state_dir),
                    "environment": plan.environment,
                },
                timeout=None,
            )
            summaries.append(_summary(run.state, dockerfile))
        return ValidationReport.from_summaries(summaries, "deployment")
    from flows.validate import validate

    with git.worktree(settings.root, branch) as tree:
        for dockerfile in dockerfiles:
            state = validate(
                context=str(tree),
                dockerfile=dockerfile,
                buildargs=buildargs[dockerfile],
                config_path=str(settings.source),
                out_dir=str(settings.state_dir),
                environment=plan.environment,
                return_state=True,
            )
            summaries.append(_summary(state, dockerfile))
    return ValidationReport.from_summaries(summaries, "subflow")


def _with_plan_variables(settings: Settings, plan: MigrationPlan) -> Settings:
    """Every environment deploys this plan with its variables (BASEIMAGE_ONNX_OPSET) added to the
    environment's own, so compose hands them to the training service."""
    if not plan.environment:
        return settings
    environments = {
        name: env.model_copy(update={"variables": {**env.variables, **plan.environment}})
        for name, env in settings.environments.items()
    }
    return settings.model_copy(update={"environments": environments})


def _summary(state: State | None, dockerfile: str) -> dict[str, Any]:
    """The validate run's summary, from its result (also when it ended Failed)."""
    data = state.result(raise_on_failure=False) if state is not None else None
    if isinstance(data, dict) and "checks" in data:
        return data
    name = state.name if state is not None else "?"
    message = str(data) if isinstance(data, BaseException) else str(state.message if state else "no state")
    return {
        "candidate": dockerfile,
        "checks": [
            {
                "name": "validate-run",
                "status": CheckStatus.FAILED.value,
                "message": f"the validate run ended {name}: {message}",
            }
        ],
    }


def _run_id() -> str:
    ctx = get_run_context()
    return str(getattr(getattr(ctx, "flow_run", None), "id", None) or "local")


def _finish(outcome: MigrationOutcome, out_dir: Path) -> State:
    """Record the outcome (JSON, artifact, history line) and return the run's final state."""
    path = out_dir / f"migrate-{outcome.run[:12]}.json"
    outcome = replace(outcome, report=str(path))
    write_atomic(path, json.dumps(outcome.to_json(), indent=2, default=str) + "\n")
    decisions = "\n".join(f"- {d.stage}: {d.outcome} by {d.reviewer or '-'} {d.comment}" for d in outcome.decisions)
    record_outcome(f"{outcome.line()} ({outcome.branch or 'no branch'})")
    validation = f"\n\n{outcome.validation.line()}" if outcome.validation else ""
    warnings = "".join(f"\n- warning: {w}" for w in outcome.warnings)
    create_markdown_artifact(
        key="migration-outcome",
        markdown=f"# Migration: {outcome.summary}\n\nBranch `{outcome.branch}`{validation}\n\n{decisions}\n{warnings}",
    )
    return state_of(outcome)


@flow(name="migrate", on_crashed=[cancel_on_termination])
def migrate(
    to: str | None = None,
    dry_run: bool = False,
    no_pr: bool = False,
    config_path: str | None = None,
    report_path: str | None = None,
    validation: str = "auto",
    out_dir: str = "reports",
    poll_interval_s: int = 10,
    terminal_approvals: bool = False,
) -> State[Any]:
    """Propose, approve, validate and deploy a base-image migration; the run's state says how it
    ended and carries the outcome (see tasks.update.outcome)."""
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    if validation not in ("auto", "deployment", "subflow", "skip"):
        raise BaseImageError(f"validation={validation!r}: use auto, deployment, subflow or skip")
    run_id, out = _run_id(), Path(out_dir)
    secret = redactor(settings)
    plan = make_plan(config_path, to, report_path)
    warnings = tuple(secret.redact(w) for w in plan.warnings)  # a plan's, or what nothing-due must say
    for warning in warnings:
        log.warning("%s", warning)
    if isinstance(plan, NoMigration):
        return _finish(MigrationOutcome(Result.NOTHING_TO_DO, plan.summary, run_id, warnings=warnings), out)
    result = update(str(settings.root), plan, dry_run)  # a stale or empty plan fails the run here
    shown = secret.redact(result.diff)
    base = MigrationOutcome(
        Result.DRY_RUN,
        "dry run: nothing changed",
        run_id,
        result.branch,
        result.commit,
        plan.summary(),
        tuple(result.files),
        warnings=(*warnings, *(secret.redact(w) for w in result.warnings)),
    )
    if dry_run:
        print(shown)
        return _finish(replace(base, diff=shown), out)
    pr = None if no_pr else open_pull_request(settings, plan, result)
    base = replace(base, pull_request=pr.url if pr else None)
    github = github_client(settings) if pr else None
    decisions: list[Decision] = []

    def comment(text: str) -> None:
        if github and pr:
            github.comment(pr.number, secret.redact(text))

    def stopped(result_kind: Result, summary: str, **more: Any) -> State:
        log.warning("migration %s; branch %s kept", summary, result.branch)
        return _finish(replace(base, result=result_kind, summary=summary, decisions=tuple(decisions), **more), out)

    if "update" in settings.approvals.required_for:
        base_name = settings.github.base_branch if settings.github else git.current_branch(settings.root)
        first = ask(
            "update",
            update_description(plan, result, pr.url if pr else None, base_name, shown),
            settings.approvals.timeout_s,
            poll_interval_s,
            terminal=terminal_approvals,
        )
    else:
        first = Decision("update", DecisionOutcome.NOT_REQUIRED, None, "approvals.required_for does not list update")
    decisions.append(first)
    if not first.approved:
        comment(f"update {first.outcome} by {first.reviewer or 'nobody'}: {first.comment}. The branch is kept.")
        kind = Result.REJECTED if first.outcome == DecisionOutcome.REJECTED else Result.TIMED_OUT
        return stopped(kind, f"stopped at update: {first.outcome}")
    if validation == "auto":  # on a server the GPU-bound steps go to the gpu pool
        validation = "deployment" if os.environ.get("PREFECT_API_URL") else "subflow"
    report = _validate(settings, plan, result, validation)
    base = replace(base, validation=report)
    comment(f"Validation of `{result.branch}`: {report.line()}")
    if not report.ok:
        why = f"validation failed during migration to {result.branch}: {report.counts()}"
        record, failure = roll_back_migration(settings, [], why, run_id, result.branch, result.commit)
        kind = Result.ROLLBACK_FAILED if failure else Result.ROLLED_BACK
        return stopped(kind, f"validation failed: {report.counts()}", rollback=record)
    missing = [s for s in STAGES if s not in settings.environments]
    if missing:
        done = ("validation skipped", Result.UPDATED) if report.mode == "skip" else ("validated", Result.VALIDATED)
        return _finish(
            replace(
                base,
                result=done[1],
                summary=f"{done[0]}; nothing deployed: no {' or '.join(missing)} environment in {settings.source} "
                "(environments:)",
                decisions=tuple(decisions),
            ),
            out,
        )
    if settings.policy.require_gpu and not report.proven_on_gpu:
        return stopped(
            Result.NOT_PROVEN,
            f"not proven on a GPU ({report.counts()}): policy.require_gpu is true, so this release cannot reach "
            "production; validate on the gpu pool (a worker with an NVIDIA GPU) or set policy.require_gpu: false",
        )
    phase = deployment_phase(
        _with_plan_variables(settings, plan),
        plan,
        result,
        report,
        first.reviewer,
        run_id,
        pr,
        poll_interval_s,
        on_pool=validation == "deployment",
        terminal_approvals=terminal_approvals,
    )
    decisions.extend(phase.decisions)
    return _finish(
        replace(
            base,
            result=phase.result,
            summary=phase.summary,
            decisions=tuple(decisions),
            image=phase.image,
            soak=phase.soak,
            rollback=phase.rollback,
            release_commit=phase.release_commit,
            merge=phase.merge,
        ),
        out,
    )
