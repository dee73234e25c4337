"""The migrate flow on a real `prefect server start`: it pauses at its first approval; another
client resumes it with approve (twice, to the end) or reject, and a short timeout ends it cleanly.
The reviewer and the outcome are recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO_ROOT
from tests.support.prefect_server import PrefectServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-home")).start()
    yield srv
    srv.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for part in ("dockerfiles", "docs", "config"):
        shutil.copytree(REPO_ROOT / part, root / part, ignore=shutil.ignore_patterns("snapshot"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init"], check=True
    )
    return root


def start_migrate(server: PrefectServer, repo: Path, timeout_s: int = 120) -> subprocess.Popen[str]:
    config = repo / "config" / "policy.yaml"
    config.write_text(config.read_text().replace("timeout_s: 86400", f"timeout_s: {timeout_s}"))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baseimage.cli",
            "migrate",
            "--to",
            "12.9.1",
            "--no-pr",
            "--validation",
            "skip",
            "--config",
            str(config),
            "--out",
            str(repo / "reports"),
            "--poll-interval",
            "1",
        ],
        cwd=repo,
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def paused_run(server: PrefectServer, proc: subprocess.Popen[str], deadline_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        runs = requests.post(
            f"{server.api_url}/flow_runs/filter",
            timeout=10,
            json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}},
        ).json()
        if runs:
            return dict(runs[0])
        time.sleep(0.5)
    raise AssertionError("no paused run")


def migrate_run_id(server: PrefectServer) -> str:
    runs = requests.post(f"{server.api_url}/flow_runs/filter", timeout=10, json={"sort": "START_TIME_DESC"}).json()
    flows = {f["id"]: f["name"] for f in requests.post(f"{server.api_url}/flows/filter", timeout=10, json={}).json()}
    return next(r["id"] for r in runs if flows[r["flow_id"]] == "migrate")


def approve(server: PrefectServer, run_id: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "baseimage.cli", "approve", run_id, *extra],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def outcome(repo: Path) -> dict[str, Any]:
    (report,) = (repo / "reports").glob("migrate-*.json")
    return dict(json.loads(report.read_text()))


def test_approve_twice_reaches_the_end(server: PrefectServer, repo: Path) -> None:
    proc = start_migrate(server, repo)
    paused_run(server, proc)
    run_id = migrate_run_id(server)
    assert "approved" in approve(server, run_id, "--reviewer", "alice", "--comment", "diff looks right")
    time.sleep(1)
    paused_run(server, proc)
    approve(server, run_id, "--reviewer", "bob")
    assert proc.wait(120) == 0, proc.stdout.read() if proc.stdout else ""
    result = outcome(repo)
    assert result["outcome"].startswith("approved for production")
    assert [(d["stage"], d["outcome"], d["reviewer"], d["comment"]) for d in result["decisions"]] == [
        ("update", "approved", "alice", "diff looks right"),
        ("production", "approved", "bob", ""),
    ]
    branches = subprocess.run(["git", "-C", str(repo), "branch"], capture_output=True, text=True, check=True).stdout
    assert "baseimage/cuda-12.9.1" in branches


def test_reject_ends_cleanly_and_keeps_the_branch(server: PrefectServer, repo: Path) -> None:
    proc = start_migrate(server, repo)
    paused_run(server, proc)
    approve(server, migrate_run_id(server), "--reject", "--reviewer", "carol", "--comment", "not this quarter")
    assert proc.wait(120) == 1
    result = outcome(repo)
    assert result["outcome"] == "stopped at update: rejected"
    assert result["decisions"] == [
        {"stage": "update", "outcome": "rejected", "reviewer": "carol", "comment": "not this quarter"}
    ]
    assert (
        "baseimage/cuda-12.9.1"
        in subprocess.run(["git", "-C", str(repo), "branch"], capture_output=True, text=True, check=True).stdout
    )


def test_timeout_ends_cleanly(server: PrefectServer, repo: Path) -> None:
    proc = start_migrate(server, repo, timeout_s=3)
    assert proc.wait(120) == 1, proc.stdout.read() if proc.stdout else ""
    result = outcome(repo)
    assert result["outcome"] == "stopped at update: timed out"
    assert result["decisions"][0]["reviewer"] is None
