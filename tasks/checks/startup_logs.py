"""startup-logs: no NVIDIA deprecation banner in the containers' start-up logs."""

from __future__ import annotations

from tasks.checks.base import CheckRun, Results
from tasks.checks.service import running
from tasks.deprecation import find_deprecation_banner
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult, logs_of


class StartupLogs:
    name = "startup-logs"
    needs = ("start-service",)
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        banner = find_deprecation_banner(logs_of(running(run, done)))
        if banner:
            message = "deprecation banner in start-up logs: " + " / ".join(banner)
            return CheckResult(self.name, CheckStatus.FAILED, message, {"banner": banner})
        return CheckResult(self.name, CheckStatus.PASSED, "no deprecation banner in start-up logs")
