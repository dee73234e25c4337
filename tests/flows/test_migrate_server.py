"""The migrate flow on a real `prefect server start`: it pauses at its first approval; another
client resumes it with approve (twice, to the end) or reject, and a short timeout ends it cleanly.
The reviewer and the outcome are recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.prefect_server import PrefectServer, approve, prefect_api, wait_paused
from tests.support.repo import commit_all, copy_managed

TOKEN = "ghp_test-token-not-real"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-home")).start()
    yield srv
    srv.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return commit_all(copy_managed(tmp_path / "repo"))


def start_migrate(
    server: PrefectServer, repo: Path, timeout_s: int = 120, github_api: str | None = None
) -> subprocess.Popen[str]:
    config = repo / "config" / "policy.yaml"
    text = config.read_text().replace("timeout_s: 86400", f"timeout_s: {timeout_s}")
    # No environments: these tests are about the approvals (tests/flows/test_deployment.py deploys).
    text = text[: text.index("environments:")] + text[text.index("validation:") :]
    if github_api:
        text += f"\ngithub:\n  repository: acme/training\n  api_url: {github_api}\n  token_block: null\n"
    config.write_text(text)
    pr = [] if github_api else ["--no-pr"]
    argv = [
        sys.executable,
        "-m",
        "baseimage.cli",
        "migrate",
        "--to",
        "12.9.1",
        *pr,
        "--validation",
        "skip",
        "--config",
        str(config),
        "--out",
        str(repo / "reports"),
        "--poll-interval",
        "1",
    ]
    env = {**server.env(), "GITHUB_TOKEN": TOKEN}
    return subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def paused_run(server: PrefectServer, proc: subprocess.Popen[str], deadline_s: float = 90) -> dict[str, Any]:
    return wait_paused(server, proc, deadline_s)


def migrate_run_id(server: PrefectServer) -> str:
    runs = prefect_api.post(f"{server.api_url}/flow_runs/filter", timeout=10, json={"sort": "START_TIME_DESC"}).json()
    flows = {f["id"]: f["name"] for f in prefect_api.post(f"{server.api_url}/flows/filter", timeout=10, json={}).json()}
    return next(r["id"] for r in runs if flows[r["flow_id"]] == "migrate")


def run_state(server: PrefectServer, run_id: str) -> tuple[str, str]:
    state = prefect_api.get(f"{server.api_url}/flow_runs/{run_id}", timeout=10).json()["state"]
    return state["type"], state["name"]


def outcome(repo: Path) -> dict[str, Any]:
    (report,) = (repo / "reports").glob("migrate-*.json")
    return dict(json.loads(report.read_text()))


def test_approval_resumed_through_the_api_continues_the_run(server: PrefectServer, repo: Path) -> None:
    proc = start_migrate(server, repo)
    paused = paused_run(server, proc)
    run_id = migrate_run_id(server)
    for empty in ("", "   "):  # who approved is recorded: an empty reviewer is refused
        refused = subprocess.run(
            [sys.executable, "-m", "baseimage.cli", "approve", run_id, "--reviewer", empty],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode == 2 and "--reviewer is empty" in refused.stderr, refused.stderr
    through_api = prefect_api.post(
        f"{server.api_url}/flow_runs/{paused['id']}/resume",
        timeout=10,
        json={"run_input": {"approve": True, "reviewer": " ", "comment": ""}},
    ).json()
    assert through_api["status"] != "ACCEPT", "the server itself refuses a blank reviewer"
    assert run_state(server, paused["id"])[0] == "PAUSED"
    assert "approved" in approve(server, run_id, "--reviewer", "alice", "--comment", "diff looks right")
    assert proc.wait(120) == 0, proc.stdout.read() if proc.stdout else ""
    result = outcome(repo)
    # Without environments there is nothing to deploy, so no production approval is asked; with
    # --validation skip nothing was validated, and the outcome says so.
    assert result["outcome"].startswith("validation skipped; nothing deployed: no staging or production environment")
    assert result["validation"]["summary"].startswith("validation skipped: 0 checks")
    assert run_state(server, run_id) == ("COMPLETED", "NotValidated")
    assert [(d["stage"], d["outcome"], d["reviewer"], d["comment"]) for d in result["decisions"]] == [
        ("update", "approved", "alice", "diff looks right"),
    ]
    branches = subprocess.run(["git", "-C", str(repo), "branch"], capture_output=True, text=True, check=True).stdout
    assert "baseimage/cuda-12.9.1" in branches


def test_an_approval_given_as_the_run_pauses_waits_for_the_form(server: PrefectServer) -> None:
    """Prefect marks a run PAUSED before it saves the approval form (its schema, then the
    description): a resume in that gap is refused by the server ("Run input schema not found").
    `baseimage approve` waits for the form instead of failing a reviewer who was quick."""
    import asyncio
    import threading

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.approvals import Approval, resume

    api = server.api_url
    flow_id = prefect_api.post(f"{api}/flows/", timeout=10, json={"name": "approval-race"}).json()["id"]
    run_id = prefect_api.post(f"{api}/flow_runs/", timeout=10, json={"flow_id": flow_id}).json()["id"]
    keyset = {part: f"paused-1-{part}" for part in ("description", "response", "schema")}
    paused = {"type": "PAUSED", "name": "Paused", "state_details": {"pause_key": "1", "run_input_keyset": keyset}}
    set_state = prefect_api.post(
        f"{api}/flow_runs/{run_id}/set_state", timeout=10, json={"state": paused, "force": True}
    )
    assert set_state.json()["status"] == "ACCEPT", set_state.text

    def save_form() -> None:  # as pause_flow_run does, a moment after the state
        schema = json.dumps(Approval.model_json_schema(by_alias=True))
        prefect_api.post(f"{api}/flow_runs/{run_id}/input", timeout=10, json={"key": keyset["schema"], "value": schema})

    saver = threading.Timer(1.5, save_form)
    saver.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            assert asyncio.run(resume(run_id, True, "alice", "quick")) == run_id
    finally:
        saver.cancel()
    assert run_state(server, run_id)[0] == "RUNNING"
    response = prefect_api.get(f"{api}/flow_runs/{run_id}/input/{keyset['response']}", timeout=10).json()
    assert response == {"approve": True, "reviewer": "alice", "comment": "quick"}


def test_reject_ends_cleanly_keeps_the_branch_and_comments_the_pr(
    server: PrefectServer, repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(remote)], check=True)
    calls: list[Request] = []

    def github(req: Request) -> Reply:
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        calls.append(req)
        if req.path == "/repos/acme/training/pulls":
            return Reply(201, b'{"number": 5, "html_url": "http://github.local/acme/training/pull/5"}')
        return Reply(201, b"{}")

    with Endpoint(github) as api:
        proc = start_migrate(server, repo, github_api=api.url)
        paused_run(server, proc)
        approve(server, migrate_run_id(server), "--reject", "--reviewer", "carol", "--comment", "not this quarter")
        assert proc.wait(120) == 1
    assert run_state(server, migrate_run_id(server)) == ("CANCELLED", "Rejected")
    pr = json.loads(calls[0].body)
    assert (pr["head"], pr["base"]) == ("baseimage/cuda-12.9.1", "main")
    assert "- training: nvidia/cuda:12.6.0-runtime-ubuntu22.04 -> nvidia/cuda:12.9.1-runtime-ubuntu22.04" in pr["body"]
    assert "## Remaining checklist" in pr["body"]
    assert calls[1].path == "/repos/acme/training/issues/5/comments"
    assert json.loads(calls[1].body) == {"body": "update rejected by carol: not this quarter. The branch is kept."}
    pushed = subprocess.run(["git", "-C", str(remote), "branch"], capture_output=True, text=True, check=True).stdout
    assert "baseimage/cuda-12.9.1" in pushed
    assert outcome(repo)["pull_request"] == "http://github.local/acme/training/pull/5"
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
    assert run_state(server, migrate_run_id(server)) == ("FAILED", "TimedOut")


def test_sigterm_ends_the_run_within_seconds_marked_cancelled(server: PrefectServer, repo: Path) -> None:
    import signal

    proc = start_migrate(server, repo)
    paused_run(server, proc)
    run_id = migrate_run_id(server)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    took = time.monotonic() - began
    assert code != 0 and took < 20, (code, took, proc.stdout.read() if proc.stdout else "")
    deadline = time.monotonic() + 20
    while run_state(server, run_id)[0] != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run_state(server, run_id)[0] == "CANCELLED", run_state(server, run_id)
