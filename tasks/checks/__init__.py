"""The validation checks (the policy's testing phase), one module each, run in this order by
flows/validate.py. A new check is one module with a class that has the `Check` protocol's
``name``, ``needs``, ``quiet``, ``enabled`` and ``run`` (tasks/checks/base.py), and one line here.
A check runs only when every check it ``needs`` passed; otherwise it is recorded as skipped with
the reason (docs/architecture.md has a worked example)."""

from __future__ import annotations

from tasks.checks.base import Check, CheckRun, Results, ServiceSpec, failed, unmet
from tasks.checks.build import Build
from tasks.checks.consumers import Consumers
from tasks.checks.gpu_detect import GpuDetect
from tasks.checks.gpu_utilization import GpuUtilization
from tasks.checks.health import Health
from tasks.checks.onnx_model import OnnxModel
from tasks.checks.service import StartService
from tasks.checks.startup_logs import StartupLogs
from tasks.checks.training import Training

CHECKS: tuple[Check, ...] = (
    Build(),
    GpuDetect(),
    StartService(),
    Health(),
    StartupLogs(),
    Training(),
    OnnxModel(),
    Consumers(),
    GpuUtilization(),
)

__all__ = ["CHECKS", "Check", "CheckRun", "Results", "ServiceSpec", "failed", "unmet"]
