"""Benchmark of the validation workload, as ratios against baselines measured in the same run.

- synthetic data generation (CuPy on a GPU, NumPy on the CPU) in GB/s, against a plain
  device-to-device (or host memory) copy of the same number of bytes: ratio = gen / copy;
- training throughput in images/s;
- ONNX Runtime inference latency against torch on the same batch: ratio = ort / torch.

    python bench/gpu_workload.py [--samples N] [--repeats R] [--steps S] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.workload import data, device, model, onnx_check, train


def _best_of(fn: Any, repeats: int, sync: Any) -> float:
    times = []
    for _ in range(repeats):
        sync()
        began = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - began)
    return min(times)


def bench(samples: int, repeats: int, steps: int, force_cpu: bool) -> dict[str, Any]:
    import numpy as np
    import torch

    info = device.detect()
    use_gpu = info.gpu and info.cupy and not force_cpu
    xp, backend = data.backend(use_gpu)
    where = "cuda" if use_gpu else "cpu"

    def sync() -> None:
        if use_gpu:
            xp.cuda.Device().synchronize()

    data.generate(xp, 1, 0, 16)  # compile kernels / warm caches
    batch = data.generate(xp, 1, 0, samples)
    nbytes = batch.nbytes
    gen_s = _best_of(lambda: data.generate(xp, 1, 0, samples), repeats, sync)
    src = xp.ones(nbytes // 4, dtype=xp.float32)
    dst = xp.empty_like(src)
    copy_s = _best_of(lambda: xp.copyto(dst, src), repeats, sync)

    net = model.build_model()
    x = train.to_torch(batch.images[:4096], where)
    y = train.to_torch(batch.labels[:4096], where)
    batch_size = 256 if use_gpu else 32
    train.train(net, x, y, 3, batch_size, where)  # warm-up (cuDNN autotune, allocator)
    trained = train.train(net, x, y, steps, batch_size, where)

    with tempfile.TemporaryDirectory() as tmp:
        exported = onnx_check.check(net, x[:batch_size], where, Path(tmp) / "model.onnx")

    gen_gbps = nbytes / gen_s / 1e9
    copy_gbps = nbytes / copy_s / 1e9
    return {
        "device": where,
        "gpu_name": info.gpu_name,
        "data_backend": backend,
        "bytes": nbytes,
        "generation_gb_per_s": gen_gbps,
        "copy_gb_per_s": copy_gbps,
        "generation_vs_copy": gen_gbps / copy_gbps,
        "training_images_per_s": trained.images_per_s,
        "training_batch_size": batch_size,
        "loss_first_last": [trained.losses[0], trained.losses[-1]],
        "onnx_provider": exported.provider,
        "inference_batch": batch_size,
        "torch_latency_ms": exported.torch_latency_ms,
        "ort_latency_ms": exported.ort_latency_ms,
        "ort_vs_torch_latency": exported.ort_latency_ms / exported.torch_latency_ms,
        "parity_max_abs_diff": exported.max_abs_diff,
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=None, help="images generated (default 65536 GPU, 4096 CPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 50 GPU, 10 CPU)")
    parser.add_argument("--cpu", action="store_true", help="measure the CPU path even where a GPU exists")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    gpu = device.detect().gpu and not args.cpu
    samples = args.samples or (65536 if gpu else 4096)
    steps = args.steps or (50 if gpu else 10)
    result = bench(samples, args.repeats, steps, args.cpu)
    where = result["gpu_name"] if result["device"] == "cuda" else "cpu"
    print(f"device: {result['device']} ({where}), data: {result['data_backend']}")
    print(
        f"synthetic data: {result['generation_gb_per_s']:.2f} GB/s vs copy "
        f"{result['copy_gb_per_s']:.2f} GB/s -> ratio {result['generation_vs_copy']:.3f}"
    )
    print(f"training: {result['training_images_per_s']:.0f} images/s (batch {result['training_batch_size']})")
    print(
        f"inference (batch {result['inference_batch']}): ORT {result['ort_latency_ms']:.2f} ms "
        f"[{result['onnx_provider']}] vs torch {result['torch_latency_ms']:.2f} ms -> ratio "
        f"{result['ort_vs_torch_latency']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
