"""The validate flow's check runner (flows/validate.py `run_checks`) on checks of the test's own,
each a Prefect task: the order is the registration order, a check whose need failed or was
skipped is recorded as skipped with the reason carried down, a quiet check is listed only when it
did not pass, and a new check is one class and one entry in the tuple. The registered checks
themselves run against a real daemon in test_validate.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tasks.checks import CHECKS, CheckRun, Results
from tasks.errors import BaseImageError
from tasks.validation import SKIPPED_NO_GPU, CheckResult


@dataclass
class Fake:
    """A check that returns (or raises) what it is told and records that it ran."""

    name: str
    needs: tuple[str, ...] = ()
    outcome: str = "passed"
    quiet: bool = False
    on: bool = True
    ran: list[str] = field(default_factory=list)

    def enabled(self, run: CheckRun) -> bool:
        return self.on

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        self.ran.append(self.name)
        if self.outcome == "raise":
            raise BaseImageError(f"{self.name} broke")
        if self.outcome == "no-gpu":
            return CheckResult(self.name, "skipped", f"{SKIPPED_NO_GPU} (no runtime)")
        return CheckResult(self.name, "passed" if self.outcome == "passed" else "failed", f"{self.name} said so")


RUN = CheckRun(Path("."), "Dockerfile", "t:1", "0123456789abcdef", "http://127.0.0.1:1")


def statuses(found: list[CheckResult]) -> dict[str, tuple[str, str]]:
    return {r.name: (r.status, r.message) for r in found}


def test_dependents_of_a_failed_check_are_skipped_with_the_reason(prefect_harness: None) -> None:
    from flows.validate import run_checks

    ran: list[str] = []
    checks = (
        Fake("build", ran=ran),
        Fake("gpu", ("build",), "no-gpu", ran=ran),
        Fake("start", ("build",), quiet=True, ran=ran),
        Fake("health", ("start",), "raise", ran=ran),
        Fake("logs", ("start",), ran=ran),
        Fake("train", ("health",), ran=ran),
        Fake("onnx", ("train",), ran=ran),
        Fake("util", ("train", "gpu"), ran=ran),
        Fake("off", on=False, ran=ran),
    )
    found = run_checks(RUN, checks)
    assert ran == ["build", "gpu", "start", "health", "logs"], "nothing runs after a need that did not pass"
    assert [r.name for r in found] == ["build", "gpu", "health", "logs", "train", "onnx", "util"]
    by_name = statuses(found)
    assert by_name["health"] == ("failed", "BaseImageError: health broke")
    assert by_name["train"] == ("skipped", "not run: health failed")
    assert by_name["onnx"] == ("skipped", "not run: health failed"), "the first cause is carried down"
    assert by_name["util"] == ("skipped", "not run: health failed")


def test_a_quiet_check_is_listed_when_it_fails_and_a_gpu_skip_carries_its_reason(prefect_harness: None) -> None:
    from flows.validate import run_checks

    found = statuses(run_checks(RUN, (Fake("build"), Fake("start", ("build",), "failed", quiet=True))))
    assert found == {"build": ("passed", "build said so"), "start": ("failed", "start said so")}
    found = statuses(
        run_checks(RUN, (Fake("build"), Fake("gpu", ("build",), "no-gpu"), Fake("util", ("build", "gpu"))))
    )
    assert found["util"] == ("skipped", f"{SKIPPED_NO_GPU} (no runtime)"), "never counted as passed"


def test_the_registered_checks_need_only_checks_registered_before_them() -> None:
    seen: set[str] = set()
    for check in CHECKS:
        missing = [n for n in check.needs if n not in seen]
        assert not missing, f"{check.name} needs {missing}, not registered before it"
        seen.add(check.name)
    assert [c.name for c in CHECKS][:2] == ["build", "gpu-detect"]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_every_registered_check_has_its_own_module(check: object) -> None:
    module = type(check).__module__
    assert module.startswith("tasks.checks.") and module != "tasks.checks.base"
    assert sum(type(c).__module__ == module for c in CHECKS) == 1, f"{module} holds more than one check"
