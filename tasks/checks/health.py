"""health: the service's /health answers 200 within the policy's deadline (a container that
exits or restarts fails it at once)."""

from __future__ import annotations

from tasks.checks.base import CheckRun, Results
from tasks.checks.service import running
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult, wait_healthy


class Health:
    name = "health"
    needs = ("start-service",)
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        body = wait_healthy(run.base_url, run.health_timeout_s, running(run, done))
        versions = {k: body.get(k) for k in ("torch", "cuda", "cudnn", "cupy", "onnxruntime", "gpu_usable")}
        return CheckResult(self.name, CheckStatus.PASSED, f"{run.base_url}/health ok: {versions}", body)
