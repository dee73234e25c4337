"""The deployment phase of a migration, after validation: build the release image from the
migration commit, deploy staging, soak it, ask for the production approval with the soak report,
record that approval, deploy production, write the release into CHANGELOG.md and the policy
document, merge the branch. Any failure on the way runs the rollback flow for what was deployed;
a rejection rolls staging back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task

from baseimage.settings import Settings
from baseimage.wiring import build_args_at, github_client, target_of
from flows.approvals import ask, ui_link
from flows.retain import ensure_bases, retain_release
from flows.rollback import rollback
from flows.soak_monitor import soak_monitor
from tasks import containers
from tasks.deploy.approvals import ApprovalRecord, ApprovalRequiredError, Approvals
from tasks.deploy.ledger import Ledger
from tasks.deploy.release import deploy, docker_client, image_record
from tasks.deploy.rollback_record import RollbackRecord
from tasks.errors import ConfigError
from tasks.monitoring.soak_report import SoakReport
from tasks.statuses import DecisionOutcome
from tasks.update import git
from tasks.update.apply import ApplyResult
from tasks.update.approval_text import production_description
from tasks.update.changelog import release_files
from tasks.update.github import PullRequest
from tasks.update.outcome import Decision, Result
from tasks.update.plan import MigrationPlan
from tasks.validation import ValidationReport

STAGES = ("staging", "production")
RELEASE_LABEL = "baseimage.release"
SOAK_RESTARTS = 2  # a soak run that crashed (its worker died) is started again this often


@dataclass
class Phase:
    """What the deployment phase did; the migrate flow freezes it into the outcome."""

    result: Result
    summary: str
    decisions: list[Decision] = field(default_factory=list)
    image: str | None = None
    soak: SoakReport | None = None
    rollback: RollbackRecord | None = None
    release_commit: str | None = None
    merge: str | None = None


@task(name="build-release")
def build_release(settings: Settings, environment: str, branch: str, commit: str) -> str:
    """The environment's managed image built from the migration commit, tagged with it (once)."""
    import docker.errors

    log = get_run_logger()
    image = settings.environment_image(environment)
    tag = f"baseimage/{image.name}:{commit[:12]}"
    client = docker_client(settings.environments[environment].docker_host)
    try:
        client.images.get(tag)
        log.info("release image %s already built", tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    with git.worktree(settings.root, commit) as tree:
        args = build_args_at(settings, image.name, tree)
        for note in ensure_bases(settings, client, (tree / image.dockerfile).read_text(), str(image.dockerfile), args):
            log.warning("%s", note)  # a base NVIDIA deleted comes from registries.retain_to
        for base in containers.build_bases(tree / image.dockerfile, args):
            log.info("base %s", containers.ensure_local(client, base, settings.registries.mirrors))
        built = containers.build_image(
            client,
            tree,
            str(image.dockerfile),
            tag,
            {RELEASE_LABEL: branch},
            args,
            on_line=lambda line: log.info("build | %s", line),
        )
    log.info("built %s from %s in %.1f s", tag, commit[:12], built.seconds)
    return tag


def require_approval(settings: Settings, environment: str, image: str) -> ApprovalRecord | None:
    """A protected environment (production) changes only to an image with a recorded approval."""
    if not settings.protected(environment):
        return None
    client = docker_client(settings.environments[environment].docker_host)
    found = Approvals(settings.state_dir, environment).find(image_record(client, image))
    if found is None:
        raise ApprovalRequiredError(
            f"{environment}: {image} has no recorded approval in "
            f"{Approvals(settings.state_dir, environment).path}; release it through `baseimage migrate` "
            f"(its production approval records it) or deploy with --break-glass --reason TEXT"
        )
    return found


@task(name="deploy-environment")
def deploy_environment(settings: Settings, environment: str, image: str, run: str, branch: str, commit: str) -> Any:
    require_approval(settings, environment, image)
    target = target_of(settings, environment)
    record = deploy(
        docker_client(target.env.docker_host),
        target,
        image,
        Ledger(settings.state_dir, environment),
        run=run,
        branch=branch,
        commit=commit,
    )
    was = record.previous.describe() if record.previous else "nothing"
    get_run_logger().info("%s now runs %s (was %s)", environment, record.image.describe(), was)
    return asdict(record)


@task(name="release-notes")
def release_notes(settings: Settings, plan: MigrationPlan, branch: str, note: str) -> str | None:
    """Commit the CHANGELOG.md release section and the policy row's new status on the branch."""
    today = datetime.now(UTC).date()
    files = release_files(lambda rel: git.show(settings.root, branch, rel), plan, today, note)
    if not files:
        return None
    message = f"baseimage: {branch.split('/', 1)[1]} deployed to production\n\n{note}\n"
    return git.commit_on_branch(settings.root, branch, {rel: new for rel, (_old, new) in files.items()}, message)


@task(name="merge-branch")
def merge_branch(settings: Settings, branch: str, pr: PullRequest | None) -> str:
    """The pull request merged through the GitHub API when there is one (then the remote's base is
    fetched, so this checkout and a later rollback see the merge), else a local fast-forward."""
    github = github_client(settings)
    if pr and settings.github and github:
        git.push(settings.root, settings.github.remote, branch)  # the release notes commit
        sha = github.merge_pull_request(pr.number)
        tip = git.fetch_base(settings.root, settings.github.remote, settings.github.base_branch)
        seen = (
            f"; {settings.github.remote}/{settings.github.base_branch} now at {tip[:12]}"
            if tip
            else (f"; could not fetch {settings.github.remote}: pull {settings.github.base_branch} by hand")
        )
        return f"merged pull request #{pr.number} ({sha[:12] or 'already merged'}){seen}"
    base = git.base_branch(settings.root, settings.github.base_branch if settings.github else "main")
    tip = git.fast_forward(settings.root, base, branch)
    return f"fast-forwarded {base} to {branch} ({tip[:12]})"


def deployment_phase(
    settings: Settings,
    plan: MigrationPlan,
    result: ApplyResult,
    validation: ValidationReport,
    update_reviewer: str | None,
    run_id: str,
    pr: PullRequest | None,
    poll_interval_s: int,
    on_pool: bool = False,
    terminal_approvals: bool = False,
) -> Phase:
    """Staging, soak, production approval, production. With `on_pool` the soak runs as the
    `soak-monitor` deployment (the gpu pool), else as a subflow here."""
    log = get_run_logger()
    branch, commit = result.branch, str(result.commit or git.git(settings.root, "rev-parse", result.branch).strip())
    deployed: list[str] = []
    phase = Phase(Result.DEPLOYED, "")

    def roll_back(stage: str, reason: str) -> Phase:
        log.error("%s failed: %s; rolling back %s", stage, reason, ", ".join(reversed(deployed)) or "the code")
        why = f"{stage} failed during migration to {branch}: {reason}"
        phase.rollback, failure = roll_back_migration(settings, list(reversed(deployed)), why, run_id, branch, commit)
        if failure:
            phase.result, phase.summary = (
                Result.ROLLBACK_FAILED,
                f"{stage} failed: {reason}; ROLLBACK FAILED ({failure})",
            )
        else:
            phase.result, phase.summary = Result.ROLLED_BACK, f"{stage} failed: {reason}; rolled back"
        return phase

    build = build_release(settings, "staging", branch, commit, return_state=True)
    if not build.is_completed():
        return roll_back("release build", _reason(build))
    image = build.result()
    phase.image = image
    if settings.registries.retain_to:  # what a rollback or rebuild needs, kept before anything changes
        kept = retain_release(settings, "staging", image, commit, run_id, return_state=True)
        if not kept.is_completed():
            return roll_back("retaining the release and its bases", _reason(kept))
    deployed.append("staging")
    staged = deploy_environment(settings, "staging", image, run_id, branch, commit, return_state=True)
    if not staged.is_completed():
        return roll_back("staging deploy", _reason(staged))
    soak = _soak(settings, run_id, on_pool)
    if not soak.is_completed():
        return roll_back("staging soak", _reason(soak))
    try:
        report = SoakReport.from_json(soak.result(), f"soak-monitor run {soak.state_details.flow_run_id}")
    except ConfigError as exc:  # not a verdict: staging is not proven, so it goes back
        return roll_back("staging soak", str(exc))
    phase.soak = report
    if not report.passed:
        return roll_back("staging soak", f"{report.status}: {'; '.join(report.reasons)}")
    staged_image = image_record(docker_client(settings.environments["staging"].docker_host), image)
    run_page = ui_link(report.run) if report.run else None
    soak_link = f"{run_page}?tab=Artifacts" if run_page else None
    decision = ask(
        "production",
        production_description(plan, validation, image, staged_image.image_id, staged_image.digest, report, soak_link),
        settings.approvals.timeout_s,
        poll_interval_s,
        not_by=update_reviewer if settings.approvals.distinct_reviewers else None,
        terminal=terminal_approvals,
    )
    phase.decisions.append(decision)
    if not decision.approved:
        who = decision.reviewer or "nobody"
        done = roll_back("production approval", f"{decision.outcome} by {who} {decision.comment}".strip())
        if done.result is Result.ROLLED_BACK:
            done.result = Result.REJECTED if decision.outcome == DecisionOutcome.REJECTED else Result.TIMED_OUT
            done.summary = f"stopped at production: {decision.outcome}; staging rolled back"
        return done
    Approvals(settings.state_dir, "production").record(
        ApprovalRecord(
            "production", image, staged_image.image_id, decision.reviewer or "?", comment=decision.comment, run=run_id
        )
    )
    envs = settings.environments
    if envs["production"].docker_host != envs["staging"].docker_host:
        # Another Docker host: the same commit is built there (or found, when a registry carried it).
        log.warning("production is on %s: building %s there from %s", envs["production"].docker_host, image, commit)
        there = build_release(settings, "production", branch, commit, return_state=True)
        if not there.is_completed():
            return roll_back("release build on the production host", _reason(there))
        built = image_record(docker_client(envs["production"].docker_host), image)
        Approvals(settings.state_dir, "production").record(
            ApprovalRecord(
                "production", image, built.image_id, decision.reviewer or "?", comment="same commit", run=run_id
            )
        )
    deployed.append("production")
    prod = deploy_environment(settings, "production", image, run_id, branch, commit, return_state=True)
    if not prod.is_completed():
        return roll_back("production deploy", _reason(prod))
    today = datetime.now(UTC).date().isoformat()
    note = (
        f"deployed to production {today} (approved by {decision.reviewer}; staging soak passed with "
        f"{report.samples} samples; {validation.line()}; image `{image}`)"
    )
    # Production runs the release from here on: a failure below is reported, never rolled back.
    notes = release_notes(settings, plan, branch, note, return_state=True)
    if notes.is_completed():
        phase.release_commit = notes.result()
        merged = merge_branch(settings, branch, pr, return_state=True)
        if merged.is_completed():
            phase.merge = merged.result()
        else:
            phase.merge = f"not merged: {_reason(merged)}; merge by hand"
    else:
        phase.merge = f"not merged: release notes not written ({_reason(notes)}); write them and merge by hand"
    phase.summary = f"deployed to production: {image}"
    if phase.merge.startswith("not merged"):
        phase.result = Result.NOT_MERGED
        phase.summary += "; branch NOT merged (see merge)"
    return phase


def roll_back_migration(
    settings: Settings, environments: list[str], reason: str, run_id: str, branch: str, commit: str | None
) -> tuple[RollbackRecord, str | None]:
    """The rollback flow for migration run `run_id` (one rollback id per migration, so a re-run of
    it is a no-op); returns its record (or the error) and None, or why it failed."""
    rid = f"migrate-{run_id[:12]}"
    state = rollback(
        environments=environments,
        reason=reason,
        config_path=str(settings.source),
        rollback_id=rid,
        branch=branch,
        commit=commit,
        return_state=True,
    )
    if state.is_completed():
        try:
            return RollbackRecord.from_json(state.result(), f"rollback run {state.state_details.flow_run_id}"), None
        except ConfigError as exc:  # what the rollback did cannot be read: it is not proven done
            return RollbackRecord(rid, reason, error=str(exc)), str(exc)
    return RollbackRecord(rid, reason, error=str(state.message)), str(state.message)


def _soak(settings: Settings, run_id: str, on_pool: bool) -> Any:
    """The soak of staging, started again with the same window when its run crashed (a worker
    that died): the window continues from its store, the time it was down recorded as a gap."""
    log = get_run_logger()
    parameters = {
        "environment": "staging",
        "window_id": run_id[:12],
        "config_path": str(settings.source.resolve()),
        "state_dir": str(settings.state_dir / "soak"),
    }
    for attempt in range(SOAK_RESTARTS + 1):
        if on_pool:
            from prefect.deployments import run_deployment

            run: Any = run_deployment(name="soak-monitor/soak-monitor", parameters=parameters, timeout=None)
            state = run.state
        else:
            state = soak_monitor(**parameters, return_state=True)
        if state is None or not state.is_crashed() or attempt == SOAK_RESTARTS:
            return state
        log.warning("soak run crashed (%s); starting it again on window %s", state.message, parameters["window_id"])
    return state


def _reason(state: Any) -> str:
    error = state.result(raise_on_failure=False)
    return str(error) if isinstance(error, BaseException) else str(state.message)
