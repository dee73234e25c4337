"""The deployment phase against a real daemon and Debian's docker-compose: the stub service (on a
seeded NVIDIA-like base) runs as a "staging" and a "production" compose project; a migration to a
newer base builds the release image from the migration commit, deploys staging, soaks it, asks
for the production approval (resumed through the API) and deploys production. Each injected fault
ends in a rollback that restores the previous image, healthy, with the evidence kept."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.candidate import write_service_repo
from tests.support.prefect_server import PrefectServer, approve, approve_when_paused, prefect_api, wait_paused
from tests.support.registry_server import LocalRegistry, free_port
from tests.support.site import PREVIOUS, Site

pytestmark = pytest.mark.docker

OLD, NEW = "12.6.0-runtime-ubuntu22.04", "12.9.1-runtime-ubuntu22.04"
DOCKERFILE = "dockerfiles/svc/Dockerfile"


@pytest.fixture(scope="module")
def previous_image(docker_client: Any, registry: LocalRegistry, model_onnx: Path, tmp_path_factory: Any) -> str:
    """The service as it runs before the migration, on the old base."""
    root = write_service_repo(tmp_path_factory.mktemp("previous"), model_onnx, f"{registry.host}/nvidia/cuda:{OLD}")
    docker_client.images.build(
        path=str(root), dockerfile="dockerfiles/svc/Dockerfile", tag=PREVIOUS, labels={"baseimage.test": "1"}
    )
    return PREVIOUS


@pytest.fixture
def site(
    tmp_path: Path, registry: LocalRegistry, model_onnx: Path, docker_client: Any, previous_image: str
) -> Iterator[Site]:
    site = Site(tmp_path / "repo", f"{registry.host}/nvidia/cuda:{OLD}", model_onnx, docker_client)
    yield site
    site.down()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-home")).start()
    yield srv
    srv.stop()


def start_migrate(server: PrefectServer, site: Site) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "baseimage.cli", "migrate", "--to", "12.9.1", "--no-pr", "--validation", "skip"]
    argv += ["--config", str(site.config), "--out", str(site.root / "reports"), "--poll-interval", "1"]
    return subprocess.Popen(
        argv, cwd=site.root, env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def assert_rolled_back(site: Site, environments: tuple[str, ...]) -> dict[str, Any]:
    for name in environments:
        assert site.image(name) == PREVIOUS, f"{name} should run the previous image again"
        assert site.healthy(name)
    result = site.outcome()
    rollback = result["rollback"]
    assert [r["environment"] for r in rollback["environments"]] == list(reversed(environments))
    assert all(r["action"] == "restored" and r["health"] == "ok" for r in rollback["environments"])
    incident = Path(rollback["incident"])
    assert incident.parent.name == "incidents" and incident.exists()
    assert "## What failed" in incident.read_text() and "logs (last " in incident.read_text()
    for row in rollback["environments"]:
        assert Path(row["logs"]).read_text().strip(), "the service logs are kept as evidence"
    assert "baseimage/cuda-12.9.1" not in site.git("log", "--format=%D", "main"), "main is not merged"
    return result


def test_release_reaches_production_after_soak_and_approval(server: PrefectServer, site: Site) -> None:
    site.configure(approvals="update, production")
    site.start_previous()
    proc = start_migrate(server, site)
    assert "## Approve the update?" in approve_when_paused(server, "alice", proc)
    time.sleep(1.5)
    shown = approve_when_paused(server, "bob", proc)
    assert "## Approve production?" in shown and "### Staging soak: **passed**" in shown, shown
    assert "coverage); store `" in shown and "- chart: `" in shown
    assert "**validation skipped: 0 checks (--validation skip)" in shown, "the approver sees what was not proven"
    assert proc.wait(300) == 0, proc.stdout.read() if proc.stdout else ""
    result = site.outcome()
    image = result["image"]
    assert result["outcome"] == f"deployed to production: {image}"
    assert image.startswith("baseimage/svc:") and site.image("staging") == site.image("production") == image
    assert site.healthy("staging") and site.healthy("production")
    assert result["soak"]["status"] == "passed" and result["soak"]["samples"] == result["soak"]["expected"]
    assert [d["stage"] for d in result["decisions"]] == ["update", "production"]
    assert result["merge"].startswith("fast-forwarded main to baseimage/cuda-12.9.1")
    changelog = site.git("show", "main:CHANGELOG.md")
    assert "## [cuda-12.9.1] - " in changelog and "approved by bob; staging soak passed" in changelog
    dockerfile = site.git("show", f"main:{DOCKERFILE}")
    assert f"/nvidia/cuda:{NEW}" in dockerfile
    ledger = json.loads((site.root / "reports" / "deployments" / "production.json").read_text())["history"]
    assert [h["status"] for h in ledger] == ["deployed", "deployed"]
    assert ledger[-1]["previous"]["image"] == PREVIOUS and ledger[-1]["commit"]

    # Ad hoc: `baseimage rollback --env production` puts the previous image back, reverts the merged
    # migration commit on a branch and files a local incident; a second run changes nothing.
    def cli_rollback() -> str:
        argv = [sys.executable, "-m", "baseimage.cli", "rollback", "--env", "production", "--id", "adhoc"]
        argv += ["--config", str(site.config), "--reason", "latency regression"]
        done = subprocess.run(argv, env=server.env(), capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = cli_rollback()
    assert f"production: restored -> {PREVIOUS}" in first
    assert f"code: reverted {ledger[-1]['commit'][:12]} on baseimage/rollback-" in first
    assert site.image("production") == PREVIOUS and site.healthy("production") and site.image("staging") == image
    assert f"/nvidia/cuda:{OLD}" in site.git("show", f"baseimage/rollback-{ledger[-1]['commit'][:12]}:{DOCKERFILE}")
    incident = site.root / "reports" / "incidents" / "adhoc.md"
    assert "latency regression" in incident.read_text()
    second = cli_rollback()
    assert "production: none: already rolled back" in second and "already holds the revert" in second


def test_production_deploy_failure_rolls_both_environments_back(server: PrefectServer, site: Site) -> None:
    site.configure(faults={"production": "health-fail"})
    site.start_previous()
    proc = start_migrate(server, site)
    approve_when_paused(server, "bob", proc)
    assert proc.wait(300) == 1, proc.stdout.read() if proc.stdout else ""
    result = assert_rolled_back(site, ("staging", "production"))
    assert result["outcome"].startswith("production deploy failed: production: deploy of baseimage/svc:")
    assert result["outcome"].endswith("; rolled back")


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("health-fail", "staging deploy failed: staging: deploy of baseimage/svc:"),
        ("oom-mid", "staging soak failed: aborted: CUDA out-of-memory in the logs: RuntimeError: CUDA out of memory"),
        ("rate-drop", "staging soak failed: failed: task success rate"),
    ],
)
def test_staging_fault_rolls_staging_back(prefect_harness: None, site: Site, fault: str, outcome: str) -> None:
    from flows.migrate import migrate
    from flows.rollback import rollback

    site.configure(faults={"staging": fault})
    site.start_previous()
    state = migrate(
        to="12.9.1",
        no_pr=True,
        validation="skip",
        config_path=str(site.config),
        out_dir=str(site.root / "reports"),
        return_state=True,
    )
    assert (state.type.value, state.name) == ("FAILED", "RolledBack"), "a rolled-back migration is no success"
    result = state.result(raise_on_failure=False)
    assert result["result"] == "failed; rolled back"
    assert result["outcome"].startswith(outcome), result["outcome"]
    assert_rolled_back(site, ("staging",))
    assert site.image("production") == PREVIOUS, "production was never touched"
    # The same rollback again: nothing restored twice, the same incident, earlier evidence kept.
    first = result["rollback"]
    logs_before = sorted(Path(first["record"]).parent.glob("staging-logs-*.txt"))
    again = rollback(environments=["staging"], reason="again", config_path=str(site.config), rollback_id=first["id"])
    assert again["environments"][0]["action"] == "none: already rolled back"
    assert again["incident"] == first["incident"]
    logs_after = sorted(Path(first["record"]).parent.glob("staging-logs-*.txt"))
    assert set(logs_before) < set(logs_after)
    assert site.image("staging") == PREVIOUS and site.healthy("staging")


def test_cli_deploy_failure_names_the_previous_image_and_the_way_back(site: Site) -> None:
    site.configure()
    site.start_previous()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "baseimage.cli", *args, "--config", str(site.config)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)

    # An image nobody can pull (a registry port on loopback with nothing behind it).
    failed = cli("deploy", "--env", "staging", "--image", "127.0.0.1:9/nothing:1")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "deploy failed: staging: deploy of 127.0.0.1:9/nothing:1 failed" in failed.stderr
    assert f"the previous image was {PREVIOUS}" in failed.stderr
    assert "put it back with: baseimage rollback --env staging" in failed.stderr
    assert site.image("staging") == PREVIOUS and site.healthy("staging")
    back = cli("rollback", "--env", "staging", "--reason", "bad tag")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "staging: none: already running it" in back.stdout
    assert "code: none: no migration commit given" in back.stdout


def test_production_changes_only_through_a_recorded_approval_or_break_glass(site: Site, docker_client: Any) -> None:
    site.configure()
    site.start_previous()
    hotfix = "baseimage-test/svc:hotfix"
    docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {PREVIOUS}\nLABEL hotfix=1\n".encode()),
        tag=hotfix,
        labels={"baseimage.test": "1"},
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "baseimage.cli", *args, "--config", str(site.config)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)

    refused = cli("deploy", "--env", "production", "--image", hotfix)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "production is protected: baseimage-test/svc:hotfix has no recorded approval" in refused.stderr
    assert "--break-glass --reason TEXT" in refused.stderr
    no_reason = cli("deploy", "--env", "production", "--image", hotfix, "--break-glass")
    assert no_reason.returncode == 2 and "--break-glass needs --reason TEXT" in no_reason.stderr
    assert site.image("production") == PREVIOUS, "nothing changed without an approval"

    staging = cli("deploy", "--env", "staging", "--image", hotfix)  # staging is not protected
    assert staging.returncode == 0, staging.stdout + staging.stderr

    rb_refused = cli("rollback", "--env", "production", "--to", hotfix)
    assert rb_refused.returncode == 2, rb_refused.stdout + rb_refused.stderr
    assert "production: baseimage-test/svc:hotfix never ran there" in rb_refused.stderr
    assert site.image("production") == PREVIOUS

    forced = cli("deploy", "--env", "production", "--image", hotfix, "--break-glass", "--reason", "CVE hotfix INC-42")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "break-glass recorded for production by " in forced.stdout
    assert site.image("production") == hotfix and site.healthy("production")
    approvals = json.loads((site.root / "reports" / "approvals" / "production.json").read_text())["approvals"]
    assert (approvals[-1]["kind"], approvals[-1]["comment"]) == ("break-glass", "CVE hotfix INC-42")
    (incident,) = (site.root / "reports" / "incidents").glob("break-glass-production-*.md")
    assert "CVE hotfix INC-42" in incident.read_text() and hotfix in incident.read_text()
    ledger = json.loads((site.root / "reports" / "deployments" / "production.json").read_text())["history"]
    assert ledger[-1]["note"].startswith("break-glass by ") and ledger[-1]["note"].endswith("CVE hotfix INC-42")

    back = cli("rollback", "--env", "production", "--to", PREVIOUS, "--reason", "hotfix undone")
    assert back.returncode == 0, back.stdout + back.stderr  # PREVIOUS is in production's ledger
    assert site.image("production") == PREVIOUS


def reject_when_paused(server: PrefectServer, reviewer: str, proc: subprocess.Popen[str]) -> None:
    paused = wait_paused(server, proc, 150)
    approve(server, paused["id"], "--reject", "--reviewer", reviewer, "--comment", "latency looks off")


def migrate_state(server: PrefectServer) -> tuple[str, str]:
    runs = prefect_api.post(f"{server.api_url}/flow_runs/filter", timeout=10, json={"sort": "START_TIME_DESC"}).json()
    flows = {f["id"]: f["name"] for f in prefect_api.post(f"{server.api_url}/flows/filter", timeout=10, json={}).json()}
    state = next(r for r in runs if flows[r["flow_id"]] == "migrate")["state"]
    return state["type"], state["name"]


@pytest.mark.parametrize("answer", ["reject", "timeout"])
def test_production_rejected_or_unanswered_restores_staging_and_is_no_success(
    server: PrefectServer, site: Site, answer: str
) -> None:
    site.configure()
    if answer == "timeout":
        site.config.write_text(site.config.read_text().replace("timeout_s: 180", "timeout_s: 3"))
        site.git("commit", "-qam", "a short approval window")
    site.start_previous()
    proc = start_migrate(server, site)
    if answer == "reject":
        reject_when_paused(server, "bob", proc)
    assert proc.wait(300) == 1, proc.stdout.read() if proc.stdout else ""
    result = site.outcome()
    assert site.image("staging") == PREVIOUS and site.healthy("staging"), "staging is restored"
    assert site.image("production") == PREVIOUS, "production was never touched"
    if answer == "reject":
        assert result["outcome"] == "stopped at production: rejected; staging rolled back"
        assert migrate_state(server) == ("CANCELLED", "Rejected")
        assert result["decisions"][-1] == {
            "stage": "production", "outcome": "rejected", "reviewer": "bob", "comment": "latency looks off"
        }  # fmt: skip
    else:
        assert result["outcome"] == "stopped at production: timed out; staging rolled back"
        assert migrate_state(server) == ("FAILED", "TimedOut")
    assert [r["environment"] for r in result["rollback"]["environments"]] == ["staging"]
    assert "baseimage/cuda-12.9.1" in site.git("branch"), "the branch is kept"
    assert not (site.root / "reports" / "approvals" / "production.json").exists(), "nothing was approved"


def validation_config(site: Site, mode: str) -> None:
    """The stub candidate validated for real (a subflow here): its build args pick the fault."""
    port = free_port()
    text = site.config.read_text()
    text = text[: text.index("environments:")]  # nothing to deploy: these tests stop after validation
    text = text.replace("    track: cuda\n", f'    track: cuda\n    build_args: {{PORT: "{port}", MODE: {mode}}}\n', 1)
    text += f"""validation:
  port: {port}
  base_path: /cgi-bin/svc
  health_timeout_s: 6
  train_steps: 4
  train_timeout_s: 30
  redis_image: null
  containers:
    - name: service
      gpu: true
"""
    site.config.write_text(text)
    site.git("commit", "-qam", "validation settings")


@pytest.mark.parametrize("mode", ["ok", "health-fail"])
def test_migrate_validates_the_branch_in_a_subflow(prefect_harness: None, site: Site, mode: str) -> None:
    from flows.migrate import migrate

    site.configure()
    validation_config(site, mode)
    state = migrate(
        to="12.9.1",
        no_pr=True,
        validation="subflow",
        config_path=str(site.config),
        out_dir=str(site.root / "reports"),
        return_state=True,
    )
    result = state.result(raise_on_failure=False)
    validation = result["validation"]
    assert validation["mode"] == "subflow" and validation["candidates"][0].startswith("baseimage-candidate:")
    if mode == "ok":
        assert (state.type.value, state.name) == ("COMPLETED", "Validated")
        assert validation["summary"] == "validation passed: 5 passed, 2 skipped: no GPU (gpu-detect, gpu-utilization)"
        assert result["outcome"].startswith("validated; nothing deployed")
    else:
        assert (state.type.value, state.name) == ("FAILED", "RolledBack")
        assert validation["failed"] == ["health"] and not validation["ok"]
        assert result["outcome"].startswith("validation failed: ")
        assert result["rollback"]["code"]["action"].startswith("none: baseimage/cuda-12.9.1 is not merged into main")
    assert "baseimage/cuda-12.9.1" in site.git("branch"), "the branch is kept either way"
    assert Path(validation["reports"][0]).exists()
