"""The parts of the deployment phase that need no daemon: the deployment ledger and what an ad hoc
rollback puts back, the release section of CHANGELOG.md and the policy row, fast-forward merge and
the revert branch in a real git repository, GitHub merge and issue calls, environment settings."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from baseimage.settings import load_settings
from tasks.deploy.compose import Compose, ComposeError
from tasks.deploy.ledger import DEPLOYED, DEPLOYING, FAILED, RESTORED, Deployment, ImageRecord, Ledger
from tasks.deploy.release import rollback_target
from tasks.errors import ConfigError, ImageReferenceError
from tasks.update import git
from tasks.update.changelog import proposed_changelog, release_changelog, release_policy_row
from tasks.update.github import GitHub, GitHubError, GitHubRepo
from tasks.update.plan import ImageChange, MigrationPlan
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.repo import commit_all

OLD = ImageRecord("svc:old", "sha256:" + "a" * 64, "registry/svc@sha256:" + "1" * 64)
NEW = ImageRecord("svc:new", "sha256:" + "b" * 64)
PLAN = MigrationPlan(
    (
        ImageChange(
            "training",
            "dockerfiles/training/Dockerfile",
            "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
            "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
        ),
    )
)
TODAY = date(2026, 11, 28)


def test_ledger_keeps_the_attempt_and_its_outcome(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, "staging")
    assert ledger.last() is None and rollback_target(ledger) == (None, None)
    ledger.settle(ledger.append(Deployment("staging", DEPLOYING, OLD, None)), DEPLOYED)
    attempt = ledger.append(Deployment("staging", DEPLOYING, NEW, OLD, run="r1", commit="c1"))
    assert [d.status for d in ledger.history()] == [DEPLOYED, DEPLOYING], "written before compose runs"
    ledger.settle(attempt, FAILED, "HealthCheckError: 503")
    history = ledger.history()
    assert [d.status for d in history] == [DEPLOYED, FAILED] and history[-1].note == "HealthCheckError: 503"
    assert history[-1].previous == OLD and history[-1].commit == "c1"
    assert rollback_target(ledger)[0] == OLD
    ledger.settle(ledger.append(Deployment("staging", DEPLOYING, OLD, NEW)), RESTORED)
    target, last = rollback_target(ledger)
    assert target is None and last is not None and last.status == RESTORED, "a second rollback restores nothing"
    assert json.loads(ledger.path.read_text())["environment"] == "staging"


def test_the_changelog_names_the_pins_a_migration_moves_in_the_dockerfile_too() -> None:
    """Regression: a plan that moved torch, CuPy and ONNX Runtime in the Dockerfile's
    `RUN pip install` line (no requirements file) was recorded as a base-image change alone."""
    from tasks.update.requirements import RequirementChanges

    change = ImageChange(
        "trainer",
        "docker/Dockerfile",
        "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
        "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
        dockerfile_pins=RequirementChanges(
            variant="cu126",
            torch="2.13.0",
            torchvision="0.28.0",
            cupy_package="cupy-cuda12x",
            cupy_version="14.2.0",
            onnxruntime_gpu="1.26.0",
        ),
    )
    both = ImageChange(
        "training",
        "dockerfiles/training/Dockerfile",
        "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
        "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
        "dockerfiles/training/requirements/ml.txt",
        RequirementChanges(torch="2.13.0", torchvision="0.28.0"),
        RequirementChanges(onnxruntime_gpu="1.26.0"),
    )
    text = proposed_changelog(None, MigrationPlan((change, both)), TODAY)
    assert (
        "- trainer: base image `nvidia/cuda:12.6.0-runtime-ubuntu22.04` -> `nvidia/cuda:12.9.1-runtime-ubuntu22.04` "
        "in `docker/Dockerfile` (torch 2.13.0, torchvision 0.28.0, cupy-cuda12x 14.2.0, onnxruntime-gpu 1.26.0 "
        "in its RUN pip install lines)\n"
    ) in text
    assert (
        "in `dockerfiles/training/Dockerfile` (torch 2.13.0, torchvision 0.28.0 in "
        "`dockerfiles/training/requirements/ml.txt`; onnxruntime-gpu 1.26.0 in its RUN pip install lines)\n"
    ) in text


def test_release_changelog_moves_the_block_into_a_release_section() -> None:
    proposed = proposed_changelog(None, PLAN, TODAY) + "\n## [cuda-12.6.0] - 2025-02-01\n### Changed\n- earlier\n"
    released = release_changelog(proposed, PLAN, TODAY, "deployed to production 2026-11-28 (approved by bob)")
    unreleased, rest = released.split("## [Unreleased]\n", 1)[1].split("## [cuda-12.9.1] - 2026-11-28\n", 1)
    assert unreleased.strip() == "", "the migration left [Unreleased]"
    assert rest.startswith("### Changed\n- training: base image `nvidia/cuda:12.6.0-runtime-ubuntu22.04` -> ")
    assert "### Deployed\n- deployed to production 2026-11-28 (approved by bob)\n" in rest
    assert released.index("## [cuda-12.9.1]") < released.index("## [cuda-12.6.0]"), "newest release first"
    assert release_changelog(released, PLAN, TODAY, "again") == released, "a second run changes nothing"


def test_policy_row_status_becomes_deployed() -> None:
    from tasks.update.policy_doc import Moved, migration_doc

    moved = [Moved(c.current, c.target, {}, {}) for c in PLAN.changes]
    start = "# Policy\n\n## Changelog\n\n### 2025-01-01 - other\n- **Status**: done\n"
    doc = migration_doc(start, "doc", PLAN.branch, "EOL", moved, TODAY.isoformat()).text
    assert f"### 2026-11-28 - {PLAN.branch}\n- **From**: `nvidia/cuda:12.6.0-runtime-ubuntu22.04`" in doc
    out = release_policy_row(doc, PLAN, "deployed to production 2026-11-28")
    assert "- **Status**: deployed to production 2026-11-28\n" in out
    assert "proposed (awaiting" not in out and "- **Status**: done\n" in out
    assert release_policy_row(out, PLAN, "x") == out


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    return commit_all(root)


def _commit(root: Path, text: str, branch: str) -> str:
    git.git(root, "checkout", "-q", "-b", branch)
    (root / "Dockerfile").write_text(text)
    git.git(root, "add", "Dockerfile")
    sha = git.commit_as_baseimage(root, "migrate")
    git.git(root, "checkout", "-q", "main")
    return sha


def test_fast_forward_and_revert_branch(tmp_path: Path) -> None:
    from baseimage.settings import Settings
    from flows.rollback import revert_code

    root = _repo(tmp_path)
    sha = _commit(root, "FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04\n", "baseimage/cuda-12.9.1")
    settings = Settings.model_validate(
        {"images": [{"name": "t", "dockerfile": "Dockerfile", "track": "cuda"}], "source": root / "p.yaml"}
    ).model_copy(update={"repository": Path(".")})
    not_merged = revert_code.fn(settings, "baseimage/cuda-12.9.1", sha)
    assert not_merged.action == "none: baseimage/cuda-12.9.1 is not merged into main; main is unchanged"
    assert git.fast_forward(root, "main", "baseimage/cuda-12.9.1") == sha
    assert "12.9.1" in (root / "Dockerfile").read_text(), "the checked-out main moved too"
    assert git.fast_forward(root, "main", "baseimage/cuda-12.9.1") == sha, "already merged: no-op"
    reverted = revert_code.fn(settings, "baseimage/cuda-12.9.1", sha)
    assert reverted.branch == f"baseimage/rollback-{sha[:12]}" and reverted.commit
    assert git.show(root, reverted.branch, "Dockerfile") == "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n"
    assert "### Rolled back (" in (git.show(root, reverted.branch, "CHANGELOG.md") or "")
    assert "12.9.1" in (root / "Dockerfile").read_text(), "the revert is on a branch, main is left for review"
    assert revert_code.fn(settings, "baseimage/cuda-12.9.1", sha).action.endswith("already holds the revert")


def test_fast_forward_refuses_when_main_moved_on(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _commit(root, "FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04\n", "baseimage/cuda-12.9.1")
    (root / "README").write_text("x")
    git.git(root, "add", "README")
    git.commit_as_baseimage(root, "unrelated")
    with pytest.raises(git.GitError, match=r"main has moved on since baseimage/cuda-12\.9\.1 was made"):
        git.fast_forward(root, "main", "baseimage/cuda-12.9.1")


def test_commit_on_branch_leaves_the_checkout_alone(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _commit(root, "FROM x\n", "feature")
    (root / "Dockerfile").write_text("local edit\n")
    sha = git.commit_on_branch(root, "feature", {"CHANGELOG.md": "# Changelog\n"}, "notes")
    assert sha and git.show(root, "feature", "CHANGELOG.md") == "# Changelog\n"
    assert (root / "Dockerfile").read_text() == "local edit\n" and not (root / "CHANGELOG.md").exists()
    assert git.commit_on_branch(root, "feature", {"CHANGELOG.md": "# Changelog\n"}, "notes") is None


def test_github_merge_and_issue() -> None:
    calls: list[Request] = []

    def handle(req: Request) -> Reply:
        calls.append(req)
        if req.path == "/repos/acme/training/pulls/5/merge":
            return Reply(200, b'{"sha": "0123456789abcdef", "merged": true}')
        if req.path == "/repos/acme/training/pulls/6/merge":
            return Reply(405, b'{"message": "Pull Request is not mergeable"}')
        return Reply(201, b'{"number": 9, "html_url": "http://github.local/acme/training/issues/9"}')

    with Endpoint(handle) as ep:
        github = GitHub(GitHubRepo.parse("acme/training", ep.url), "token-x")
        assert github.merge_pull_request(5) == "0123456789abcdef"
        with pytest.raises(GitHubError, match="HTTP 405: Pull Request is not mergeable"):
            github.merge_pull_request(6)
        issue = github.open_issue("rollback", "body", ["baseimage"])
    assert issue["html_url"].endswith("/issues/9")
    assert (calls[0].method, json.loads(calls[0].body)) == ("PUT", {"merge_method": "merge"})
    assert json.loads(calls[2].body) == {"title": "rollback", "body": "body", "labels": ["baseimage"]}


def test_compose_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match=r"compose\.yaml: compose file not found"):
        Compose(tmp_path / "compose.yaml", "p").up({"TRAINING_IMAGE": "x"})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("docker_host: 10.0.0.5:2375", "docker_host must be a DOCKER_HOST URL"),
        ("health_url: 127.0.0.1:8000/health", "health_url must be an http:// or https:// URL"),
        ("image: nope", "environments.staging.image is 'nope', not a managed image"),
    ],
)
def test_environment_settings_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    health = "" if line.startswith("health_url") else "    health_url: http://127.0.0.1:8000/health\n"
    path.write_text(
        "images: [{name: training, dockerfile: D, track: cuda}]\nenvironments:\n  staging:\n"
        f"    compose_file: c.yaml\n    project: s\n{health}    {line}\n"
    )
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path).environment_image("staging")
    if not line.startswith("image"):
        assert f"{path}:" in str(info.value), "the error names the file and line"


def _fake(bin_dir: Path, name: str, exit_code: int) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ({"docker": 0, "docker-compose": 0}, ("docker", "compose")),  # the v2 plugin answers
        ({"docker": 1, "docker-compose": 0}, ("docker-compose",)),  # no plugin: v1
        ({"docker-compose": 0}, ("docker-compose",)),
    ],
)
def test_compose_v2_preferred_v1_where_only_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tools: dict[str, int], expected: tuple[str, ...]
) -> None:
    from tasks.deploy import compose

    for name, code in tools.items():
        _fake(tmp_path, name, code)
    monkeypatch.setenv("PATH", str(tmp_path))
    compose.compose_command.cache_clear()
    try:
        assert tuple(Path(part).name if "/" in part else part for part in compose.compose_command()) == expected
    finally:
        compose.compose_command.cache_clear()


def test_no_compose_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.deploy import compose

    monkeypatch.setenv("PATH", str(tmp_path))
    compose.compose_command.cache_clear()
    try:
        with pytest.raises(ComposeError, match="install docker-compose-plugin"):
            compose.compose_command()
    finally:
        compose.compose_command.cache_clear()


def test_rollback_refuses_a_bad_image_reference_before_touching_anything(tmp_path: Path) -> None:
    from flows.rollback import rollback

    config = tmp_path / "policy.yaml"
    config.write_text(
        "images: [{name: t, dockerfile: D, track: cuda}]\nenvironments:\n  staging: {compose_file: c.yaml, "
        "project: s, health_url: 'http://127.0.0.1:9/health'}\n"
    )
    with pytest.raises(ImageReferenceError, match="Nope:Latest"):
        rollback.fn(environments=["staging"], to="Nope:Latest", config_path=str(config))
    assert not (tmp_path / "reports").exists(), "nothing written, nothing restored"
