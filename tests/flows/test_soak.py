"""The soak monitor against a local service endpoint: a compressed window that passes, a re-run
after an interruption that keeps every sample exactly once, a success-rate drop that fails, and
(docker tier) an out-of-memory line in a running container that aborts early."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from flows.soak_monitor import soak_monitor
from tests.conftest import TEST_LABEL
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.registry_server import LocalRegistry


def service(state: dict[str, float]) -> Any:
    def handle(req: Request) -> Reply:
        if req.path == "/health":
            return Reply(200, b'{"status": "ok"}')
        return Reply(
            200,
            (
                f'training_tasks_total{{outcome="success"}} {state["ok"]}\n'
                f'training_tasks_total{{outcome="failure"}} {state["bad"]}\n'
                f"training_gpu_util_peak_percent {state['gpu']}\n"
            ).encode(),
        )

    return handle


def config(tmp_path: Path, url: str, project: str = "soak-staging") -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
images: [{{name: t, dockerfile: D, track: cuda}}]
environments:
  staging: {{compose_file: c.yaml, project: {project}, health_url: "{url}/health", metrics_url: "{url}/metrics"}}
""")
    return str(path)


def test_interrupted_soak_continues_the_same_window(prefect_harness: None, tmp_path: Path) -> None:
    state = {"ok": 10.0, "bad": 0.0, "gpu": 71.0}
    with Endpoint(service(state)) as ep:
        cfg = config(tmp_path, ep.url)
        first = soak_monitor("staging", "w1", cfg, window_s=1.0, interval_s=0.2, state_dir=str(tmp_path), max_samples=2)
        assert (first["status"], first["samples"]) == ("running", 2)
        second = soak_monitor("staging", "w1", cfg, window_s=1.0, interval_s=0.2, state_dir=str(tmp_path))
    assert (second["status"], second["samples"], second["expected"]) == ("passed", 5, 5)
    lines = [json.loads(x) for x in (tmp_path / "staging-w1.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == [0, 1, 2, 3, 4], "every sample kept exactly once"
    assert all(x["health_ok"] and x["success_rate"] == 1.0 and x["gpu_util"] == 71.0 for x in lines)
    assert Path(second["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_success_rate_drop_fails(prefect_harness: None, tmp_path: Path) -> None:
    state = {"ok": 10.0, "bad": 0.0, "gpu": 50.0}
    with Endpoint(service(state)) as ep:
        cfg = config(tmp_path, ep.url)
        state["bad"] = 5.0
        result = soak_monitor("staging", "w2", cfg, window_s=0.6, interval_s=0.2, state_dir=str(tmp_path))
    assert result["status"] == "failed"
    assert result["reasons"] == ["task success rate 67% below 95%"]


def test_unknown_environment(prefect_harness: None, tmp_path: Path) -> None:
    cfg = config(tmp_path, "http://127.0.0.1:9")
    flow_state = soak_monitor("prod", "w", cfg, window_s=1, interval_s=1, state_dir=str(tmp_path), return_state=True)
    assert flow_state.is_failed() and "no environment 'prod'" in str(flow_state.message)


@pytest.mark.docker
def test_out_of_memory_mid_soak_aborts_early(
    prefect_harness: None, docker_client: Any, registry: LocalRegistry, tmp_path: Path
) -> None:
    image = f"{registry.host}/nvidia/cuda:12.6.3-runtime-ubuntu22.04"
    docker_client.images.pull(image)
    container = docker_client.containers.run(
        image,
        ["sh", "-c", "sleep 1; echo 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB'; sleep 60"],
        detach=True,
        network_mode="host",
        labels={TEST_LABEL: "1", "com.docker.compose.project": "soak-oom"},
    )
    try:
        with Endpoint(service({"ok": 1.0, "bad": 0.0, "gpu": 40.0})) as ep:
            began = time.monotonic()
            result = soak_monitor(
                "staging",
                "oom",
                config(tmp_path, ep.url, "soak-oom"),
                window_s=20,
                interval_s=0.5,
                state_dir=str(tmp_path),
            )
            elapsed = time.monotonic() - began
    finally:
        container.remove(force=True)
    assert result["status"] == "aborted"
    assert result["reasons"] == [
        "CUDA out-of-memory in the logs: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    ]
    assert result["samples"] < result["expected"] and elapsed < 15
