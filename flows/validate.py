"""The testing phase as a flow: the registered checks (tasks/checks/: build, GPU detection, the
service's start, health, start-up logs, the sample training job, the ONNX model, its consumers,
GPU utilisation) in order, each a task with its own state, a check whose need did not pass
recorded as skipped with the reason; always tear down. GPU checks on a host without an NVIDIA
runtime end "skipped: no GPU" unless the policy requires a GPU."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import get_run_context
from prefect.states import Completed, Failed

from baseimage import wiring
from baseimage.settings import load_settings
from flows.outcome import record_outcome
from tasks import containers
from tasks.checks import CHECKS, Check, CheckRun, Results, failed, unmet
from tasks.files import write_atomic
from tasks.statuses import CheckStatus
from tasks.validation import CheckOutcome, CheckResult, ValidationReport


@task(name="check", cache_policy=NO_CACHE, persist_result=False)  # renamed per check
def run_check(check: Check, run: CheckRun, done: Results) -> list[CheckResult] | State:
    """One check as a task; a skipped check ends in a Completed state named Skipped."""
    value = check.run(replace(run, log=get_run_logger().info), done)
    found = value if isinstance(value, list) else [value]
    if len(found) == 1 and found[0].status == CheckStatus.SKIPPED:
        return Completed(name="Skipped", message=found[0].message, data=found)
    return found


@task(name="teardown", cache_policy=NO_CACHE, persist_result=False)
def teardown(run: CheckRun, remove_images: bool) -> list[str]:
    removed = containers.teardown(run.docker(), run.run_label, remove_images)
    get_run_logger().info("removed %s", ", ".join(removed) or "nothing")
    return removed


def run_checks(run: CheckRun, checks: tuple[Check, ...] = CHECKS) -> list[CheckResult]:
    """Each enabled check in order (those whose needs did not pass recorded as skipped), as the
    report lists them: quiet checks only when they did not pass."""
    done: dict[str, CheckResult] = {}
    listed: list[CheckResult] = []
    for check in checks:
        if not check.enabled(run):
            continue
        blocked = unmet(check, done)
        if blocked is not None:
            found = [blocked]
        else:
            state = run_check.with_options(name=check.name)(check, run, done, return_state=True)
            found = _found(check.name, state)
        done[check.name] = _overall(check.name, found)
        listed.extend(r for r in found if not (check.quiet and r.status == CheckStatus.PASSED))
    return listed


def _found(name: str, state: State[Any]) -> list[CheckResult]:
    """A check task's results, or the failure it raised as one failed result."""
    value = state.result(raise_on_failure=False)
    if state.is_completed() and isinstance(value, list):
        return value
    return [failed(name, value if isinstance(value, BaseException) else RuntimeError(str(state.message)))]


def _overall(name: str, found: list[CheckResult]) -> CheckResult:
    """A check's result as its dependents see it: its one result, or of several (one per
    consumer) the first failed, else the first passed, else the first."""
    if len(found) == 1:
        return found[0]
    first = next((r for r in found if r.status == CheckStatus.FAILED), None) or next(
        (r for r in found if r.status == CheckStatus.PASSED), None
    )
    chosen = first or (found[0] if found else CheckResult(name, CheckStatus.SKIPPED, "nothing to check"))
    return CheckResult(name, chosen.status, chosen.message, chosen.data)


@flow(name="validate", persist_result=True)  # a migrate run on another pool reads the summary
def validate(
    context: str = ".",
    dockerfile: str = "dockerfiles/training/Dockerfile",
    buildargs: dict[str, str] | None = None,
    config_path: str | None = None,
    require_gpu: bool | None = None,
    out_dir: str = "reports",
    keep_image: bool = False,
    ref: str | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any] | State[Any]:
    """Validate a candidate image; returns the summary, passed / failed / skipped checks named (the
    run ends Failed, with the same summary, if any check failed). With `ref` (a branch or commit of
    the git repository at `context`), builds that revision. `environment`: variables the service
    runs with (a migration's BASEIMAGE_ONNX_OPSET)."""
    if ref:
        from tasks.update import git

        with git.worktree(Path(context), ref) as tree:
            return _validate(
                str(tree), dockerfile, buildargs, config_path, require_gpu, out_dir, keep_image, environment
            )
    return _validate(context, dockerfile, buildargs, config_path, require_gpu, out_dir, keep_image, environment)


def _validate(
    context: str,
    dockerfile: str,
    buildargs: dict[str, str] | None,
    config_path: str | None,
    require_gpu: bool | None,
    out_dir: str,
    keep_image: bool,
    environment: dict[str, str] | None = None,
) -> dict[str, Any] | State[Any]:
    settings = load_settings(Path(config_path) if config_path else None)
    ctx = get_run_context()
    run_label = str(getattr(getattr(ctx, "flow_run", None), "id", None) or uuid.uuid4())
    run = wiring.check_run(settings, Path(context), dockerfile, run_label, buildargs, require_gpu, environment)
    try:
        checks = run_checks(run)
    finally:
        teardown(run, not keep_image)
    return _report(checks, run.tag, Path(out_dir), run_label)


def _report(checks: list[CheckResult], tag: str, out_dir: Path, run_label: str) -> dict[str, Any] | State[Any]:
    failed = [c for c in checks if c.status == CheckStatus.FAILED]
    report = ValidationReport((tag,), tuple(CheckOutcome(c.name, c.status, c.message) for c in checks), "subflow")
    summary = {
        "candidate": tag,
        "run": run_label,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": not failed,
        **report.by_status(),
        "counts": report.counts(),
        "checks": [c.to_json() for c in report.checks],
        "details": {c.name: c.data for c in checks},
    }
    rows = [{"check": c.name, "status": str(c.status), "message": c.message} for c in checks]
    create_table_artifact(table=rows, key="validation-checks", description=f"Validation of {tag}")
    create_markdown_artifact(
        key="validation-summary",
        markdown="\n".join(
            [
                f"# Validation of `{tag}`: {'passed' if not failed else 'FAILED'} ({report.counts()})",
                "",
                "| check | status | message |",
                "|---|---|---|",
                *[f"| {c.name} | {c.status} | {c.message.replace('|', '/')} |" for c in checks],
            ]
        ),
    )
    path = out_dir / f"validation-{run_label[:12]}.json"
    write_atomic(path, json.dumps(summary, indent=2, default=str) + "\n")
    summary["report"] = str(path)
    verdict = "passed" if not failed else "FAILED"
    record_outcome(f"validation of {tag} {verdict}: {report.counts()}")
    if failed:
        message = "validation failed: " + "; ".join(f"{c.name}: {c.message}" for c in failed)
        return Failed(message=message, data=summary)
    return summary
