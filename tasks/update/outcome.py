"""What a migration ended in, as a typed value: one `Result` (an enum, never a string read back
with ``startswith``), the reviewers' decisions, the validation report and what each phase did.
The flow layer turns it into the run's Prefect state (flows/outcome.py); the command line's exit
code follows that state."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from tasks.deploy.rollback_record import RollbackRecord
from tasks.monitoring.soak_report import SoakReport
from tasks.statuses import DecisionOutcome
from tasks.validation import ValidationReport


class Result(enum.StrEnum):
    NOTHING_TO_DO = "nothing to do"
    DRY_RUN = "dry run"
    VALIDATED = "validated; nothing deployed"
    UPDATED = "updated; not validated, nothing deployed"
    DEPLOYED = "deployed to production"
    NOT_MERGED = "deployed to production; branch not merged"
    REJECTED = "rejected"
    TIMED_OUT = "approval timed out"
    NOT_PROVEN = "not proven on a GPU"
    ROLLED_BACK = "failed; rolled back"
    ROLLBACK_FAILED = "failed; rollback failed"

    @property
    def succeeded(self) -> bool:
        """The run did what was asked (exit code 0)."""
        return self in (Result.NOTHING_TO_DO, Result.DRY_RUN, Result.VALIDATED, Result.UPDATED, Result.DEPLOYED)


@dataclass(frozen=True)
class Decision:
    """A reviewer's answer to one approval pause (or why there was none)."""

    stage: str  # update | production
    outcome: DecisionOutcome
    reviewer: str | None = None
    comment: str = ""

    @property
    def approved(self) -> bool:
        return self.outcome in (DecisionOutcome.APPROVED, DecisionOutcome.NOT_REQUIRED)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": str(self.outcome)}


@dataclass(frozen=True)
class MigrationOutcome:
    result: Result
    summary: str  # the one line people read: history, the UI, the command line
    run: str = "local"
    branch: str | None = None
    commit: str | None = None
    plan: str = ""
    files: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()
    validation: ValidationReport | None = None
    pull_request: str | None = None
    image: str | None = None
    soak: SoakReport | None = None
    rollback: RollbackRecord | None = None
    release_commit: str | None = None
    merge: str | None = None
    diff: str | None = None
    # What the update could not do and the user should (a policy document section not found)
    warnings: tuple[str, ...] = ()
    report: str | None = None  # where the outcome JSON was written

    def line(self) -> str:
        """The summary with the validation counts, as `baseimage history` shows it."""
        if self.validation is None or self.result in (Result.NOTHING_TO_DO, Result.DRY_RUN):
            return self.summary
        return f"{self.summary} ({self.validation.line()})"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "result": self.result.value,
            "outcome": self.summary,
            "run": self.run,
            "branch": self.branch,
            "commit": self.commit,
            "plan": self.plan,
            "files": list(self.files),
            "decisions": [d.to_json() for d in self.decisions],
            "validation": self.validation.to_json() if self.validation else None,
            "pull_request": self.pull_request,
            "image": self.image,
            "soak": self.soak.to_json() if self.soak else None,
            "rollback": self.rollback.result() if self.rollback else None,
            "release_commit": self.release_commit,
            "merge": self.merge,
            "warnings": list(self.warnings),
            "report": self.report,
        }
        if self.diff is not None:
            data["diff"] = self.diff
        return data
