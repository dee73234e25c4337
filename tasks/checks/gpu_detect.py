"""gpu-detect: nvidia-smi in the candidate. Without an NVIDIA container runtime the check is
skipped ("skipped: no GPU"), or fails when the policy requires a GPU."""

from __future__ import annotations

from dataclasses import asdict

from tasks import containers
from tasks.checks.base import CheckRun, Results
from tasks.errors import GpuUnavailableError
from tasks.statuses import CheckStatus
from tasks.validation import SKIPPED_NO_GPU, CheckResult, parse_nvidia_smi


class GpuDetect:
    name = "gpu-detect"
    needs = ("build",)
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        try:
            container = containers.run_container(
                run.docker(), run.tag, f"bi-smi-{run.short}", run.labels, command=["nvidia-smi"], gpu=True
            )
        except GpuUnavailableError as exc:
            if run.require_gpu:
                raise GpuUnavailableError(f"policy require_gpu is true and {exc}") from exc
            reason = "no NVIDIA container runtime on this Docker host"
            return CheckResult(self.name, CheckStatus.SKIPPED, f"{SKIPPED_NO_GPU} ({reason})")
        status = container.wait(timeout=120)["StatusCode"]
        output = container.logs().decode(errors="replace")
        container.remove(force=True)
        report = parse_nvidia_smi(output)
        if status != 0 or not report.gpus:
            raise GpuUnavailableError(f"nvidia-smi in {run.tag} exited {status} and listed no GPU")
        return CheckResult(
            self.name,
            CheckStatus.PASSED,
            f"{', '.join(report.gpus)}; driver {report.driver_version}, CUDA {report.cuda_version}",
            asdict(report),
        )
