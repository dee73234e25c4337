"""Every migrate run makes its plan afresh (a second run after the repository or the policy file
changed plans from what is there now), a retry of the same run reuses its plan, and a plan that
does not match the repository stops the run before any approval is asked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.repo import commit_all


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "dockerfiles").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "dockerfiles" / "Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    (root / "config" / "policy.yaml").write_text(
        "images: [{name: t, dockerfile: dockerfiles/Dockerfile, track: cuda}]\n"
        "approvals: {required_for: [production]}\n"
    )
    return commit_all(root)


def migrate_dry(repo: Path, **kw: Any) -> Any:
    from flows.migrate import migrate

    return migrate(
        to="12.9.1",
        dry_run=True,
        config_path=str(repo / "config" / "policy.yaml"),
        out_dir=str(repo / "reports"),
        return_state=True,
        **kw,
    )


def test_a_second_run_plans_from_the_repository_as_it_is_now(prefect_harness: None, repo: Path) -> None:
    first = migrate_dry(repo).result()
    assert "-FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04" in first["diff"]
    (repo / "dockerfiles" / "Dockerfile").write_text("FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\n")
    git(repo, "commit", "-qam", "someone moved the base")
    second = migrate_dry(repo).result()
    assert "-FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04" in second["diff"], "a new run never reuses a plan"
    assert second["plan"] != first["plan"]


def test_a_second_run_follows_an_edited_policy_file(prefect_harness: None, repo: Path) -> None:
    config = repo / "config" / "policy.yaml"
    assert migrate_dry(repo).result()["plan"].startswith("- t: nvidia/cuda:12.6.0")
    config.write_text(config.read_text().replace("track: cuda}", 'track: cuda, pin_minor: "12.6"}'))
    git(repo, "commit", "-qam", "pin to 12.6")
    state = migrate_dry(repo)  # the image is now pinned to 12.6: --to 12.9.1 has nothing to move
    assert state.is_failed(), "the first run's plan (which still moved it) was not reused"


def test_a_retry_of_the_same_run_reuses_its_plan(
    prefect_harness: None, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.migrate as module

    planned: list[str] = []
    real_checked_plan = module._checked_plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        planned.append(args[1])  # the --to version
        return real_checked_plan(*args, **kwargs)

    attempts: list[int] = []
    real_update = module.update

    @module.task(name="update")
    def flaky_update(repo_path: str, plan: Any, dry_run: bool) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt dies after planning")
        return real_update.fn(repo_path, plan, dry_run)

    monkeypatch.setattr(module, "_checked_plan", counting)
    monkeypatch.setattr(module, "update", flaky_update)
    retrying = module.migrate.with_options(retries=1, retry_delay_seconds=0)
    state = retrying(
        to="12.9.1",
        dry_run=True,
        config_path=str(repo / "config" / "policy.yaml"),
        out_dir=str(repo / "reports"),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert len(attempts) == 2 and planned == ["12.9.1"], "the retry got the plan back; it was made once"
    again = retrying(
        to="12.9.1",
        dry_run=True,
        config_path=str(repo / "config" / "policy.yaml"),
        out_dir=str(repo / "reports"),
        return_state=True,
    )
    assert again.is_completed() and planned == ["12.9.1", "12.9.1"], "a new run plans again"


def test_a_stale_report_stops_the_run_before_any_approval(prefect_harness: None, repo: Path) -> None:
    from flows.migrate import migrate

    report = repo.parent / "review.json"
    report.write_text(
        json.dumps(
            {
                "images": [
                    {
                        "image": "t",
                        "file": "dockerfiles/Dockerfile",
                        "current": "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
                        "target": "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
                        "recommended": True,
                        "reasons": ["12.4.1 is EOL"],
                        "plan": {"kind": "cuda", "matrix": []},
                    }
                ]
            }
        )
    )
    config = repo / "config" / "policy.yaml"
    config.write_text(config.read_text().replace("required_for: [production]", "required_for: [update, production]"))
    git(repo, "commit", "-qam", "both approvals")
    state = migrate(
        report_path=str(report), config_path=str(config), out_dir=str(repo / "reports"), return_state=True
    )  # an approval pause here would wait for its 24 h timeout
    assert state.is_failed()
    # The plan is checked against the repository when it is made (and again by the update).
    assert "nvidia/cuda:12.4.1-runtime-ubuntu22.04 is not what dockerfiles/Dockerfile has now" in str(state.message)
    assert "baseimage/" not in git(repo, "branch")


TWO_STAGES = (
    "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04 AS a\nRUN echo a\n"
    "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04 AS b\nRUN echo b\n"
)


def test_two_stages_on_one_base_are_one_change(prefect_harness: None, repo: Path) -> None:
    """Both FROMs move in one change (the second change saw the first's result and called the
    plan stale), and the review lists the image once."""
    (repo / "dockerfiles" / "Dockerfile").write_text(TWO_STAGES)
    commit_all(repo)
    outcome = migrate_dry(repo).result()
    assert outcome["diff"].count("+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04 AS ") == 2
    from baseimage import wiring
    from baseimage.settings import load_settings
    from tasks.research.review import Occurrence
    from tasks.research.targets import occurrences_of

    found = occurrences_of(wiring.targets_of(load_settings(repo / "config" / "policy.yaml"), None))
    assert [o.base.line for o in found if isinstance(o, Occurrence)] == [1] and len(found) == 1


def test_what_the_update_could_not_place_is_in_the_outcome_and_on_the_terminal(
    prefect_harness: None, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy document whose Current Configuration names another image: the warning reached
    neither the outcome nor the terminal (ApplyResult.warnings had no reader)."""
    doc = repo / "docs" / "base-image-policy.md"
    doc.parent.mkdir()
    doc.write_text("# Policy\n\n## Current Configuration\n\nWe run `nvidia/cuda:11.8.0-runtime-ubuntu22.04`.\n")
    commit_all(repo)
    from baseimage.cli import main

    config = str(repo / "config" / "policy.yaml")
    code = main(["migrate", "--to", "12.9.1", "--dry-run", "--config", config, "--out", str(repo / "reports")])
    err = capsys.readouterr().err
    assert code == 0
    expected = (
        "docs/base-image-policy.md: Current Configuration does not name nvidia/cuda:12.6.0-runtime-ubuntu22.04; "
        "its base image was not changed"
    )
    assert f"warning: {expected}" in err
    saved = json.loads(next((repo / "reports").glob("migrate-*.json")).read_text())
    assert expected in saved["warnings"]
    assert "docs/base-image-policy.md: no matrix section found" in " ".join(saved["warnings"])
