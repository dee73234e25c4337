"""The update phase can be trusted: a plan that does not match the repository (stale, or a FROM
set through build_args) is caught before anything is written, build_args are followed into the
policy file, and a kill at any point of the update leaves the user's checkout as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tasks.errors import EmptyPlanError, PlanMismatchError
from tasks.update.apply import apply_plan
from tasks.update.plan import ImageChange, MigrationPlan
from tests.support.repo import commit_all

TODAY = date(2026, 12, 1)
OLD, NEW = "nvidia/cuda:12.6.0-runtime-ubuntu22.04", "nvidia/cuda:12.9.1-runtime-ubuntu22.04"


def run(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def snapshot(repo: Path) -> dict[str, object]:
    """Everything a user sees of their checkout: files (bytes and modes), index, HEAD, branches."""
    files = {
        str(p.relative_to(repo)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "files": files,
        "status": run(repo, "status", "--porcelain", "--ignored"),
        "head": run(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        "index": run(repo, "ls-files", "-s"),
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "dockerfiles" / "a").mkdir(parents=True)
    (root / "dockerfiles" / "b").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "dockerfiles" / "a" / "Dockerfile").write_text(f"FROM {OLD}\nRUN true\n")
    (root / "dockerfiles" / "b" / "Dockerfile").write_text("ARG CUDA_TAG\nFROM nvidia/cuda:${CUDA_TAG}\nRUN true\n")
    (root / "dockerfiles" / "a" / "entrypoint.sh").write_text('#!/bin/sh\nexec "$@"\n')
    (root / "dockerfiles" / "a" / "entrypoint.sh").chmod(0o755)
    (root / "config" / "policy.yaml").write_text(
        "images:\n"
        "  - name: a\n    dockerfile: dockerfiles/a/Dockerfile\n    track: cuda\n"
        "  - name: b\n    dockerfile: dockerfiles/b/Dockerfile\n    track: cuda\n"
        "    build_args:\n      CUDA_TAG: 12.6.0-runtime-ubuntu22.04   # set by the build\n"
    )
    return commit_all(root)


def plan_a(current: str = OLD, target: str = NEW) -> MigrationPlan:
    return MigrationPlan((ImageChange("a", "dockerfiles/a/Dockerfile", current, target),))


def test_a_from_set_through_build_args_is_changed_where_the_build_is_invoked(repo: Path) -> None:
    change = ImageChange(
        "b", "dockerfiles/b/Dockerfile", OLD, NEW, build_args=(("CUDA_TAG", "12.6.0-runtime-ubuntu22.04"),)
    )
    result = apply_plan(repo, MigrationPlan((change,), config="config/policy.yaml"), today=TODAY)
    assert result.commit and not result.already_applied
    assert run(repo, "show", f"{result.branch}:dockerfiles/b/Dockerfile") == (
        "ARG CUDA_TAG\nFROM nvidia/cuda:${CUDA_TAG}\nRUN true\n"
    ), "the Dockerfile has no default to change: the build argument is the base"
    config = run(repo, "show", f"{result.branch}:config/policy.yaml")
    assert "      CUDA_TAG: 12.9.1-runtime-ubuntu22.04   # set by the build\n" in config
    assert "config/policy.yaml" in result.files


def test_without_its_build_args_the_same_plan_would_have_been_stale(repo: Path) -> None:
    change = ImageChange("b", "dockerfiles/b/Dockerfile", OLD, NEW)  # build_args not passed
    with pytest.raises(PlanMismatchError) as info:
        apply_plan(repo, MigrationPlan((change,), config="config/policy.yaml"), today=TODAY)
    assert "dockerfiles/b/Dockerfile: the plan expects a FROM naming nvidia/cuda:12.6.0" in str(info.value)
    assert "baseimage/" not in run(repo, "branch")


def test_a_stale_plan_stops_before_anything_is_written(repo: Path) -> None:
    before = snapshot(repo)
    with pytest.raises(PlanMismatchError) as info:
        apply_plan(repo, plan_a(current="nvidia/cuda:12.4.1-runtime-ubuntu22.04"), today=TODAY)
    assert str(info.value).startswith(
        "dockerfiles/a/Dockerfile: the plan expects a FROM naming nvidia/cuda:12.4.1-runtime-ubuntu22.04, "
        f"found line 1: {OLD}"
    )
    assert snapshot(repo) == before and "baseimage/" not in run(repo, "branch")


def test_a_plan_already_in_the_base_is_stale_not_already_applied(repo: Path) -> None:
    apply_plan(repo, plan_a(), today=TODAY)
    run(repo, "merge", "-q", "--ff-only", "baseimage/cuda-12.9.1")
    with pytest.raises(PlanMismatchError, match=r"already names nvidia/cuda:12\.9\.1-runtime-ubuntu22\.04"):
        apply_plan(repo, plan_a(), today=TODAY)


def test_a_plan_that_changes_nothing_is_refused(repo: Path) -> None:
    with pytest.raises(EmptyPlanError, match="the plan changes nothing in dockerfiles/a/Dockerfile"):
        apply_plan(repo, plan_a(target=OLD), today=TODAY)


def test_the_checkout_is_never_touched_and_modes_are_kept(repo: Path) -> None:
    run(repo, "config", "user.name", "Ada Maintainer")
    run(repo, "config", "user.email", "ada@example.org")
    before = snapshot(repo)
    result = apply_plan(repo, plan_a(), today=TODAY)
    assert snapshot(repo) == before
    assert run(repo, "log", "-1", "--format=%an <%ae>", result.branch).strip() == "Ada Maintainer <ada@example.org>"
    assert run(repo, "ls-tree", result.branch, "dockerfiles/a/entrypoint.sh").startswith("100755")
    assert not list((repo / ".git").glob("baseimage-worktrees/*")), "the temporary worktree is gone"


KILL = """
import sys
from datetime import date
from pathlib import Path
from tasks.update.apply import apply_plan
from tasks.update.plan import ImageChange, MigrationPlan
plan = MigrationPlan((ImageChange("a", "dockerfiles/a/Dockerfile", sys.argv[2], sys.argv[3]),))
apply_plan(Path(sys.argv[1]), plan, today=date(2026, 12, 1))
"""


@pytest.mark.parametrize("point", ["worktree", "write", "commit", "ref"])
def test_killed_at_any_point_the_checkout_is_unchanged_and_the_next_run_completes(repo: Path, point: str) -> None:
    before = snapshot(repo)
    done = subprocess.run(
        [sys.executable, "-c", KILL, str(repo), OLD, NEW],
        env={**os.environ, "BASEIMAGE_TEST_KILL_AT": point},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    assert snapshot(repo) == before, "nothing in the user's checkout changed"
    tip = run(repo, "branch", "--list", "baseimage/cuda-12.9.1").strip()
    if point == "ref":  # the ref moved: the branch holds the complete commit
        assert tip and "+FROM " + NEW in run(repo, "diff", "main", "baseimage/cuda-12.9.1")
    else:
        assert not tip, "no branch, or the complete commit: never a half-made one"
    result = apply_plan(repo, plan_a(), today=TODAY)
    assert result.commit and run(repo, "show", f"{result.branch}:dockerfiles/a/Dockerfile").startswith(f"FROM {NEW}")
    assert snapshot(repo) == before
    assert not list((repo / ".git").glob("baseimage-worktrees/*")), "the killed run's worktree was cleaned up"
    assert run(repo, "worktree", "list").count("\n") == 1
