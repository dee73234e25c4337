"""The quick-start review with no network at all: it says so loudly and uses the bundled
snapshot; with --sources live it fails clearly instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseimage.cli import main
from tests.conftest import REPO_ROOT


def test_auto_falls_back_to_the_bundled_snapshot(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "review",
            "--config",
            str(REPO_ROOT / "config" / "policy.yaml"),
            "--no-banner",
            "--no-docs",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert "network unreachable" in captured.err and "using the bundled snapshot" in captured.err
    report = json.loads(captured.out)
    assert code == 10
    assert "synthesized from the project's test fixtures" in report["sources"]
    images = {i["image"]: i for i in report["images"]}
    assert images["training"]["target"] == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    assert images["training"]["status"] == "eol"
    assert (tmp_path / Path(report["files"]["json"]).name).exists()


def test_live_without_network_fails_clearly(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "review",
            "--sources",
            "live",
            "--config",
            str(REPO_ROOT / "config" / "policy.yaml"),
            "--no-banner",
            "--no-docs",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 3
    errors = [e for i in report["images"] for e in i["errors"]]
    assert errors and all("cannot connect" in e for e in errors), errors


def test_migrate_dry_run_prints_the_diff_and_changes_nothing(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    from tests.support.repo import commit_all, copy_managed

    repo = commit_all(copy_managed(tmp_path / "repo"))
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    code = main(
        [
            "migrate",
            "--to",
            "12.9.1",
            "--dry-run",
            "--config",
            str(repo / "config" / "policy.yaml"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "-FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04" in out
    assert "dry run: nothing changed" in out
    assert "Dockerfile.cuda126 " not in out, "the 12.6-pinned image is left alone by --to 12.9.1"
    (outcome,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("migrate-*.json")]
    assert outcome["warnings"][0].startswith("this plan was made against the bundled snapshot"), "said in the plan"
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert (
        status == ""
        and subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout == head
    )


def test_migrate_without_a_target_plans_against_the_bundled_snapshot_when_offline(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `migrate` with no --to ran its review live whatever the network, so with no
    network every image was an error row (and the run said "nothing to migrate"); `review` and
    `migrate --to` fall back to the bundled snapshot, said loudly. It does too now, and the plan
    says where it came from."""
    from tests.support.repo import commit_all, copy_managed

    repo = commit_all(copy_managed(tmp_path / "repo", ("dockerfiles", "config", "services")))
    argv = ["migrate", "--dry-run", "--config", str(repo / "config" / "policy.yaml"), "--out", str(tmp_path / "out")]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "-FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04" in captured.out
    assert "this plan was made against the bundled snapshot (config/data/snapshot), as the registry is unreachable" in (
        captured.err
    ), "printed with the outcome (Prefect's own log line may go to a handler another test set up)"
    (outcome,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("migrate-*.json")]
    assert any(w.startswith("this plan was made against the bundled snapshot") for w in outcome["warnings"])
    assert "- warning: this plan was made against the bundled snapshot" in outcome["plan"]


def test_migrate_never_says_nothing_is_due_when_its_review_could_not_research_an_image(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: the review it ran could not look up the only image's base (12.4.1 is in no
    snapshot and the network is unreachable) and said so (exit 3), and `migrate` then ended "no action: nothing to migrate" in NothingToDo with exit 0."""
    from tests.support.repo import commit_all, one_image_repo

    repo = one_image_repo(
        tmp_path / "repo",
        "trainer",
        "Dockerfile",
        "cuda",
        min_driver=580,
        base="nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    )
    commit_all(repo)
    code = main(
        ["migrate", "--dry-run", "--config", str(repo / "config" / "policy.yaml"), "--out", str(tmp_path / "out")]
    )
    captured = capsys.readouterr()
    assert code == 1, "the run failed, and says why"
    assert "nothing to migrate" not in captured.out and not list((tmp_path / "out").glob("migrate-*.json"))
    assert (
        "the review did not finish (trainer (dockerfiles/training/Dockerfile): registry: GET https://" in captured.err
    )
    assert "cannot say whether a migration is due; nothing was written" in captured.err


def test_the_users_unmarked_policy_document_never_fails_the_review(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed policy as the user wrote it (no markers, no findings section): the review completes,
    says what to add, and leaves the document as it is; with a findings heading, the findings go
    under it."""
    from tests.support.repo import copy_managed

    repo = copy_managed(tmp_path / "repo", ("dockerfiles", "config", "services"))
    doc = repo / "docs" / "base-image-policy.md"
    doc.parent.mkdir()
    seed = (REPO_ROOT / "tests" / "fixtures" / "policy-doc" / "seed.md").read_text()
    doc.write_text(seed)
    argv = ["review", "--config", str(repo / "config" / "policy.yaml"), "--sources", "offline", "--no-banner"]
    code = main([*argv, "--out", str(tmp_path / "reports"), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 10, captured.err
    assert any("no findings section found; add a '## Review Findings' section" in w for w in report["warnings"])
    assert doc.read_text() == seed, "a document baseimage cannot place a section in is left as it is"
    doc.write_text(
        seed.replace("## Maintenance Schedule", "## Review Findings\n\nOur own notes.\n\n## Maintenance Schedule")
    )
    assert main([*argv, "--out", str(tmp_path / "reports"), "--json"]) == 10
    capsys.readouterr()
    text = doc.read_text()
    assert "## Review Findings\n\n<!-- baseimage:findings:start -->" in text and "Our own notes." in text
    assert "migration recommended" in text and "| training | nvidia/cuda:12.6.0-runtime-ubuntu22.04 |" in text


def test_a_tag_the_snapshot_lacks_is_that_images_error_only(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One base the bundled snapshot has no answer for: that image's row says so; the other image
    is still researched (it was "cannot connect" for both, as if the network were down)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "a.Dockerfile").write_text("FROM nvidia/cuda:12.6.0-cudnn-runtime-ubuntu22.04\n")
    (tmp_path / "b.Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    (tmp_path / "config" / "policy.yaml").write_text(
        "repository: ..\nimages:\n  - {name: a, dockerfile: a.Dockerfile, track: cuda}\n"
        "  - {name: b, dockerfile: b.Dockerfile, track: cuda}\n"
    )
    argv = ["review", "--config", str(tmp_path / "config" / "policy.yaml"), "--sources", "offline", "--no-banner"]
    code = main([*argv, "--no-docs", "--out", str(tmp_path / "reports"), "--json"])
    report = json.loads(capsys.readouterr().out)
    images = {i["image"]: i for i in report["images"]}
    assert code == 3, "a lookup that could not be answered makes the review incomplete"
    assert any("12.6.0-cudnn-runtime-ubuntu22.04: not in the snapshot" in e for e in images["a"]["errors"])
    assert images["b"]["errors"] == [] and images["b"]["target"] == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"


def test_migrate_with_nothing_due_on_the_snapshot_says_it_was_the_snapshot(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: offline, a review of the bundled snapshot that found nothing due ended "no
    action: nothing to migrate" (NothingToDo) and said it was the snapshot only in a log line: the
    outcome, its JSON and the command's output read as if today's registry had been asked."""
    from tests.support.repo import commit_all, one_image_repo

    # the NGC image: supported, no update recommended
    repo = one_image_repo(tmp_path / "repo", "ngc", "Dockerfile.ngc", "ngc", min_driver=580)
    commit_all(repo)
    code = main(
        ["migrate", "--dry-run", "--config", str(repo / "config" / "policy.yaml"), "--out", str(tmp_path / "out")]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no action: nothing to migrate on the bundled snapshot" in captured.out
    assert "the registry is unreachable" in captured.err, "the warning is printed with the outcome"
    (path,) = (tmp_path / "out").glob("migrate-*.json")
    outcome = json.loads(path.read_text())
    assert outcome["result"] == "nothing to do"
    assert outcome["report"] == str(path) and f"outcome: {path}" in captured.out, "the outcome says where it is"
    assert outcome["warnings"] and outcome["warnings"][0].startswith("this review was of the bundled snapshot")


def test_migrate_report_of_an_offline_review_with_nothing_due_says_it_was_the_snapshot(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`migrate --report` of a review made on a snapshot that found nothing due: the same caveat
    as a migration that reviewed the snapshot itself (before, a plain "nothing to migrate")."""
    from tests.support.repo import commit_all, one_image_repo

    repo = one_image_repo(tmp_path / "repo", "ngc", "Dockerfile.ngc", "ngc", min_driver=580)
    config = repo / "config" / "policy.yaml"
    commit_all(repo)
    argv = ["review", "--sources", "offline", "--config", str(config), "--no-banner", "--no-docs"]
    assert main([*argv, "--out", str(tmp_path / "review")]) == 0
    (report,) = (tmp_path / "review").glob("review-*.json")
    capsys.readouterr()
    argv = ["migrate", "--report", str(report), "--dry-run", "--config", str(config)]
    code = main([*argv, "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no action: nothing to migrate in a review of an offline snapshot" in captured.out
    (outcome,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("migrate-*.json")]
    assert outcome["warnings"] and str(report) in outcome["warnings"][0]
    assert "says nothing of today's registry" in outcome["warnings"][0]
