"""``python -m tasks.workload --out result.json``: run the workload, write its JSON result.

Exit codes: 0 every check held; 1 a check failed (the result says which); 2 ``--require-gpu``
without a usable GPU, or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tasks.workload.onnx_check import ExportOpsetError
from tasks.workload.run import OPSET_VARIABLE, GpuRequiredError, WorkloadConfig, opset_from, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.workload", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--steps", type=int, default=40, help="training steps (default 40)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-samples", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--require-gpu", action="store_true", help="fail unless a GPU is usable")
    parser.add_argument(
        "--onnx-opset",
        default=None,
        help=f"ONNX opset to export with (default: ${OPSET_VARIABLE}, else 17)",
    )
    args = parser.parse_args(argv)
    if args.steps < 2 or args.batch_size < 1 or args.train_samples < args.batch_size:
        parser.error("--steps must be >= 2 and --train-samples >= --batch-size >= 1")
    try:
        opset = opset_from(args.onnx_opset if args.onnx_opset is not None else os.environ.get(OPSET_VARIABLE))
    except ValueError as exc:
        parser.error(str(exc))
    config = WorkloadConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        train_samples=args.train_samples,
        seed=args.seed,
        require_gpu=args.require_gpu,
        device=args.device,
        out_dir=args.out.resolve().parent,
        onnx_opset=opset,
    )
    try:
        result = run(config)
    except GpuRequiredError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ExportOpsetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    summary = (
        f"device={result['device']} data={result['data']['backend']} "
        f"loss {result['training']['loss_first']:.3f}->{result['training']['loss_last']:.3f} "
        f"accuracy={result['evaluation']['accuracy']:.2f} onnx={result['onnx']['provider']} "
        f"opset={result['onnx']['opset']} ir={result['onnx']['ir_version']} "
        f"max|diff|={result['onnx']['max_abs_diff']:.2e} ok={result['ok']}"
    )
    print(summary)
    if not result["ok"]:
        failed = [name for name, ok in result["checks"].items() if not ok]
        print(f"error: workload checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
