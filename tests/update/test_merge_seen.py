"""A pull request merged through the GitHub API is seen: the remote's base is fetched after the
merge (this checkout's main moves too), and a later rollback finds the merged commit on the
remote and makes its revert branch. A local bare remote stands in for GitHub's repository and a
loopback endpoint for its merge API (which merges for real in that remote)."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from baseimage.settings import load_settings
from flows.deployment import merge_branch
from flows.rollback import revert_code
from tasks.update.apply import apply_plan
from tasks.update.github import PullRequest
from tasks.update.plan import ImageChange, MigrationPlan
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.repo import commit_all


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_an_api_merge_is_fetched_and_a_later_rollback_reverts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)

    def api(req: Request) -> Reply:
        if req.method == "PUT" and req.path == "/repos/acme/training/pulls/7/merge":
            head = git(remote, "rev-parse", "baseimage/cuda-12.9.1")
            git(remote, "update-ref", "refs/heads/main", head)  # what GitHub's merge does to the repository
            return Reply(200, json.dumps({"sha": head, "merged": True}).encode())
        return Reply(404, b"{}")

    with Endpoint(api) as github:
        repo = tmp_path / "repo"
        (repo / "dockerfiles").mkdir(parents=True)
        (repo / "config").mkdir()
        (repo / "dockerfiles" / "Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
        (repo / "config" / "policy.yaml").write_text(
            "images: [{name: t, dockerfile: dockerfiles/Dockerfile, track: cuda}]\n"
            f"github: {{repository: acme/training, api_url: '{github.url}', token_block: null}}\n"
        )
        commit_all(repo)
        git(repo, "remote", "add", "origin", str(remote))
        git(repo, "push", "-q", "origin", "main")
        git(repo, "checkout", "-q", "-b", "work")  # the maintainer's checkout is on a branch of their own
        plan = MigrationPlan(
            (
                ImageChange(
                    "t",
                    "dockerfiles/Dockerfile",
                    "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
                    "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
                ),
            )
        )
        result = apply_plan(repo, plan, today=date(2026, 12, 1))
        assert result.commit
        git(repo, "push", "-q", "origin", result.branch)
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_not-real")
        settings = load_settings(repo / "config" / "policy.yaml")

        merged = merge_branch.fn(settings, result.branch, PullRequest(7))
        assert merged.startswith("merged pull request #7") and "origin/main now at" in merged
        assert git(repo, "rev-parse", "main") == result.commit, "the local main saw the merge"

        # Another clone, whose main has not seen the merge yet: the rollback must look at the remote.
        git(repo, "update-ref", "refs/heads/main", git(repo, "rev-parse", f"{result.commit}^"))
        reverted = revert_code.fn(settings, result.branch, result.commit, "soak failed in production")
    assert reverted.branch == f"baseimage/rollback-{result.commit[:12]}", reverted
    assert "from origin/main" in reverted.action
    assert git(repo, "show", f"{reverted.branch}:dockerfiles/Dockerfile") == (
        "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04"
    )
