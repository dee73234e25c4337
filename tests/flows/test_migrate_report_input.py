"""`baseimage migrate --report FILE` with a file that is not a review report: one line naming the
file and what to pass, exit 2, and no flow run started (so no traceback in its logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseimage.cli import main
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"findings": []}), "not a review report (no images list)"),
        (json.dumps({"schema": 99, "images": []}), "report schema 99 is newer than this baseimage reads"),
    ],
)
def test_a_bad_report_is_one_message(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    report = tmp_path / "review.json"
    report.write_text(content)
    config = str(REPO_ROOT / "config" / "policy.yaml")
    code = main(["migrate", "--report", str(report), "--dry-run", "--config", config, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--report {report}: {message}" in err
    assert "Traceback" not in err and not list(tmp_path.glob("migrate-*.json")), "no migration ran"


def _repo(tmp_path: Path, policy: str) -> Path:
    from tests.support.repo import commit_all

    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    (root / "config" / "policy.yaml").write_text(policy)
    return commit_all(root)


@pytest.mark.parametrize(
    ("policy", "to", "message"),
    [
        (
            "repository: ..\nimages: [{name: t, dockerfile: Dockerfile, track: cuda}]\n",
            "12.9",
            "--to '12.9': expected a CUDA version of three ASCII-digit parts, like 12.9.1",
        ),
        (
            "repository: ..\nimages: [{name: t, dockerfile: Dockerfile, track: cuda, requirements: req/ml.txt}]\n",
            "12.9.1",
            "images[t].requirements req/ml.txt does not exist",
        ),
    ],
)
def test_bad_input_is_one_message_before_any_server_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, to: str, message: str
) -> None:
    config = _repo(tmp_path, policy) / "config" / "policy.yaml"
    code = main(["migrate", "--to", to, "--dry-run", "--config", str(config), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert "prefect:" not in err, "no Prefect API was started for input that is wrong on its face"


def test_a_plan_refused_in_the_flow_is_its_message_without_a_traceback(tmp_path: Path) -> None:
    """--to a release that does not exist is found in the flow (it asks the registry, here the
    bundled snapshot): the run fails with the message and no traceback on the terminal."""
    import os
    import subprocess
    import sys

    repo = _repo(tmp_path, "repository: ..\nimages: [{name: t, dockerfile: Dockerfile, track: cuda}]\n")
    env = {**os.environ, "BASEIMAGE_SERVER": "off", "PREFECT_HOME": str(tmp_path / "prefect")}
    argv = [sys.executable, "-m", "baseimage.cli", "migrate", "--to", "12.7.0", "--dry-run"]
    done = subprocess.run(
        [*argv, "--config", str(repo / "config" / "policy.yaml"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=240,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "--to 12.7.0: nothing was written" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def test_a_from_behind_an_undeclared_arg_is_named_with_what_to_do(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`FROM nvidia/cuda:${CUDA}-runtime-${UBUNTU}` with UBUNTU never declared: migrate --to said
    "no managed image is on nvidia/cuda", which sent the user looking in the wrong place."""
    repo = _repo(tmp_path, "repository: ..\nimages: [{name: t, dockerfile: Dockerfile, track: cuda}]\n")
    (repo / "Dockerfile").write_text("ARG CUDA=12.6.0\nFROM nvidia/cuda:${CUDA}-runtime-${UBUNTU}\n")
    config = str(repo / "config" / "policy.yaml")
    code = main(["migrate", "--to", "12.9.1", "--dry-run", "--config", config, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "images[t]: Dockerfile:2: FROM nvidia/cuda:${CUDA}-runtime-${UBUNTU} cannot be resolved" in err, err
    assert "images[t].build_args" in err and "no managed image is on nvidia/cuda" not in err
