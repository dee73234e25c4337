"""Load an exported model the way the inference service does (ONNX Runtime, CPU provider) and
run a batch through it. ``python -m services.inference.loader MODEL.onnx`` prints what it ran."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> Any:
    """An ONNX Runtime session for the model at `path` (CPU provider); ONNX Runtime's own error
    when the model's opset or IR version is newer than this runtime supports."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def predict(session: Any, images: Any) -> Any:
    """The model's first output for `images` (float32, batch first)."""
    import numpy as np

    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(images, dtype=np.float32)})[0]


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import onnxruntime

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.inference.loader MODEL.onnx", file=sys.stderr)
        return 2
    try:
        session = load(Path(args[0]))
    except Exception as exc:  # ONNX Runtime raises its own types; all mean "cannot load"
        print(f"error: onnxruntime {onnxruntime.__version__} cannot load {args[0]}: {exc}", file=sys.stderr)
        return 1
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    out = predict(session, np.zeros(shape, dtype=np.float32))
    print(f"onnxruntime {onnxruntime.__version__}: {args[0]} -> output {list(out.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
