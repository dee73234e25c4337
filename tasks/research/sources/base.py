"""What a review-wide research source is: read once per review, concurrently with the registry
research, as its own Prefect task (retried on transient HTTP errors). Its `Answer` says where the
data came from (every report says it), carries the value the review reads, and may add findings.

Sources per base image (the registry, the PyTorch index) are read inside the planner's research
of each base (tasks/research/review.py) instead: they answer per tag, not once per review."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from tasks.http import HttpTransport
from tasks.research.facts import Facts


@dataclass(frozen=True)
class SourceContext:
    """What a source may read: the bundled facts, the run's transport (live, recording or
    replaying a snapshot), whether the internet is to be used, and the review's inputs."""

    facts: Facts
    transport: HttpTransport
    live: bool
    today: date
    # The reviewed images' stacks: (requirements file, its pyproject.toml or None), as read.
    stacks: Sequence[tuple[str, str | None]] = ()
    osv_db: Path | None = None


@dataclass(frozen=True)
class Answer:
    """A source's answer: where it came from ("OSV live (api.osv.dev)", "not checked: ..."), the
    value the review reads (each source documents its type) and findings for the report."""

    source: str
    label: str  # how the report's sources line names it: "NVIDIA support", "advisories"
    where: str
    value: Any = None
    findings: tuple[str, ...] = field(default=())


class Source(Protocol):
    """A review-wide research source: one module under tasks/research/sources/, one line in
    `SOURCES`."""

    @property
    def name(self) -> str:
        """The source's key in the review (and its task's name in the UI)."""

    @property
    def label(self) -> str:
        """How the report names it."""

    def fetch(self, ctx: SourceContext) -> Answer:
        """Read the source; raise a transient HTTP error to be retried, anything else to have
        the review say "not checked" (`unavailable`)."""

    def unavailable(self, ctx: SourceContext, problem: str) -> Answer:
        """The answer when the source failed as a whole (the review goes on and says so)."""
