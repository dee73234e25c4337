"""gpu-utilization: the worker's NVML samples during the training job reach the policy's
threshold (needs a detected GPU; skipped, with gpu-detect's reason, without one)."""

from __future__ import annotations

from tasks.checks.base import CheckRun, Results
from tasks.errors import BaseImageError
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult, gpu_utilization


class GpuUtilizationError(BaseImageError):
    """The GPU was idle (or unsampled) during the training job."""


class GpuUtilization:
    name = "gpu-utilization"
    needs = ("training", "gpu-detect")
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        result = gpu_utilization(done["training"].data, run.gpu_utilization_min)
        if result.status == CheckStatus.FAILED:
            raise GpuUtilizationError(result.message)
        return result
