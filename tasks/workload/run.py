"""The whole workload as one function returning a JSON-ready result."""

from __future__ import annotations

import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks.workload import data, device, model, onnx_check, train


class GpuRequiredError(RuntimeError):
    """--require-gpu was given and no GPU is usable."""


@dataclass
class WorkloadConfig:
    steps: int = 40
    batch_size: int = 32
    train_samples: int = 1024
    test_samples: int = 256
    image_size: int = 32
    classes: int = 10
    seed: int = 1234
    require_gpu: bool = False
    device: str = "auto"  # auto | cpu | cuda
    out_dir: Path | None = None
    onnx_opset: int | None = None  # the ONNX opset to export with (None: onnx_check.DEFAULT_OPSET)


OPSET_VARIABLE = "BASEIMAGE_ONNX_OPSET"


def opset_from(value: str | None) -> int | None:
    """`BASEIMAGE_ONNX_OPSET` as given (an empty value: not set); anything but a whole number in
    7..99 is a ValueError naming the variable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 7 <= int(text) <= 99:
        raise ValueError(f"{OPSET_VARIABLE}={value!r}: expected an ONNX opset, a whole number from 7 to 99")
    return int(text)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "cupy", "onnx", "onnxruntime"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except Exception:  # an absent or broken optional package is reported, not fatal
                versions[name] = None
                continue
        versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def run(config: WorkloadConfig) -> dict[str, Any]:
    """Run data → train → evaluate → ONNX; the result's ``ok`` says whether every check held."""
    import numpy as np
    import torch

    info = device.detect()
    if config.require_gpu and not info.gpu:
        raise GpuRequiredError("--require-gpu: no usable GPU: " + "; ".join(info.problems))
    use_gpu = info.gpu and config.device != "cpu"
    if config.device == "cuda" and not info.gpu:
        raise GpuRequiredError("--device cuda: no usable GPU: " + "; ".join(info.problems))
    where = "cuda" if use_gpu else "cpu"
    torch.manual_seed(config.seed)

    xp, backend_name = data.backend(use_gpu and info.cupy)
    data.generate(xp, config.seed, 0, 8, config.image_size, config.classes)  # warm-up (kernel JIT)
    train_set = data.generate(xp, config.seed, 0, config.train_samples, config.image_size, config.classes)
    test_set = data.generate(
        xp,
        config.seed,
        config.train_samples,
        config.test_samples,
        config.image_size,
        config.classes,
    )
    x_train, y_train = (
        train.to_torch(train_set.images, where),
        train.to_torch(train_set.labels, where),
    )
    x_test, y_test = train.to_torch(test_set.images, where), train.to_torch(test_set.labels, where)

    net = model.build_model(config.classes)
    trained = train.train(net, x_train, y_train, config.steps, config.batch_size, where)
    accuracy = train.evaluate(net, x_test, y_test)

    out_dir = config.out_dir or Path(tempfile.mkdtemp(prefix="workload-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = onnx_check.check(net, x_test[:64], where, out_dir / "model.onnx", config.onnx_opset)
    # The reference a consumer's runtime must reproduce: inputs it can regenerate from the seed with
    # NumPy (whatever made the training data), and torch's outputs for them.
    count = onnx_check.REFERENCE_SAMPLES
    ref_start = config.train_samples + config.test_samples
    ref_inputs = data.generate(np, config.seed, ref_start, count, config.image_size, config.classes)
    ref_logits = onnx_check.reference(net, train.to_torch(ref_inputs.images, where))

    checks = {
        "loss_fell": trained.loss_fell,
        "onnx_valid": exported.checker_ok,
        "parity_ok": exported.parity_ok,
        "dynamic_batch_ok": exported.dynamic_batch_ok,
    }
    return {
        "schema": 1,
        "ok": all(checks.values()),
        "checks": checks,
        "device": where,
        "gpu": info.to_json(),
        "versions": _versions(),
        "data": {
            "backend": backend_name,
            "train_samples": config.train_samples,
            "test_samples": config.test_samples,
            "image_size": config.image_size,
            "bytes": train_set.nbytes,
            "seconds": train_set.seconds,
            "gb_per_s": train_set.gb_per_s,
        },
        "training": {
            "steps": config.steps,
            "batch_size": config.batch_size,
            "losses": trained.losses,
            "loss_first": trained.losses[0],
            "loss_last": trained.losses[-1],
            "loss_fell": trained.loss_fell,
            "seconds": trained.seconds,
            "images_per_s": trained.images_per_s,
            "peak_memory_bytes": trained.peak_memory_bytes,
            "peak_memory_kind": trained.peak_memory_kind,
        },
        "evaluation": {"accuracy": accuracy, "samples": config.test_samples},
        "onnx": {
            **asdict(exported),
            "tolerance": onnx_check.TOLERANCE,
            "reference": {
                "seed": config.seed,
                "start": ref_start,
                "count": count,
                "image_size": config.image_size,
                "classes": config.classes,
                "logits": ref_logits,
            },
        },
    }
