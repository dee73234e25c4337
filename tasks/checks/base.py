"""What a validation check is (the `Check` protocol), what it is given (`CheckRun`: plain values
built once per run by `baseimage.wiring.check_run`) and how a check that cannot run is recorded.

A check names the checks it needs; the validate flow runs the registered checks in order
(`tasks/checks/__init__.py`) and records a check whose need did not pass as skipped, with the
reason carried down: "not run: build failed", or the GPU skip's own "skipped: no GPU (...)"."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tasks.containers import LABEL
from tasks.research.consumers import ConsumerRuntime
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult


@dataclass(frozen=True)
class ServiceSpec:
    """One container of the service under test (``validation.containers[]``)."""

    name: str
    command: Sequence[str] | None = None
    gpu: bool = False


def default_log(message: str) -> None:
    logging.getLogger("baseimage.checks").info("%s", message)


def default_docker() -> Any:
    import docker

    return docker.from_env(timeout=120)


@dataclass(frozen=True)
class CheckRun:
    """Everything a check reads: the candidate, the service's address and the policy's limits."""

    context: Path
    dockerfile: str
    tag: str
    run_label: str
    base_url: str
    buildargs: Mapping[str, str] = field(default_factory=dict)
    mirrors: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    require_gpu: bool = False
    health_timeout_s: float = 120.0
    train_steps: int = 20
    train_timeout_s: float = 600.0
    gpu_utilization_min: float = 10.0
    redis_image: str | None = None
    redis_port: int = 6379
    services: tuple[ServiceSpec, ...] = ()
    # The consumers of the exported model, read from a tree (the candidate's); None: none configured.
    consumers: Callable[[Path], Sequence[ConsumerRuntime]] | None = None
    cache: Path = Path(".cache")
    docker: Callable[[], Any] = default_docker
    # Where a check's progress lines go; the validate flow hands each check task its run logger,
    # so the checks need no Prefect import of their own.
    log: Callable[[str], None] = default_log

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.run_label}

    @property
    def short(self) -> str:
        return self.run_label[:12]


Results = Mapping[str, CheckResult]


class Check(Protocol):
    """A validation check: one module under tasks/checks/, one line in `CHECKS`."""

    @property
    def name(self) -> str:
        """The check's name in reports, and its task's name in the UI."""

    @property
    def needs(self) -> tuple[str, ...]:
        """The checks that must have passed before this one runs."""

    @property
    def quiet(self) -> bool:
        """Listed only when it fails or is skipped (a set-up step, not a claim)."""

    def enabled(self, run: CheckRun) -> bool:
        """Whether this check applies to this run at all (never listed when not)."""

    def run(self, run: CheckRun, done: Results) -> CheckResult | list[CheckResult]:
        """Run the check; raise (any BaseImageError) to fail it with that message."""


def unmet(check: Check, done: Results) -> CheckResult | None:
    """The skipped result of a check whose needs did not pass, or None when it can run."""
    for need in check.needs:
        before = done.get(need)
        if before is None or before.status == CheckStatus.FAILED:
            return CheckResult(
                check.name, CheckStatus.SKIPPED, f"not run: {need} {'failed' if before else 'did not run'}"
            )
        if before.status == CheckStatus.SKIPPED:
            return CheckResult(check.name, CheckStatus.SKIPPED, before.message)  # the reason carries down
    return None


def failed(name: str, error: BaseException) -> CheckResult:
    return CheckResult(name, CheckStatus.FAILED, f"{type(error).__name__}: {error}")
