"""The whole pipeline as its users run it: a real `prefect server start` on loopback, the pools and
blocks from `python -m deployments.setup`, every deployment registered by `prefect deploy --all`
from this checkout, and real process workers on the `default` and `gpu` pools. The scheduled
quarterly review (triggered now) recommends a migration on the seeded registry; `migrate` runs
with both approvals resumed through the API, validation on the gpu pool against the test image,
staging, a compressed soak and production; `baseimage history` then shows every run's outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.prefect_server import DEPLOYMENTS, PrefectServer, Worker, approve_when_paused, prefect_api
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry, free_port
from tests.support.site import PREVIOUS, Site

pytestmark = pytest.mark.docker
OSV = REPO_ROOT / "tests" / "fixtures" / "osv"
OLD, NEW = "12.6.0-runtime-ubuntu22.04", "12.9.1-runtime-ubuntu22.04"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIndex]:
    with StaticIndex(build_tree(tmp_path_factory.mktemp("pytorch") / "whl")) as served:
        yield served


@pytest.fixture
def nvidia_support() -> Iterator[Endpoint]:
    """Stands in for NVIDIA's manifest: unreachable (404), so the bundled table is used, said so."""

    def handle(req: Request) -> Reply:
        return Reply(404, b"not mirrored here")

    with Endpoint(handle) as ep:
        yield ep


def local_bases(docker_client: Any, registry: LocalRegistry) -> None:
    """The daemon gets the bases as a pull-through cache would give them: `nvidia/cuda:<tag>`."""
    for tag in (OLD, NEW):
        image = docker_client.images.pull(f"{registry.host}/nvidia/cuda:{tag}")
        image.tag("nvidia/cuda", tag)


def run(argv: list[str], env: dict[str, str], cwd: Path = REPO_ROOT, timeout: float = 300) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(argv[:4])}...: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def wait_for(server: PrefectServer, run_id: str, timeout: float = 420) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = prefect_api.get(f"{server.api_url}/flow_runs/{run_id}", timeout=10).json()
        if body["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return dict(body)
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout} s")


def start_run(server: PrefectServer, deployment: str, parameters: dict[str, Any]) -> str:
    found = prefect_api.post(f"{server.api_url}/deployments/filter", timeout=10, json={}).json()
    (dep,) = [d for d in found if d["name"] == deployment]
    created = prefect_api.post(
        f"{server.api_url}/deployments/{dep['id']}/create_flow_run", timeout=10, json={"parameters": parameters}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_quarterly_review_to_production_on_a_prefect_server(
    tmp_path: Path,
    docker_client: Any,
    registry: LocalRegistry,
    index: StaticIndex,
    nvidia_support: Endpoint,
    model_onnx: Path,
) -> None:
    local_bases(docker_client, registry)
    docker_client.images.build(
        path=str(Site(tmp_path / "prev", f"nvidia/cuda:{OLD}", model_onnx, docker_client).root),
        dockerfile="dockerfiles/svc/Dockerfile",
        tag=PREVIOUS,
        labels={"baseimage.test": "1"},
    )
    site = Site(tmp_path / "repo", f"nvidia/cuda:{OLD}", model_onnx, docker_client)
    vport = free_port()
    site.configure(
        approvals="update, production",
        extra=f"""    build_args: {{PORT: "{vport}"}}
registries:
  mirrors: {{docker.io: "{registry.url}"}}
research:
  nvidia_support_url: "{nvidia_support.url}/manifests/cuda.yaml"
  pytorch_index: "{index.url}"
  osv_db: "{OSV}"
policy:
  require_gpu: false
validation:
  port: {vport}
  base_path: /cgi-bin/svc
  health_timeout_s: 20
  train_steps: 4
  train_timeout_s: 30
  redis_image: null
  containers:
    - name: service
      gpu: true
""",
    )
    site.start_previous()
    server = PrefectServer(tmp_path / "prefect-home").start()
    env = {
        **server.env(),
        "BASEIMAGE_HOME": str(REPO_ROOT),
        "BASEIMAGE_CONFIG": str(site.config),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    }
    workers: list[Worker] = []
    try:
        secrets = {"GITHUB_TOKEN": "ghp_e2e-not-real", "BASEIMAGE_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
        setup = run([sys.executable, "-m", "deployments.setup"], {**env, **secrets})
        assert "created work pool gpu (process, concurrency 1)" in setup
        assert "Secret block github-token saved from $GITHUB_TOKEN" in setup and "ghp_e2e" not in setup
        assert "SlackWebhook block baseimage-alerts saved" in setup and "127.0.0.1:9/hook" not in setup
        assert "work pool gpu exists" in run([sys.executable, "-m", "deployments.setup"], env), "idempotent"
        prefect = str(Path(sys.executable).parent / "prefect")
        run([prefect, "--no-prompt", "deploy", "--all"], env)
        deployments = prefect_api.post(f"{server.api_url}/deployments/filter", timeout=10, json={}).json()
        assert {d["name"] for d in deployments} == DEPLOYMENTS
        pools = {d["name"]: d["work_pool_name"] for d in deployments}
        assert pools["validate"] == pools["soak-monitor"] == "gpu" and pools["migrate"] == "default"
        review = next(d for d in deployments if d["name"] == "quarterly-review")
        assert review["schedules"][0]["schedule"]["cron"] == "0 6 4 2,5,8,11 *"
        workers = [Worker(pool, env, tmp_path / f"worker-{pool}.log").start() for pool in ("default", "gpu")]

        reports = site.root / "reports"
        review_id = start_run(
            server,
            "quarterly-review",
            {"config_path": str(site.config), "out_dir": str(reports), "check_banner": False, "update_docs": False},
        )
        state = wait_for(server, review_id)["state"]
        assert state["type"] == "COMPLETED", state["message"]
        (report_file,) = reports.glob("review-*.json")
        report = json.loads(report_file.read_text())
        assert report["recommended"] and report["images"][0]["target"] == f"nvidia/cuda:{NEW}"

        migrate_id = start_run(
            server,
            "migrate",
            {
                "report_path": str(report_file),
                "no_pr": True,
                "config_path": str(site.config),
                "out_dir": str(reports),
                "poll_interval_s": 1,
            },
        )
        approve_when_paused(server, "alice", timeout=240)
        time.sleep(2)
        approve_when_paused(server, "bob", timeout=300)
        final = wait_for(server, migrate_id)
        assert final["state"]["type"] == "COMPLETED", final["state"]
        outcome = site.outcome()
        assert outcome["outcome"].startswith("deployed to production: baseimage/svc:"), outcome
        # What ran where, and what did not: this CI host has no GPU, so the GPU checks are skipped
        # (policy.require_gpu is false here) and the outcome says so.
        assert outcome["validation"]["summary"] == (
            "validation passed on the gpu pool: 5 passed, 2 skipped: no GPU (gpu-detect, gpu-utilization)"
        )
        assert final["state"]["name"] == "Completed"
        assert site.image("staging") == site.image("production") == outcome["image"]
        assert site.healthy("production")

        history = run([sys.executable, "-m", "baseimage.cli", "history", "--json"], env)
        rows = [json.loads(line) for line in history.splitlines() if line.strip()]
        by_flow: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_flow.setdefault(row["flow"], []).append(row)
        assert by_flow["quarterly-review"][0]["outcome"] == (f"migration recommended: svc {OLD} → {NEW}"), by_flow[
            "quarterly-review"
        ]
        assert by_flow["migrate"][0]["outcome"].startswith("deployed to production: baseimage/svc:")
        assert by_flow["validate"][0]["outcome"].startswith("validation of baseimage-candidate:")
        assert "passed" in by_flow["validate"][0]["outcome"]
        assert by_flow["soak-monitor"][0]["outcome"].startswith("soak of staging passed")
        for flow in ("validate", "soak-monitor"):  # the GPU-bound steps ran through the gpu pool's worker
            detail = prefect_api.get(f"{server.api_url}/flow_runs/{by_flow[flow][0]['id']}", timeout=10).json()
            assert detail["work_pool_name"] == "gpu", detail
        assert len(by_flow["approval"]) == 2 and all(r["state"] == "Completed" for r in by_flow["approval"])
        assert all(r["link"].startswith(server.api_url.removesuffix("/api") + "/runs/flow-run/") for r in rows)
        table = run([sys.executable, "-m", "baseimage.cli", "history", "--flow", "migrate", "--since", "1d"], env)
        assert "deployed to production" in table and "quarterly-review" not in table
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        site.down()
        if os.environ.get("BASEIMAGE_KEEP_E2E_LOGS"):
            print(*(p.read_text()[-4000:] for p in tmp_path.glob("worker-*.log")), sep="\n")


def test_serve_runs_every_deployment_with_its_schedule(tmp_path: Path) -> None:
    """`baseimage serve` registers each deployment of prefect.yaml, schedules in the chosen zone."""
    import signal

    server = PrefectServer(tmp_path / "prefect-home").start()
    env = {**server.env(), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseimage.cli", "serve", "--timezone", "Europe/Berlin"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(found) < len(DEPLOYMENTS):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            found = prefect_api.post(f"{server.api_url}/deployments/filter", timeout=10, json={}).json()
            time.sleep(1)
        by_name = {d["name"]: d for d in found}
        assert set(by_name) == DEPLOYMENTS
        schedule = by_name["quarterly-review"]["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("0 6 4 2,5,8,11 *", "Europe/Berlin")
        assert by_name["annual-update"]["schedules"][0]["schedule"]["cron"] == "0 6 15 1 *"
        assert by_name["migrate"]["schedules"] == []
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        server.stop()
