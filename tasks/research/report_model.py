"""The review report as a migration reads it: typed, versioned, parsed once at the boundary.

A quarterly review (``reports/review-<date>.json``) or an annual update
(``reports/annual-<year>.json``) becomes a plan through `ReviewReport.from_json` (or `read` for
a file): the images it recommends changing, each with the pins its plan chose, the conflicts the
review found and the compatibility matrix. The report on disk keeps its documented shape and
carries ``schema`` (`REPORT_SCHEMA`); a report without it is the shape before versioning (its
plans may carry the older torch/cupy keys), one from a newer baseimage is refused, and a report
that is not one says which file and key."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.errors import ConfigError
from tasks.research.consumers import ConsumerPlan
from tasks.statuses import PlanAction, StatusError, parse
from tasks.update.requirements import RequirementChanges

__all__ = ["REPORT_SCHEMA", "ImageFinding", "ReviewReport"]

REPORT_SCHEMA = 1  # the version of the review and annual reports on disk (written by Review.to_json)


@dataclass(frozen=True)
class ImageFinding:
    """One reviewed FROM as the plan reads it."""

    image: str
    file: str
    current: str | None
    target: str | None = None
    recommended: bool = False
    action: PlanAction = PlanAction.NONE
    reasons: tuple[str, ...] = ()
    changes: RequirementChanges = field(default_factory=RequirementChanges)  # the pins the plan chose
    # The plan chose no pins of its own (an annual report's targets, a report before ``changes``):
    # a migration couples them against today's index (tasks/update/plans.check_report).
    coupled_later: bool = False
    dockerfile_changes: RequirementChanges = field(default_factory=RequirementChanges)
    consumers: ConsumerPlan | None = None
    errors: tuple[str, ...] = ()  # why the review could not research it (no plan then)

    @property
    def planned_target(self) -> str | None:
        """Where the plan moves the base: its target, or the current base for a pins-only update."""
        return self.target or (self.current if self.action == PlanAction.UPDATE_PINS else None)


@dataclass(frozen=True)
class ReviewReport:
    images: tuple[ImageFinding, ...]
    conflicts: tuple[str, ...] = ()
    matrix: tuple[Mapping[str, Any], ...] = ()  # the compatibility matrix rows (a table, as written)
    source: str = ""  # the report's JSON file, for messages
    schema: int = REPORT_SCHEMA
    # What the run could not look up (an annual report's lookups; a review's are per image) and
    # whether it says it saw everything: an incomplete report is never read as "nothing is due".
    errors: tuple[str, ...] = ()
    complete: bool = True
    sources: str = ""  # what the review read: "offline snapshot ..." when it replayed one

    @property
    def offline(self) -> bool:
        """The review replayed a snapshot: what it found is not today's registry."""
        return self.sources.startswith("offline snapshot")

    @classmethod
    def read(cls, path: Path) -> ReviewReport:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--report {path}: cannot read it: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"--report {path}: not JSON ({exc}); pass a review-*.json or annual-*.json") from exc
        return cls.from_json(data, f"--report {path}")

    @classmethod
    def from_json(cls, data: Any, where: str = "the review report") -> ReviewReport:
        if not isinstance(data, Mapping) or not isinstance(data.get("images"), Sequence):
            raise ConfigError(f"{where}: not a review report (no images list); pass a review-*.json or annual-*.json")
        schema = data.get("schema", 0)
        if not isinstance(schema, int) or schema > REPORT_SCHEMA:
            raise ConfigError(
                f"{where}: report schema {schema!r} is newer than this baseimage reads ({REPORT_SCHEMA}); upgrade it"
            )
        images = tuple(_image(i, f"{where}: images[{n}]") for n, i in enumerate(data["images"]))
        files = data.get("files") or {}
        return cls(
            images,
            tuple(str(c) for c in data.get("conflicts") or ()),
            tuple(dict(r) for r in (data["matrix"] if "matrix" in data else _matrix_rows(data["images"]))),
            str(files.get("json") or where.removeprefix("--report ")) if isinstance(files, Mapping) else where,
            schema,
            tuple(str(e) for e in data.get("errors") or ()),
            data.get("complete") is not False,
            str(data.get("sources") or ""),
        )


def _matrix_rows(images: Sequence[Any]) -> list[dict[str, Any]]:
    """The matrix of a report written before it carried one: from each image's plan."""
    return [
        {"image": image["image"], **row} for image in images for row in (image.get("plan") or {}).get("matrix") or []
    ]


def _image(data: Any, where: str) -> ImageFinding:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: not an object")
    try:
        plan = data.get("plan") or {}
        if not isinstance(plan, Mapping):
            raise TypeError("plan is not an object")
        changes = RequirementChanges.from_json(plan["changes"]) if "changes" in plan else _legacy_changes(plan)
        return ImageFinding(
            str(data["image"]),
            str(data["file"]),
            None if data.get("current") is None else str(data["current"]),
            None if data.get("target") is None else str(data["target"]),
            bool(data.get("recommended")),
            parse(PlanAction, plan.get("action") or data.get("action") or PlanAction.NONE, "action"),
            tuple(str(r) for r in data.get("reasons") or ()),
            changes,
            "changes" not in plan,
            RequirementChanges.from_json(plan.get("dockerfile_changes")),
            ConsumerPlan.from_json(plan["consumers"]) if plan.get("consumers") else None,
            tuple(str(e) for e in data.get("errors") or ()),
        )
    except StatusError as exc:  # the status says where inside the image; the file and image say where it is
        raise ConfigError(f"{where}: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc} (was the report edited by hand?)") from exc


def _legacy_changes(plan: Mapping[str, Any]) -> RequirementChanges:
    """The pins of a plan written before ``changes`` (torch/torchvision and CuPy keys of their own)."""
    torch = plan.get("torch") or {}
    return RequirementChanges(
        torch.get("variant"),
        None,
        torch.get("torch"),
        torch.get("torchvision"),
        plan.get("cupy_package"),
        plan.get("cupy_version"),
        plan.get("onnxruntime_gpu"),
    )
