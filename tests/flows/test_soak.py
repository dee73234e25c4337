"""The soak monitor against a local service endpoint: a compressed window that passes, a re-run
after an interruption that keeps every sample exactly once, a success-rate drop that fails, and
(docker tier) an out-of-memory line in a running container that aborts early, and a window whose
monitor is killed mid-write and restarted late: gaps recorded (never filled), the cut line
repaired, the log lines printed during the outage found, and no "passed" at low coverage."""

from __future__ import annotations

import itertools
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
        # The second run starts within the next slot: it continues on schedule, nothing missed.
        first = soak_monitor("staging", "w1", cfg, window_s=5.0, interval_s=1.0, state_dir=str(tmp_path), max_samples=2)
        assert (first["status"], first["samples"]) == ("running", 2)
        second = soak_monitor("staging", "w1", cfg, window_s=5.0, interval_s=1.0, state_dir=str(tmp_path))
    assert (second["status"], second["samples"], second["expected"], second["missed"]) == ("passed", 5, 5, 0)
    lines = [json.loads(x) for x in (tmp_path / "staging-w1.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == [0, 1, 2, 3, 4], "every sample kept exactly once"
    assert all(x["health_ok"] and x["success_rate"] == 1.0 and x["gpu_util"] == 71.0 for x in lines)
    times = [x["t"] for x in lines]
    assert all(b - a > 0.8 for a, b in itertools.pairwise(times)), "samples keep the schedule"
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


KILLABLE = """
import sys
from pathlib import Path
from tasks.monitoring.soak import SampleStore, Thresholds, Window, run_window
from tasks.deploy.compose import project_containers
import docker

url, store, project = sys.argv[1:4]
window = Window(f"{url}/health", f"{url}/metrics", 12.0, 1.0, Thresholds(on_low_coverage="fail"))
run_window(SampleStore(Path(store)), window, project_containers(docker.from_env(), project))
"""


@pytest.mark.docker
@pytest.mark.parametrize("oom_during_gap", [True, False], ids=["oom-in-gap", "quiet-gap"])
def test_killed_soak_resumes_with_gaps_and_reads_the_outage_logs(
    prefect_harness: None, docker_client: Any, registry: LocalRegistry, tmp_path: Path, oom_during_gap: bool
) -> None:
    import os
    import signal
    import subprocess
    import sys

    image = f"{registry.host}/nvidia/cuda:12.6.3-runtime-ubuntu22.04"
    docker_client.images.pull(image)
    project = f"soak-kill-{'oom' if oom_during_gap else 'quiet'}"
    container = docker_client.containers.run(
        image,
        ["sh", "-c", "echo service started; sleep 120"],
        detach=True,
        network_mode="host",
        labels={TEST_LABEL: "1", "com.docker.compose.project": project},
    )
    store = tmp_path / "staging-killed.jsonl"
    try:
        with Endpoint(service({"ok": 5.0, "bad": 0.0, "gpu": 60.0})) as ep:
            monitor = subprocess.Popen(
                [sys.executable, "-c", KILLABLE, ep.url, str(store), project], env={**os.environ}
            )
            deadline = time.monotonic() + 30
            while (not store.exists() or store.read_text().count("\n") < 3) and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(monitor.pid, signal.SIGKILL)
            monitor.wait()
            whole = store.read_bytes()
            store.write_bytes(whole[:-25])  # the last line cut mid-write
            if oom_during_gap:
                container.exec_run(
                    ["sh", "-c", "echo 'RuntimeError: CUDA out of memory. Tried to allocate 4.00 GiB' > /proc/1/fd/1"]
                )
            time.sleep(3.5)  # more than two intervals without a monitor
            cfg = config(tmp_path, ep.url, project)
            Path(cfg).write_text(
                Path(cfg).read_text().replace("metrics_url:", "soak_on_low_coverage: fail, metrics_url:")
            )
            result = soak_monitor("staging", "killed", cfg, window_s=12.0, interval_s=1.0, state_dir=str(tmp_path))
    finally:
        container.remove(force=True)
    lines = [json.loads(x) for x in store.read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(len(lines))), "indices contiguous, none taken twice"
    missed = [x["index"] for x in lines if x["missed"]]
    assert len(missed) >= 3 and result["missed"] == len(missed), "the outage (and the cut slot) are gaps"
    assert all(x["health_ok"] is None for x in lines if x["missed"]), "a gap is not filled with a sample"
    assert result["status"] != "passed"
    assert any("missed while the monitor was down" in r for r in result["reasons"])
    if oom_during_gap:
        assert result["status"] == "aborted"
        assert result["reasons"][0] == (
            "CUDA out-of-memory in the logs: RuntimeError: CUDA out of memory. Tried to allocate 4.00 GiB"
        )
    else:
        assert result["status"] == "failed" and result["slots"] == 12
        assert "coverage" in result["reasons"][0] and "below 90%" in result["reasons"][0]
