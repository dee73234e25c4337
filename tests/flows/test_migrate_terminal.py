"""Approvals that can be given: on Prefect's temporary API (no PREFECT_API_URL) nobody else can
resume a pause, so `baseimage migrate` asks on the terminal when it has one (the same typed
input: approve, reviewer, comment) and otherwise refuses to start, naming what to set."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.repo import commit_all


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "dockerfiles").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "dockerfiles" / "Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    (root / "config" / "policy.yaml").write_text(
        "images: [{name: t, dockerfile: dockerfiles/Dockerfile, track: cuda}]\napprovals: {required_for: [update, production]}\n"
    )
    return commit_all(root)


def env_without_server(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_LOGGING_LEVEL="WARNING")
    return env


def argv(repo: Path) -> list[str]:
    return [
        sys.executable, "-m", "baseimage.cli", "migrate", "--to", "12.9.1", "--no-pr", "--validation", "skip",
        "--config", str(repo / "config" / "policy.yaml"), "--out", str(repo / "reports"),
    ]  # fmt: skip


def test_without_a_server_or_a_terminal_the_run_is_refused_before_it_starts(repo: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        argv(repo), env=env_without_server(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs the update approval" in done.stderr and "PREFECT_API_URL" in done.stderr
    assert "baseimage serve" in done.stderr and "docs/operator-guide.md" in done.stderr
    assert (
        not (repo / "reports").exists()
        and "baseimage/"
        not in subprocess.run(["git", "-C", str(repo), "branch"], capture_output=True, text=True, check=True).stdout
    ), "nothing was started"


def test_on_a_terminal_the_approval_is_typed(repo: Path, tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv(repo), env=env_without_server(tmp_path), stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    seen = b""

    def expect(text: bytes, timeout: float = 120) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")[-3000:]
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break

    try:
        expect(b"Approve the update stage? [y/N]")
        assert b"## Approve the update?" in seen and b"+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04" in seen
        os.write(master, b"y\n")
        expect(b"Reviewer (required):")
        os.write(master, b"  \n")  # blank: asked again
        expect(b"A reviewer is required")
        os.write(master, b"alice\n")
        expect(b"Comment (optional):")
        os.write(master, b"typed on the terminal\n")
        assert proc.wait(180) == 0, seen.decode(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    (report,) = (repo / "reports").glob("migrate-*.json")
    result = json.loads(report.read_text())
    assert result["decisions"] == [
        {"stage": "update", "outcome": "approved", "reviewer": "alice", "comment": "typed on the terminal"}
    ]
    assert result["outcome"].startswith("validation skipped; nothing deployed")
