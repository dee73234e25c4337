"""The deployment phase of a migration, after validation: build the release image from the
migration commit, deploy staging, soak it, ask for the production approval with the soak report,
deploy production, write the release into CHANGELOG.md and the policy document, merge the branch.
Any failure on the way runs the rollback flow for what was deployed; a rejection rolls staging back.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task

from baseimage.settings import Settings, github_token
from flows.approvals import Decision, ask
from flows.rollback import rollback, target_of
from flows.soak_monitor import soak_monitor
from tasks import containers
from tasks.deploy.ledger import Ledger
from tasks.deploy.release import deploy, docker_client
from tasks.update import git
from tasks.update.apply import ApplyResult, MigrationPlan, release_files
from tasks.update.github import GitHub, GitHubRepo

STAGES = ("staging", "production")
RELEASE_LABEL = "baseimage.release"


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
        built = containers.build_image(
            client,
            tree,
            str(image.dockerfile),
            tag,
            {RELEASE_LABEL: branch},
            dict(image.build_args),
            on_line=lambda line: log.info("build | %s", line),
        )
    log.info("built %s from %s in %.1f s", tag, commit[:12], built.seconds)
    return tag


@task(name="deploy-environment")
def deploy_environment(settings: Settings, environment: str, image: str, run: str, branch: str, commit: str) -> Any:
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
    get_run_logger().info("%s now runs %s (was %s)", environment, record.image.describe(), record.previous)
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
def merge_branch(settings: Settings, branch: str, pr: dict[str, Any] | None) -> str:
    """The pull request merged through the GitHub API when there is one, else a local fast-forward."""
    if pr and settings.github:
        token = github_token(settings.github) or ""
        github = GitHub(GitHubRepo.parse(settings.github.repository, settings.github.api_url), token)
        git.push(settings.root, settings.github.remote, branch)  # the release notes commit
        sha = github.merge_pull_request(int(pr["number"]))
        return f"merged pull request #{pr['number']} ({sha[:12] or 'already merged'})"
    base = git.base_branch(settings.root, settings.github.base_branch if settings.github else "main")
    tip = git.fast_forward(settings.root, base, branch)
    return f"fast-forwarded {base} to {branch} ({tip[:12]})"


def _soak_report(result: dict[str, Any]) -> str:
    lines = [
        f"### Staging soak: **{result['status']}**",
        "",
        *[f"- {r}" for r in result.get("reasons", [])],
        f"- {result['samples']} of {result['expected']} samples; store `{result['store']}`",
    ]
    if result.get("chart"):
        lines.append(f"- chart: `{result['chart']}` (also in the soak run's artifacts)")
    return "\n".join(lines)


def deployment_phase(
    settings: Settings,
    plan: MigrationPlan,
    result: ApplyResult,
    outcome: dict[str, Any],
    run_id: str,
    pr: dict[str, Any] | None,
    poll_interval_s: int,
    on_pool: bool = False,
) -> dict[str, Any]:
    """Staging, soak, production approval, production; fills and returns `outcome`. With `on_pool`
    the soak runs as the `soak-monitor` deployment (the gpu pool), else as a subflow here."""
    log = get_run_logger()
    missing = [s for s in STAGES if s not in settings.environments]
    if missing:
        outcome["outcome"] = (
            f"validated; nothing deployed: no {' or '.join(missing)} environment in {settings.source} (environments:)"
        )
        return outcome
    branch, commit = result.branch, str(result.commit or git.git(settings.root, "rev-parse", result.branch).strip())
    deployed: list[str] = []

    def roll_back(stage: str, reason: str) -> dict[str, Any]:
        log.error("%s failed: %s; rolling back %s", stage, reason, ", ".join(reversed(deployed)) or "the code")
        why = f"{stage} failed during migration to {branch}: {reason}"
        outcome["rollback"], failure = roll_back_migration(
            settings, list(reversed(deployed)), why, run_id, branch, commit
        )
        restored = f"ROLLBACK FAILED ({failure})" if failure else "rolled back"
        outcome["outcome"] = f"{stage} failed: {reason}; {restored}"
        return outcome

    build = build_release(settings, "staging", branch, commit, return_state=True)
    if not build.is_completed():
        return roll_back("release build", _reason(build))
    image = build.result()
    outcome["image"] = image
    deployed.append("staging")
    staged = deploy_environment(settings, "staging", image, run_id, branch, commit, return_state=True)
    if not staged.is_completed():
        return roll_back("staging deploy", _reason(staged))
    soak = _soak(settings, run_id, on_pool)
    if not soak.is_completed():
        return roll_back("staging soak", _reason(soak))
    report = soak.result()
    outcome["soak"] = report
    if report["status"] != "passed":
        return roll_back("staging soak", f"{report['status']}: {'; '.join(report['reasons'])}")
    decision = ask(
        "production",
        f"## Approve production?\n\n{outcome.get('validation', '')}\n\n{plan.summary()}\n\n"
        f"Staging runs `{image}`.\n\n{_soak_report(report)}",
        settings.approvals.timeout_s,
        poll_interval_s,
    )
    outcome["decisions"].append(decision.to_json())
    if not decision.approved:
        return _stopped(roll_back, decision, outcome)
    envs = settings.environments
    if envs["production"].docker_host != envs["staging"].docker_host:
        # Another Docker host: the same commit is built there (or found, when a registry carried it).
        log.warning("production is on %s: building %s there from %s", envs["production"].docker_host, image, commit)
        there = build_release(settings, "production", branch, commit, return_state=True)
        if not there.is_completed():
            return roll_back("release build on the production host", _reason(there))
    deployed.append("production")
    prod = deploy_environment(settings, "production", image, run_id, branch, commit, return_state=True)
    if not prod.is_completed():
        return roll_back("production deploy", _reason(prod))
    today = datetime.now(UTC).date().isoformat()
    note = (
        f"deployed to production {today} (approved by {decision.reviewer}; staging soak passed with "
        f"{report['samples']} samples; image `{image}`)"
    )
    # Production runs the release from here on: a failure below is reported, never rolled back.
    notes = release_notes(settings, plan, branch, note, return_state=True)
    if notes.is_completed():
        outcome["release_commit"] = notes.result()
        merged = merge_branch(settings, branch, pr, return_state=True)
        outcome["merge"] = merged.result() if merged.is_completed() else f"NOT MERGED: {_reason(merged)}; merge by hand"
    else:
        outcome["merge"] = f"NOT MERGED: release notes not written ({_reason(notes)}); write them and merge by hand"
    unmerged = "; branch NOT merged (see merge)" if str(outcome.get("merge", "")).startswith("NOT MERGED") else ""
    outcome["outcome"] = f"deployed to production: {image}{unmerged}"
    return outcome


def roll_back_migration(
    settings: Settings, environments: list[str], reason: str, run_id: str, branch: str, commit: str | None
) -> tuple[dict[str, Any], str | None]:
    """The rollback flow for migration run `run_id` (one rollback id per migration, so a re-run of
    it is a no-op); returns its record (or the error) and None, or why it failed."""
    state = rollback(
        environments=environments,
        reason=reason,
        config_path=str(settings.source),
        rollback_id=f"migrate-{run_id[:12]}",
        branch=branch,
        commit=commit,
        return_state=True,
    )
    if state.is_completed():
        return state.result(), None
    return {"error": str(state.message)}, str(state.message)


def _soak(settings: Settings, run_id: str, on_pool: bool) -> Any:
    parameters = {
        "environment": "staging",
        "window_id": run_id[:12],
        "config_path": str(settings.source.resolve()),
        "state_dir": str(settings.state_dir / "soak"),
    }
    if on_pool:
        from prefect.deployments import run_deployment

        run: Any = run_deployment(name="soak-monitor/soak-monitor", parameters=parameters, timeout=None)
        return run.state
    return soak_monitor(**parameters, return_state=True)


def _reason(state: Any) -> str:
    error = state.result(raise_on_failure=False)
    return str(error) if isinstance(error, BaseException) else str(state.message)


def _stopped(roll_back: Any, decision: Decision, outcome: dict[str, Any]) -> dict[str, Any]:
    who = decision.reviewer or "nobody"
    done: dict[str, Any] = roll_back("production approval", f"{decision.outcome} by {who} {decision.comment}".strip())
    if "ROLLBACK FAILED" not in done["outcome"]:
        done["outcome"] = f"stopped at production: {decision.outcome}; staging rolled back"
    return done
