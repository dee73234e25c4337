"""What a review reads: the Dockerfiles to review (`Target`, built from the policy by
`baseimage.wiring.targets_of`) and every FROM in them to research (`occurrences_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.research.review import ImageReview, Occurrence, ReviewOptions, dockerfile_occurrences


@dataclass(frozen=True)
class Target:
    """A Dockerfile to review and the settings of the image it belongs to."""

    name: str
    path: Path
    label: str
    build_args: dict[str, str]
    options: ReviewOptions
    managed: bool


def occurrences_of(targets: Sequence[Target]) -> list[ImageReview | Occurrence]:
    """In the targets' order, every FROM to research, and the error row of each that cannot be
    (each Dockerfile read once)."""
    rows: list[ImageReview | Occurrence] = []
    for t in targets:
        bad, ok = dockerfile_occurrences(t.name, t.path, t.label, t.build_args, t.options, managed=t.managed)
        rows += [*bad, *ok]
    return rows
