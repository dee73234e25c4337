"""Export to ONNX with a dynamic batch axis, check it, and compare ONNX Runtime with torch."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOLERANCE = 1e-3


@dataclass
class OnnxResult:
    path: str
    exporter: str
    checker_ok: bool
    provider: str
    providers_requested: list[str]
    max_abs_diff: float
    parity_ok: bool
    dynamic_batch_ok: bool
    torch_latency_ms: float
    ort_latency_ms: float


def export(model: Any, sample: Any, path: Path) -> str:
    """Write `model` to `path`; returns the exporter used."""
    import torch

    model.eval()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated from torch 2.9 but needs no onnxscript; the
        # torch.export-based one is used where it is gone.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                input_names=["images"],
                output_names=["logits"],
                opset_version=17,
                dynamo=False,
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            )
            return "torchscript"
        except (TypeError, RuntimeError, AttributeError):
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                input_names=["images"],
                output_names=["logits"],
                dynamo=True,
                dynamic_shapes={"x": {0: batch}},
            )
            return "dynamo"


def _timed(fn: Any, repeats: int = 10) -> float:
    fn()
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - began) / repeats * 1000


def check(model: Any, images: Any, device: str, path: Path) -> OnnxResult:
    """Export, ``onnx.checker``, then ORT (CUDA provider when usable) against torch on `images`."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    exporter = export(model, images[:2], path)
    onnx.checker.check_model(str(path), full_check=True)
    requested = ["CPUExecutionProvider"]
    options: list[dict[str, str]] = [{}]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        requested.insert(0, "CUDAExecutionProvider")
        options.insert(0, {"use_tf32": "0"})  # exact float32 for the parity check
    session = ort.InferenceSession(str(path), providers=requested, provider_options=options)
    provider = session.get_providers()[0]
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model.eval()
    with torch.no_grad():
        expected = model(images).float().cpu().numpy()
    feed = images.detach().cpu().numpy()
    got = session.run(["logits"], {"images": feed})[0]
    diff = float(np.max(np.abs(got - expected)))
    one = session.run(["logits"], {"images": feed[:1]})[0]
    dynamic_ok = one.shape == (1, expected.shape[1]) and got.shape == expected.shape

    def run_torch() -> None:
        with torch.no_grad():
            model(images)
        if device == "cuda":
            torch.cuda.synchronize()

    torch_ms = _timed(run_torch)
    ort_ms = _timed(lambda: session.run(["logits"], {"images": feed}))
    return OnnxResult(
        str(path),
        exporter,
        True,
        provider,
        requested,
        diff,
        diff <= TOLERANCE,
        bool(dynamic_ok),
        torch_ms,
        ort_ms,
    )
