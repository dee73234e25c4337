"""What a research source is.

A review-wide `Source` is read once per review, concurrently with the registry research, as its
own Prefect task (retried on transient HTTP errors). Its `Answer` says where the data came from
(every report says it), carries the value the review reads, and may add findings.

A `WheelIndex` is read per base, inside the planner's research of each one
(tasks/research/review.py): which torch and torchvision wheels exist for the CUDA variant the
base's candidates need, known only once the registry has answered. The composition root builds
one per run (`baseimage.wiring.wheel_index`) and the report's sources line names its `where`.
The registry is the other source read per base; it has its own package (tasks/registry/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tasks.http import HttpTransport
from tasks.research.facts import Facts

if TYPE_CHECKING:
    from packaging.version import Version

    from tasks.research.sources.pytorch_index import Wheel


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


class WheelIndex(Protocol):
    """A wheel index read per base (tasks/research/sources/pytorch_index.py: `PyTorchIndex`): one
    run's reader, shared by its threads, each page fetched once."""

    @property
    def base_url(self) -> str:
        """The index's root; a plan's index URL is ``<base_url>/<variant>``."""

    @property
    def where(self) -> str:
        """How the report's sources line names it (no credentials)."""

    def wheels(self, variant: str, package: str) -> list[Wheel] | None:
        """The wheels of `package` under `variant` (cu126), or None when the index has no page."""

    def versions(self, variant: str, package: str, python: str) -> list[Version]:
        """Versions of `package` with a wheel for `python` on Linux x86_64, newest first."""

    def prefetch(self, pages: Sequence[tuple[str, str]]) -> None:
        """Fetch these (variant, package) pages concurrently, so reading them one by one waits for
        one round trip."""
