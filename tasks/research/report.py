"""Review outputs people read, rendered from the typed `Review` (tasks/research/assembly.py):
Markdown (the report, and the findings placed in the policy document), JSON, and the
compatibility matrix as plain rows (the table artifact, the CSV file; `matrix_frame` turns a
report file's matrix into a pandas DataFrame for analysis)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.files import write_atomic
from tasks.research.assembly import Review
from tasks.statuses import PlanAction


def md_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "_none_"
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        text = "" if value is None else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def findings_markdown(review: Review) -> str:
    rows = [
        {
            "image": i.image,
            "current": i.reference,
            "status": str(i.status or PlanAction.ERROR),
            "target": i.target,
            "recommended": "yes" if i.recommended else "no",
            "why": "; ".join(i.reasons[:3]),
        }
        for i in review.images
    ]
    if review.recommended:
        verdict = "migration recommended" + ("" if review.complete else " (incomplete: see the errors)")
    else:  # an image it could not research may be due: never "no action needed"
        verdict = "no action needed" if review.complete else "incomplete: no action found among what was reviewed"
    lines = [
        f"Review of {review.date} ({review.sources}): **{verdict}**.",
        "",
    ]
    for finding in [*review.findings, *review.conflicts]:
        lines.append(f"- {finding}")
    if review.findings or review.conflicts:
        lines.append("")
    lines.append(md_table(rows))
    if review.advisories:
        advisories = [dataclasses.asdict(a) for a in review.advisories]
        lines += [
            "",
            "Security advisories:",
            "",
            md_table(advisories, ["id", "package", "version", "severity", "fixed", "summary"]),
        ]
    return "\n".join(lines)


MATRIX_COLUMNS = (
    "image",
    "cuda",
    "status",
    "estimated_deletion",
    "min_driver",
    "fleet_ok",
    "torch_variant",
    "torch",
    "torchvision",
    "cupy",
    "onnxruntime_gpu",
    "ubuntu_end_of_support",
)


def matrix_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The matrix as CSV, written with the standard library: pandas' import (0.4 s) would cost every
    review more than its whole registry work (`matrix_frame` gives a DataFrame for analysis)."""
    out = io.StringIO()
    columns = list(rows[0]) if rows else list(MATRIX_COLUMNS)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return out.getvalue()


def matrix_frame(report: dict[str, Any]) -> Any:
    """A review report's matrix as a pandas DataFrame, for analysis in a notebook or a script."""
    import pandas as pd

    return pd.DataFrame(report.get("matrix") or [], columns=list(MATRIX_COLUMNS))


def matrix_markdown(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "_no CUDA images reviewed_"
    return md_table(rows, MATRIX_COLUMNS)


def update_policy_doc(path: Path, review: Review) -> tuple[bool, list[str]]:
    """The review's findings in the policy document (see tasks.update.policy_doc): whether the file
    changed, and what could not be placed. A document without a findings section is a warning."""
    from tasks.update.policy_doc import update_findings

    before = path.read_text(encoding="utf-8")
    update = update_findings(before, findings_markdown(review), str(path))
    if update.text != before:
        write_atomic(path, update.text)
    return update.text != before, update.warnings


def write_reports(out_dir: Path, review: Review) -> dict[str, str]:
    """The review's Markdown, JSON and matrix CSV, each written atomically; returns their paths."""
    stem = out_dir / f"review-{review.date}"
    rows = review.matrix
    markdown = "\n".join(
        [
            f"# Quarterly base-image review, {review.date}",
            "",
            findings_markdown(review),
            "",
            "## Compatibility matrix",
            "",
            matrix_markdown(rows),
            "",
            "## Reasons",
            "",
        ]
        + [f"- **{i.image}** ({i.dockerfile}:{i.line}): " + "; ".join(i.reasons + i.errors) for i in review.images]
    )
    write_atomic(stem.with_suffix(".md"), markdown + "\n")
    write_atomic(stem.with_suffix(".json"), json.dumps(review.to_json(), indent=2, default=str) + "\n")
    write_atomic(Path(f"{stem}-matrix.csv"), matrix_csv(rows))
    return {
        "markdown": str(stem.with_suffix(".md")),
        "json": str(stem.with_suffix(".json")),
        "csv": f"{stem}-matrix.csv",
    }
