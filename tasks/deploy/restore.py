"""Putting an environment back: the service logs kept as evidence first, then the previous image
(or a named one) through compose with health checked; and reverting a migration commit that
reached the base branch (here, or on the remote after a merge through the host's API)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tasks.deploy.ledger import RESTORED, ImageRecord, Ledger, RetainLog
from tasks.deploy.release import (
    DeployError,
    Target,
    deploy,
    logs,
    restorable,
    rollback_target,
    running_image,
    wait_healthy,
)
from tasks.deploy.rollback_record import FAILED_ACTION, RESTORED_ACTION, CodeRevert, EnvironmentRestore
from tasks.errors import BaseImageError
from tasks.files import write_atomic
from tasks.secrets import Redactor
from tasks.update import git
from tasks.update.changelog import rollback_changelog
from tasks.update.plan import POLICY_DOC


class RollbackError(BaseImageError):
    """An environment did not come back healthy; the evidence is kept and the message says where."""


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def restore(
    client: Any,
    target: Target,
    ledger: Ledger,
    to: str | None,
    rollback_id: str,
    reason: str,
    evidence_dir: Path,
    redactor: Redactor,
) -> EnvironmentRestore:
    """Logs first (evidence, in a new file each run), then the previous image (or `to`) back and
    healthy; a no-op when that already happened. Returns the environment's row of the record."""
    environment = target.name
    current = running_image(client, target)
    text = logs(target, current.image if current else (to or "none"))
    log_file = evidence_dir / f"{environment}-logs-{stamp()}.txt"
    write_atomic(log_file, redactor.redact(text))
    row = EnvironmentRestore(
        environment,
        FAILED_ACTION,
        current.describe() if current else None,
        logs=str(log_file),
        log_tail=tuple(redactor.lines(text.splitlines()[-40:])),
    )
    if to:
        desired: ImageRecord | None = ImageRecord(to)
        last = ledger.last()
    else:
        desired, last = rollback_target(ledger)
    if desired is None:
        if last is not None and last.status == RESTORED:
            wait_healthy(client, target)
            return row.done("none: already rolled back", last.image.describe())
        raise RollbackError(
            f"{environment}: no previous image recorded in {ledger.path}; name one with "
            f"`baseimage rollback --env {environment} --to IMAGE`"
        )
    if current and desired.image_id and current.image_id == desired.image_id:
        wait_healthy(client, target)
        return row.done("none: already running it", desired.describe())
    reference = to if to else restorable(client, desired, environment, RetainLog(ledger.state_dir).copies_for(desired))
    try:
        restored = deploy(client, target, reference, ledger, status=RESTORED, note=f"rollback {rollback_id}: {reason}")
    except DeployError as exc:
        write_atomic(evidence_dir / f"{environment}-restore-failed-{stamp()}.txt", redactor.redact(exc.logs))
        raise RollbackError(
            f"{environment}: restoring {reference} did not end healthy: {exc}; evidence in {evidence_dir}"
        ) from exc
    return row.done(RESTORED_ACTION, restored.image.describe())


def merged_into(repo: Path, commit: str, base: str, remote: str | None) -> str | None:
    """The ref of the base branch that holds `commit` (local, else the remote's after a fetch:
    a pull request merged through the API reaches only the remote), or None."""
    if git.rev(repo, base) and git.is_ancestor(repo, commit, base):
        return base
    if remote:
        tip = git.fetch_base(repo, remote, base)
        if tip and git.is_ancestor(repo, commit, tip):
            return f"refs/remotes/{remote}/{base}"
    return None


def revert(
    repo: Path, base_name: str, remote: str | None, branch: str | None, commit: str | None, reason: str, today: date
) -> CodeRevert:
    """When the migration commit reached the base branch: on ``baseimage/rollback-<commit>`` (from
    the base branch), the files it changed as they were before it (Dockerfiles, requirements; the
    backups and the changelogs stay) and a "Rolled back" CHANGELOG entry, for review and merge."""
    if not commit:
        return CodeRevert("none: no migration commit given")
    base = git.base_branch(repo, base_name)
    holder = merged_into(repo, commit, base, remote)
    if holder is None:
        where = f"{base} (nor {remote}/{base})" if remote else base
        return CodeRevert(f"none: {branch or commit[:12]} is not merged into {where}; {base} is unchanged", branch)
    name = f"baseimage/rollback-{commit[:12]}"
    if git.branch_exists(repo, name):
        return CodeRevert(f"none: {name} already holds the revert", name)
    changed = git.git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", commit).split()
    keep = {"CHANGELOG.md", POLICY_DOC}
    files: dict[str, str] = {}
    for rel in changed:
        before = git.show(repo, f"{commit}^", rel)
        if rel not in keep and not rel.endswith(".bak") and before is not None:
            files[rel] = before
    label = branch or commit[:12]
    files["CHANGELOG.md"] = rollback_changelog(git.show(repo, holder, "CHANGELOG.md"), label, reason, today)
    git.git(repo, "branch", name, holder)
    try:
        sha = git.commit_on_branch(repo, name, files, f"baseimage: roll back {label}\n\n{reason}\n")
    except BaseException:
        git.git(repo, "branch", "-D", name, check=False)
        raise
    restored = ", ".join(sorted(f for f in files if f != "CHANGELOG.md"))
    return CodeRevert(
        f"reverted {commit[:12]} on {name} (from {holder.removeprefix('refs/remotes/')}: {restored}); "
        "review and merge it",
        name,
        sha,
    )
