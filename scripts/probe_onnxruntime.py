"""Confirm the ONNX Runtime rows of config/data/onnx-compat.yaml against the packages themselves.

For each version given, install ``onnxruntime==VERSION`` into its own cached virtual environment
(``tasks.consumer_check.runtime_env``) and load, with the CPU provider, a one-node model stamped
with each default-domain opset and each IR version in turn: the highest that loads is what that
release supports (ONNX Runtime refuses the next one with "Current official support for domain
ai.onnx is till opset N" / "max supported IR version: N"). Needs the package index (not a test).

    python scripts/probe_onnxruntime.py 1.17.3 1.20.1 ... [--cache DIR] > probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tasks.consumer_check import RuntimeUnavailableError, _run, runtime_env

_LOADER = r"""
import json, sys, onnxruntime as ort
ort.set_default_logger_severity(4)
out = {"version": ort.__version__}
for kind, paths in json.loads(sys.stdin.read()).items():
    best, error = None, None
    for value, path in paths:
        try:
            ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            best = value
        except Exception as exc:
            error = str(exc).strip().splitlines()[-1][-240:]
            break
    out[kind] = best
    out[kind + "_refusal"] = error
print(json.dumps(out))
"""


def _models(tmp: Path) -> dict[str, list[tuple[int, str]]]:
    from onnx import TensorProto, helper

    def write(opset: int, ir: int) -> str:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = ir
        path = tmp / f"relu-opset{opset}-ir{ir}.onnx"
        path.write_bytes(model.SerializeToString())
        return str(path)

    return {
        "max_opset": [(opset, write(opset, 7)) for opset in range(13, 40)],
        "max_ir": [(ir, write(13, ir)) for ir in range(7, 20)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "baseimage-ort-probe")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = _models(Path(tmp))
        for version in args.versions:
            try:
                python = runtime_env(version, args.cache)
            except RuntimeUnavailableError as exc:
                rows.append({"version": version, "error": str(exc)})
                print(f"{version}: {exc}", file=sys.stderr)
                continue
            done = _run([str(python), "-I", "-c", _LOADER], 300, json.dumps(models))
            row = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {"error": done.stderr}
            rows.append({"requested": version, **row})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
