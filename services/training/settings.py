"""Service settings from the environment (the only place the service reads it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tasks.workload.run import OPSET_VARIABLE, opset_from


@dataclass(frozen=True)
class ServiceSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    models_dir: Path = Path("/var/lib/baseimage/models")
    default_steps: int = 40
    nvml_interval_s: float = 0.2
    onnx_opset: int | None = None  # BASEIMAGE_ONNX_OPSET: the opset the models are exported with

    @classmethod
    def from_env(cls) -> ServiceSettings:
        return cls(
            redis_url=os.environ.get("BASEIMAGE_REDIS_URL", cls.redis_url),
            models_dir=Path(os.environ.get("BASEIMAGE_MODELS_DIR", str(cls.models_dir))),
            default_steps=int(os.environ.get("BASEIMAGE_TRAIN_STEPS", cls.default_steps)),
            nvml_interval_s=float(os.environ.get("BASEIMAGE_NVML_INTERVAL_S", cls.nvml_interval_s)),
            onnx_opset=opset_from(os.environ.get(OPSET_VARIABLE)),
        )
