"""The training service API.

    uvicorn services.training.api:app --host 0.0.0.0 --port 8000

``/health`` versions and GPU; ``POST /train`` enqueues a job; ``/jobs/{id}`` its state;
``/models/{id}.onnx`` the exported model; ``/metrics`` Prometheus text.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from celery import Celery
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError

from services.training.metrics import Metrics
from services.training.settings import ServiceSettings
from services.training.worker import TRAIN_TASK, create_celery

JOBS_KEY = "baseimage:jobs"
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class TrainRequest(BaseModel):
    steps: int = Field(default=40, ge=2, le=100_000)
    batch_size: int = Field(default=32, ge=1, le=4096)
    seed: int = 1234


def runtime_versions() -> dict[str, Any]:
    """What the image provides: torch, CUDA, cuDNN, CuPy, ONNX Runtime, and a usable GPU."""
    info: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        cudnn: Any = torch.backends.cudnn  # untyped in torch's stubs
        info["cudnn"] = cudnn.version() if cudnn.is_available() else None
        info["gpu_usable"] = bool(torch.cuda.is_available())
        info["gpu_name"] = torch.cuda.get_device_name(0) if info["gpu_usable"] else None
    except Exception as exc:  # a broken torch is exactly what /health must show
        info.update(torch=None, cuda=None, cudnn=None, gpu_usable=False, torch_error=str(exc))
    for module, key in (("cupy", "cupy"), ("onnxruntime", "onnxruntime"), ("onnx", "onnx")):
        try:
            info[key] = __import__(module).__version__
        except Exception:  # optional in the image; None says it is missing
            info[key] = None
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except Exception:
        info["onnxruntime_providers"] = []
    return info


def create_app(settings: ServiceSettings | None = None, celery: Celery | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_env()
    celery = celery or create_celery(settings)
    redis = Redis.from_url(settings.redis_url)
    metrics = Metrics(redis)
    versions = runtime_versions()
    app = FastAPI(title="baseimage training service")

    @app.get("/health")
    def health() -> Response:
        try:
            broker = bool(redis.ping())
        except RedisError:
            broker = False
        body = {"status": "ok" if broker else "degraded", "broker": broker, **versions}
        return Response(json.dumps(body), status_code=200 if broker else 503, media_type="application/json")

    @app.post("/train", status_code=202)
    def train(request: TrainRequest) -> dict[str, str]:
        result = celery.send_task(TRAIN_TASK, args=[request.model_dump()])
        redis.sadd(JOBS_KEY, result.id)
        return {"job_id": result.id, "status_url": f"/jobs/{result.id}"}

    @app.get("/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        if not _JOB_ID.match(job_id) or not redis.sismember(JOBS_KEY, job_id):
            raise HTTPException(404, f"no job {job_id}")
        result = celery.AsyncResult(job_id)
        body: dict[str, Any] = {"job_id": job_id, "state": result.state}
        if result.state == "SUCCESS":
            body["result"] = result.result
            body["model_url"] = f"/models/{job_id}.onnx"
        elif result.state == "FAILURE":
            body["error"] = f"{type(result.result).__name__}: {result.result}"
        return body

    @app.get("/models/{job_id}.onnx")
    def model(job_id: str) -> FileResponse:
        path = settings.models_dir / f"{job_id}.onnx"
        if not _JOB_ID.match(job_id) or not path.is_file():
            raise HTTPException(404, f"no model for job {job_id}")
        return FileResponse(path, media_type="application/octet-stream")

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def __getattr__(name: str) -> Any:
    # `uvicorn services.training.api:app` builds the app on first use, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
