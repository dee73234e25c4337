"""consumers: the job's model loaded in each consumer's ONNX Runtime version (its pin as the
validated tree has it), in a cached virtual environment with that version; one result per
consumer (``consumer:NAME``), a version that cannot be installed here skipped, saying so."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tasks.checks.base import CheckRun, Results
from tasks.consumer_check import check_consumers
from tasks.validation import CheckResult, verify_model


class Consumers:
    name = "consumers"
    needs = ("training",)
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return run.consumers is not None

    def run(self, run: CheckRun, done: Results) -> list[CheckResult]:
        assert run.consumers is not None  # enabled() said so
        consumers = run.consumers(run.context)
        job = done["training"].data
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model.onnx"
            verify_model(run.base_url, job, model)
            reference = ((job.get("result") or {}).get("onnx") or {}).get("reference")
            found = check_consumers(model, reference, [(c.name, c.version) for c in consumers], run.cache)
        return [CheckResult(f"consumer:{r.consumer}", r.status, r.message, r.to_json(), r.seconds) for r in found]
