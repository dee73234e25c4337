"""The automations on a real `prefect server start`, set up as users do it (`deployments.setup`,
`prefect deploy --all`, `deployments.setup --automations-only`) with a process worker: the migrate
trigger declared in prefect.yaml arrives disabled and is switched on by the policy's opt-in; a
quarterly review that recommends a migration then starts a `migrate` run with the review's
report, which pauses for its approval; a failed run of a baseimage flow is notified through the
policy's notification block (a saved webhook block pointing at a loopback endpoint)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.flows.test_end_to_end import OLD, OSV, nvidia_support, run, start_run, wait_for  # noqa: F401
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.prefect_server import PrefectServer, Worker, prefect_api
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry
from tests.support.site import Site

pytestmark = pytest.mark.docker
TRIGGER = "baseimage-migrate-on-recommendation"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIndex]:
    with StaticIndex(build_tree(tmp_path_factory.mktemp("pytorch") / "whl")) as served:
        yield served


SAVE_BLOCK = """
import sys
from prefect.blocks.notifications import CustomWebhookNotificationBlock
CustomWebhookNotificationBlock(
    name="e2e-alerts", url=sys.argv[1], allow_private_urls=True,
    json_data={"subject": "{{subject}}", "text": "{{body}}"},
).save("e2e-alerts", overwrite=True)
"""


def automation(server: PrefectServer, name: str) -> dict[str, Any]:
    found = prefect_api.post(f"{server.api_url}/automations/filter", timeout=10, json={}).json()
    (match,) = [a for a in found if a["name"] == name]
    return dict(match)


def flow_runs(server: PrefectServer, deployment_id: str) -> list[dict[str, Any]]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    return list(prefect_api.post(f"{server.api_url}/flow_runs/filter", timeout=10, json=body).json())


def approval_of(server: PrefectServer, parent_run: str) -> dict[str, Any] | None:
    """The paused `approval` subflow run of `parent_run`, if it is waiting."""
    body = {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}}
    for paused in prefect_api.post(f"{server.api_url}/flow_runs/filter", timeout=10, json=body).json():
        task = paused.get("parent_task_run_id")
        if not task:
            continue
        parent = prefect_api.get(f"{server.api_url}/task_runs/{task}", timeout=10).json()
        flow = prefect_api.get(f"{server.api_url}/flows/{paused['flow_id']}", timeout=10).json()
        if parent.get("flow_run_id") == parent_run and flow["name"] == "approval":
            return dict(paused)
    return None


def test_a_recommended_review_starts_a_migration_that_waits_for_approval(
    tmp_path: Path,
    docker_client: Any,
    registry: LocalRegistry,
    index: StaticIndex,
    nvidia_support: Endpoint,  # noqa: F811
    model_onnx: Path,
) -> None:
    notified: list[Request] = []
    hook = Endpoint(lambda req: (notified.append(req), Reply(200))[1]).__enter__()
    site = Site(tmp_path / "repo", f"nvidia/cuda:{OLD}", model_onnx, docker_client)
    site.configure(
        approvals="update, production",
        extra=f"""registries:
  mirrors: {{docker.io: "{registry.url}"}}
research:
  nvidia_support_url: "{nvidia_support.url}/manifests/cuda.yaml"
  pytorch_index: "{index.url}"
  osv_db: "{OSV}"
alerts:
  block: custom-webhook/e2e-alerts
automations:
  migrate_on_recommendation: true
""",
    )
    server = PrefectServer(tmp_path / "prefect-home").start()
    env = {
        **server.env(),
        "BASEIMAGE_HOME": str(REPO_ROOT),
        "BASEIMAGE_CONFIG": str(site.config),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    }
    worker: Worker | None = None
    migrate_run: str | None = None
    try:
        run([sys.executable, "-c", SAVE_BLOCK, f"{hook.url}/notify"], env)
        setup = run([sys.executable, "-m", "deployments.setup"], env)
        assert (
            "automation baseimage-flow-run-failed created: failed or crashed runs notify custom-webhook/e2e-alerts"
            in setup
        )
        assert f"automation {TRIGGER}: not there yet" in setup
        run([str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deploy", "--all"], env)
        declared = automation(server, TRIGGER)
        assert declared["enabled"] is False, "prefect.yaml declares it off: opt-in"
        assert declared["trigger"]["expect"] == ["baseimage.migration.recommended"]
        again = run([sys.executable, "-m", "deployments.setup", "--automations-only"], env)
        assert f"automation {TRIGGER}: on" in again and "replaced" in again
        assert automation(server, TRIGGER)["enabled"] is True
        deployments = {
            d["name"]: d for d in prefect_api.post(f"{server.api_url}/deployments/filter", timeout=10, json={}).json()
        }
        worker = Worker("default", env, tmp_path / "worker-default.log").start()

        reports = site.root / "reports"
        review_id = start_run(
            server,
            "quarterly-review",
            {"config_path": str(site.config), "out_dir": str(reports), "check_banner": False, "update_docs": False},
        )
        assert wait_for(server, review_id, 180)["state"]["type"] == "COMPLETED"
        (report,) = reports.glob("review-*.json")
        assert json.loads(report.read_text())["recommended"] is True

        deadline = time.monotonic() + 150
        runs: list[dict[str, Any]] = []
        waiting: dict[str, Any] | None = None
        while waiting is None and time.monotonic() < deadline:
            runs = flow_runs(server, deployments["migrate"]["id"])
            assert not runs or runs[0]["state"]["type"] not in ("FAILED", "CRASHED", "COMPLETED"), runs[0]["state"]
            waiting = approval_of(server, runs[0]["id"]) if runs else None
            time.sleep(1)
        assert len(runs) == 1, "the automation started exactly one migration"
        migrate_run = runs[0]["id"]
        assert waiting is not None, f"the migration did not pause for approval: {runs[0]['state']}"
        assert runs[0]["parameters"]["report_path"] == str(report), "the review's report, from the event"
        assert runs[0]["parameters"]["validation"] == "deployment", "the deployment's defaults otherwise"
        keyset = waiting["state"]["state_details"]["run_input_keyset"]["description"]
        shown = prefect_api.get(f"{server.api_url}/flow_runs/{waiting['id']}/input/{keyset}", timeout=10)
        assert "## Approve the update?" in shown.text, "the reviewer sees the update to approve"

        # A failed run of a baseimage flow is notified through alerts.block.
        failed_id = start_run(server, "rollback", {"environments": ["nowhere"], "config_path": str(site.config)})
        assert wait_for(server, failed_id, 120)["state"]["type"] == "FAILED"
        deadline = time.monotonic() + 60
        while not notified and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(notified) == 1, "one notification for the one failed run"
        sent = json.loads(notified[0].body)
        assert sent["subject"].startswith("baseimage: rollback run ") and sent["subject"].endswith(" Failed")
        assert "ConfigError: no environment 'nowhere'" in sent["text"] and f"Flow run {failed_id}" in sent["text"]
        assert "None" not in sent["text"], "no UI URL on this server: no link, not 'None'"
    finally:
        if migrate_run:
            prefect_api.post(
                f"{server.api_url}/flow_runs/{migrate_run}/set_state",
                timeout=10,
                json={"state": {"type": "CANCELLING"}, "force": True},
            )
            time.sleep(3)
        if worker is not None:
            worker.stop()
        server.stop()
        hook.__exit__(None, None, None)
        site.down()
        subprocess.run(["git", "-C", str(site.root), "worktree", "prune"], check=False)
