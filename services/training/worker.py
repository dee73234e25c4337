"""The Celery worker: runs the workload for each ``/train`` job, sampling GPU utilisation.

celery -A services.training.worker worker --concurrency 1
"""

from __future__ import annotations

import shutil
from typing import Any

from celery import Celery
from redis import Redis

from services.training.gpu import UtilizationSampler
from services.training.metrics import Metrics
from services.training.settings import ServiceSettings
from tasks.workload.run import WorkloadConfig, run

TRAIN_TASK = "training.train"


class WorkloadFailedError(RuntimeError):
    """The workload ran but one of its checks failed (the message lists which)."""


def create_celery(settings: ServiceSettings) -> Celery:
    app = Celery("baseimage-training", broker=settings.redis_url, backend=settings.redis_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=True,
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        result_expires=7 * 24 * 3600,
    )
    metrics = Metrics(Redis.from_url(settings.redis_url))

    @app.task(name=TRAIN_TASK, bind=True, shared=False)  # type: ignore[untyped-decorator]
    def train(self: Any, params: dict[str, Any]) -> dict[str, Any]:
        job_id = str(self.request.id)
        work_dir = settings.models_dir / job_id
        config = WorkloadConfig(
            steps=int(params.get("steps", settings.default_steps)),
            batch_size=int(params.get("batch_size", 32)),
            seed=int(params.get("seed", 1234)),
            out_dir=work_dir,
            onnx_opset=settings.onnx_opset,
        )
        with UtilizationSampler(settings.nvml_interval_s) as samples:
            try:
                result = run(config)
            except Exception as exc:
                if type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc):
                    metrics.cuda_oom()
                metrics.task_finished("failure")
                raise
        metrics.gpu_utilization(samples.mean, samples.peak)
        result["gpu_utilization"] = {
            "available": samples.available,
            "problem": samples.problem,
            "mean_percent": samples.mean,
            "peak_percent": samples.peak,
            "samples": len(samples.values),
        }
        if not result["ok"]:
            metrics.task_finished("failure")
            failed = [name for name, ok in result["checks"].items() if not ok]
            raise WorkloadFailedError(f"workload checks failed: {', '.join(failed)}")
        model = settings.models_dir / f"{job_id}.onnx"
        shutil.move(str(work_dir / "model.onnx"), model)
        shutil.rmtree(work_dir, ignore_errors=True)
        result["onnx"]["path"] = str(model)
        metrics.task_finished("success")
        return result

    return app


def __getattr__(name: str) -> Any:
    # `celery -A services.training.worker worker` builds the app from the environment on use.
    if name == "app":
        return create_celery(ServiceSettings.from_env())
    raise AttributeError(name)
