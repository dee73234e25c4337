"""The training service in-process: FastAPI app, a real Celery worker thread and a real
redis-server on 127.0.0.1, running the real workload on the CPU."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
import pytest
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient

from services.training import worker as worker_module
from services.training.api import create_app
from services.training.settings import ServiceSettings
from services.training.worker import create_celery
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    settings = ServiceSettings(
        redis_url=redis_server.url,
        models_dir=tmp_path_factory.mktemp("models"),
        default_steps=6,
        nvml_interval_s=0.05,
    )
    celery = create_celery(settings)
    with (
        start_worker(celery, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30),
        TestClient(create_app(settings, celery)) as client,
    ):
        yield client, settings


def wait_for(client: TestClient, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/jobs/{job_id}").json()
        if body["state"] in ("SUCCESS", "FAILURE"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {body['state']} after {timeout} s")


def test_health_reports_versions_and_gpu(service: tuple[TestClient, Any]) -> None:
    client, _ = service
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["broker"] is True
    import torch

    assert body["torch"] == torch.__version__ and body["gpu_usable"] is torch.cuda.is_available()
    assert body["onnxruntime"] == onnxruntime.__version__ and "CPUExecutionProvider" in body["onnxruntime_providers"]
    assert {"cuda", "cudnn", "cupy", "onnx", "python"} <= body.keys()


def test_train_job_end_to_end(service: tuple[TestClient, Any], tmp_path: Path) -> None:
    client, settings = service
    response = client.post("/train", json={"steps": 6, "batch_size": 16})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    body = wait_for(client, job_id)
    assert body["state"] == "SUCCESS", body
    result = body["result"]
    assert result["ok"] and result["device"] == "cpu" and len(result["training"]["losses"]) == 6
    assert result["gpu_utilization"]["available"] in (True, False)
    model = client.get(body["model_url"])
    assert model.status_code == 200
    path = tmp_path / "model.onnx"
    path.write_bytes(model.content)
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert not (settings.models_dir / job_id).exists(), "the job's work directory is cleaned up"
    metrics = client.get("/metrics").text
    assert 'training_tasks_total{outcome="success"} 1.0' in metrics


def test_failed_job_is_reported_and_counted(service: tuple[TestClient, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = service

    def out_of_memory(config: Any) -> Any:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(worker_module, "run", out_of_memory)
    job_id = client.post("/train", json={"steps": 4}).json()["job_id"]
    body = wait_for(client, job_id, timeout=60)
    assert body["state"] == "FAILURE"
    assert body["error"] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    metrics = client.get("/metrics").text
    assert 'training_tasks_total{outcome="failure"} 1.0' in metrics
    assert "cuda_oom_total 1.0" in metrics
    assert client.get(f"/models/{job_id}.onnx").status_code == 404


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/jobs/not-a-job", 404),
        ("/jobs/00000000-0000-0000-0000-000000000000", 404),
        ("/models/..%2F..%2Fetc%2Fpasswd.onnx", 404),
        ("/models/00000000-0000-0000-0000-000000000000.onnx", 404),
    ],
)
def test_unknown_jobs_and_models_are_404(service: tuple[TestClient, Any], path: str, status: int) -> None:
    assert service[0].get(path).status_code == status


def test_bad_train_request_is_422(service: tuple[TestClient, Any]) -> None:
    response = service[0].post("/train", json={"steps": 1})
    assert response.status_code == 422
    assert "greater than or equal to 2" in response.text


def test_health_without_broker_is_503(tmp_path: Path) -> None:
    from tests.support.registry_server import free_port

    settings = ServiceSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0", models_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded" and response.json()["broker"] is False
