"""The annual update's report and its Markdown: `AnnualReport` is what the annual research
returns, typed while the run builds it; `annual_markdown` renders it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tasks.research.annual_model import AnnualImage, NgcOption
from tasks.research.report_model import REPORT_SCHEMA, ReviewReport

__all__ = ["AnnualReport", "annual_markdown"]


@dataclass
class AnnualReport:
    """The annual update's report, typed while the run builds it. `to_json` writes
    ``reports/annual-<year>.json`` in the shape `ReviewReport.from_json` reads (``schema``
    `REPORT_SCHEMA`), so a due upgrade is one ``baseimage migrate --report`` away; `review_report`
    is that same reading, the one way an annual report becomes a `MigrationPlan`."""

    day: date
    sources: str
    fleet_min_driver: int
    images: list[AnnualImage]
    ngc_vs_cuda: list[NgcOption] = field(default_factory=list)  # the comparison table's rows
    errors: list[str] = field(default_factory=list)  # what could not be checked, one line per cause
    files: dict[str, str] | None = None  # json and markdown, once written

    @property
    def year(self) -> int:
        return self.day.year

    @property
    def due(self) -> list[AnnualImage]:
        return [i for i in self.images if i.recommended]

    @property
    def recommended(self) -> bool:
        return bool(self.due)

    @property
    def outcome(self) -> str:
        moves = [f"{i.image} {i.current.rsplit(':', 1)[1]} → {str(i.target).rsplit(':', 1)[1]}" for i in self.due]
        failed = f"{len(self.errors)} lookup{'s' if len(self.errors) != 1 else ''} failed (the report's Not checked)"
        if moves:
            return "upgrade due: " + ", ".join(moves) + ("" if self.complete else f"; incomplete: {failed}")
        images = f"{len(self.images)} image{'s' if len(self.images) != 1 else ''}"
        if not self.complete:  # what it could not look up may be due: never an all-clear
            return f"incomplete: no upgrade due among what could be checked ({images}); {failed}"
        return f"no upgrade due: {images} checked"

    @property
    def complete(self) -> bool:
        """Every lookup the answers need was made (else the CLI exits 3, as the review does)."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "year": self.year,
            "date": self.day.isoformat(),
            "sources": self.sources,
            "fleet_min_driver": self.fleet_min_driver,
            "images": [i.to_json() for i in self.images],
            "ngc_vs_cuda": [row.to_json() for row in self.ngc_vs_cuda],
            "errors": list(self.errors),
            "recommended": self.recommended,
            "complete": self.complete,
            "outcome": self.outcome,
        }
        if self.files is not None:
            data["files"] = dict(self.files)
        return data

    def review_report(self) -> ReviewReport:
        """The plan a migration reads from this report (as ``migrate --report`` reads its file)."""
        where = (self.files or {}).get("json") or f"the annual report of {self.year}"
        return ReviewReport.from_json(self.to_json(), where)


def annual_markdown(report: AnnualReport) -> str:
    """The annual report as Markdown (reports/annual-<year>.md and the run's artifact)."""
    lines = [f"# Annual base-image update {report.year}", "", f"Sources: {report.sources}", ""]
    for image in report.images:
        lines += [f"## {image.image} (`{image.current}`)", ""]
        if (u := image.ubuntu) is not None:
            lines.append(
                f"- Ubuntu {u.current}: standard support until {u.end_of_standard_support} "
                f"({u.days_left} days); next LTS {u.next_lts or '-'}, published for CUDA "
                f"{u.target_cuda}: {u.next_lts_on_target or 'not yet'}"
            )
        if (c := image.cuda_path) is not None:
            lines.append(f"- CUDA {c.current} -> newest on the major the fleet runs: {c.newest_on_major}")
            if c.next_major:
                lines.append(
                    f"- next major {c.next_major}: "
                    + (f"{c.blocked}; to unblock: {c.unblock}" if c.blocked else "possible")
                )
        if (p := image.python) is not None:
            lines.append(
                f"- Python with torch wheels for {p.variant}: newest {p.newest_with_torch or 'none'} "
                f"(torch {p.torch or '-'}; all: {', '.join(p.all) or '-'})"
            )
        for ref, platforms in image.platforms.items():
            lines.append(f"- platforms of `{ref}`: {', '.join(platforms) or 'unknown'}")
        if image.recommended:
            lines.append(f"- **upgrade due**: `{image.current}` -> `{image.target}`")
        lines += [f"  - {r}" for r in image.reasons] + [""]
    if report.ngc_vs_cuda:
        lines += ["## NGC PyTorch or plain CUDA for the training image", ""]
        lines += ["| option | reference | compressed | CUDA | PyTorch | platforms | support |", "|---" * 7 + "|"]
        for row in report.ngc_vs_cuda:
            lines.append(
                f"| {row.option} | `{row.reference}` | {row.compressed_mb} MB | {row.cuda} | "
                f"{row.pytorch} | {', '.join(row.platforms)} | {row.support} |"
            )
        lines.append("")
    if report.errors:
        lines += ["## Not checked", "", *[f"- {e}" for e in report.errors], ""]
    lines += ["## Plan", "", report.outcome, ""]
    if report.recommended and report.files:
        lines.append(f"Apply it with `baseimage migrate --report {report.files['json']}`.")
    return "\n".join(lines) + "\n"
