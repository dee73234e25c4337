"""onnx: the training job's exported model passes onnx.checker and runs in ONNX Runtime."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tasks.checks.base import CheckRun, Results
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult, verify_model


class OnnxModel:
    name = "onnx"
    needs = ("training",)
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        with tempfile.TemporaryDirectory() as tmp:
            data = verify_model(run.base_url, done["training"].data, Path(tmp) / "model.onnx")
        message = f"model valid ({data['bytes']} bytes), ORT ran it: {data['output_shapes']}"
        return CheckResult(self.name, CheckStatus.PASSED, message, data)
