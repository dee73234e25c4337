"""Export to ONNX with a dynamic batch axis, check it, and compare ONNX Runtime with torch."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOLERANCE = 1e-3
DEFAULT_OPSET = 17  # what the workload exports with when not told (BASEIMAGE_ONNX_OPSET / --onnx-opset)
TORCHSCRIPT_MAX_OPSET = 20  # the TorchScript exporter (dynamo=False) writes opsets up to this
REFERENCE_SAMPLES = 8  # inputs whose torch outputs go with the model, for the consumers' check


class ExportOpsetError(RuntimeError):
    """The model could not be exported at the opset asked for (the message says which and why)."""


@dataclass
class OnnxResult:
    path: str
    exporter: str
    opset: int  # the default-domain opset the model is stamped with
    ir_version: int
    opset_requested: int | None  # BASEIMAGE_ONNX_OPSET / --onnx-opset (None: the workload's default)
    checker_ok: bool
    provider: str
    providers_requested: list[str]
    max_abs_diff: float
    parity_ok: bool
    dynamic_batch_ok: bool
    torch_latency_ms: float
    ort_latency_ms: float


def stamp(path: Path) -> tuple[int, int]:
    """(default-domain opset, IR version) of the model at `path`."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    opset = next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)
    return opset, int(proto.ir_version)


def export(model: Any, sample: Any, path: Path, opset: int | None = None) -> str:
    """Write `model` to `path` at `opset` (None: DEFAULT_OPSET); returns the exporter used: the
    TorchScript one up to its highest opset (it needs no onnxscript), the torch.export-based one
    above it or where the TorchScript exporter is gone. A model not stamped with the opset asked
    for is an ExportOpsetError."""
    import torch

    wanted = DEFAULT_OPSET if opset is None else opset
    model.eval()
    exporter = "torchscript"
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated from torch 2.9 but needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            if wanted > TORCHSCRIPT_MAX_OPSET:
                raise TypeError("above the TorchScript exporter's opsets")
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                input_names=["images"],
                output_names=["logits"],
                opset_version=wanted,
                dynamo=False,
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            )
        except (TypeError, RuntimeError, AttributeError):
            exporter = "dynamo"
            batch = torch.export.Dim("batch", min=1, max=4096)
            try:
                torch.onnx.export(
                    model,
                    (sample,),
                    str(path),
                    input_names=["images"],
                    output_names=["logits"],
                    opset_version=wanted,
                    dynamo=True,
                    dynamic_shapes={"x": {0: batch}},
                )
            except ImportError as exc:  # the torch.export-based exporter needs onnxscript
                raise ExportOpsetError(
                    f"ONNX opset {wanted}: the TorchScript exporter writes at most {TORCHSCRIPT_MAX_OPSET} here and "
                    f"torch {torch.__version__}'s torch.export-based exporter cannot run ({exc}); install onnxscript "
                    f"or export at opset {TORCHSCRIPT_MAX_OPSET} or below (BASEIMAGE_ONNX_OPSET)"
                ) from exc
    got, _ir = stamp(path)
    if opset is not None and got != opset:
        raise ExportOpsetError(
            f"asked to export ONNX opset {opset} (BASEIMAGE_ONNX_OPSET), torch {torch.__version__}'s {exporter} "
            f"exporter wrote opset {got}"
        )
    return exporter


def _timed(fn: Any, repeats: int = 10) -> float:
    fn()
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - began) / repeats * 1000


def reference(model: Any, inputs: Any) -> list[list[float]]:
    """torch's outputs for `inputs` (float32, on the model's device, no TF32): what every runtime
    that loads the model must reproduce."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model.eval()
    with torch.no_grad():
        return [[float(x) for x in row] for row in model(inputs).float().cpu().numpy()]


def check(model: Any, images: Any, device: str, path: Path, opset: int | None = None) -> OnnxResult:
    """Export (at `opset`), ``onnx.checker``, then ORT (CUDA provider when usable) against torch on
    `images`."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    exporter = export(model, images[:2], path, opset)
    stamped, ir_version = stamp(path)
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
        stamped,
        ir_version,
        opset,
        True,
        provider,
        requested,
        diff,
        diff <= TOLERANCE,
        bool(dynamic_ok),
        torch_ms,
        ort_ms,
    )
