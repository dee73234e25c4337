"""training: the sample training job through the service's API (POST /train, then its job)."""

from __future__ import annotations

from tasks.checks.base import CheckRun, Results
from tasks.checks.service import running
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult, run_training


class Training:
    name = "training"
    needs = ("health",)
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        job = run_training(run.base_url, run.train_steps, run.train_timeout_s, running(run, done))
        result = job.get("result") or {}
        training = result.get("training") or {}
        first, last = training.get("loss_first", float("nan")), training.get("loss_last", float("nan"))
        message = f"job {job['job_id']}: device {result.get('device')}, loss {first:.3f} -> {last:.3f}"
        return CheckResult(self.name, CheckStatus.PASSED, message, job)
