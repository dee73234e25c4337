"""Review outputs people read: Markdown (the report, and the findings placed in the policy
document), JSON, and the compatibility matrix as plain rows (the table artifact, the CSV file;
`matrix_frame` turns a report's matrix into a pandas DataFrame for analysis)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from tasks.files import write_atomic
from tasks.research.drivers import branch_finding
from tasks.research.facts import Facts, load_facts
from tasks.research.settle import settle_requirements

REPORT_SCHEMA = 1  # the version of the review and annual reports on disk (tasks/research/report_model.py)


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


def assemble(
    images: list[dict[str, Any]],
    advisories: dict[str, list[dict[str, Any]]],
    requirements_of: dict[str, str | None],
    sources: str,
    fleet_min_driver: int,
    day: str,
    facts: Facts | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The review report and its compatibility matrix rows. Images that share a
    requirements file get one plan for it (or a conflict naming them); an advisory the chosen
    stack fixes becomes a pin bump; the fleet's driver branch lifecycle is a finding."""
    facts = facts or load_facts()
    conflicts = settle_requirements(images, advisories, requirements_of, facts)
    findings = []
    branch = branch_finding(fleet_min_driver, facts, date.fromisoformat(day))
    if branch:
        findings.append(branch)
    findings += [f"{i['image']}: {i['reasons'][0]}" for i in images if i.get("urgent") and i["reasons"]]
    findings += [
        f"{i['image']}: a change is due but blocked: {'; '.join(i['plan']['blocking'])}"
        for i in images
        if i.get("plan") and i["plan"].get("due") and i["plan"].get("blocking")
    ]
    every = {(a["id"], a["package"], a["version"]): a for found in advisories.values() for a in found}
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,  # tasks/research/report_model.py reads it
        "date": day,
        "sources": sources,
        "fleet_min_driver": fleet_min_driver,
        "findings": findings,
        "conflicts": conflicts,
        "images": sorted(images, key=lambda i: not i.get("urgent")),
        "advisories": list(every.values()),
        "recommended": any(i["recommended"] for i in images),
        "complete": not any(i["errors"] for i in images),
    }
    rows = matrix_rows(images)
    report["matrix"] = rows
    return report, rows


def matrix_rows(images: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per CUDA release on each image's track (the compatibility matrix)."""
    return [
        {"image": image["image"], **row} for image in images for row in (image.get("plan") or {}).get("matrix") or []
    ]


def findings_markdown(report: dict[str, Any]) -> str:
    rows = [
        {
            "image": i["image"],
            "current": i["current"],
            "status": i["status"],
            "target": i["target"],
            "recommended": "yes" if i["recommended"] else "no",
            "why": "; ".join(i["reasons"][:3]),
        }
        for i in report["images"]
    ]
    lines = [
        f"Review of {report['date']} ({report['sources']}): "
        f"**{'migration recommended' if report['recommended'] else 'no action needed'}**.",
        "",
    ]
    for finding in [*report.get("findings", []), *report.get("conflicts", [])]:
        lines.append(f"- {finding}")
    if report.get("findings") or report.get("conflicts"):
        lines.append("")
    lines.append(md_table(rows))
    if report["advisories"]:
        lines += [
            "",
            "Security advisories:",
            "",
            md_table(report["advisories"], ["id", "package", "version", "severity", "fixed", "summary"]),
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


def update_policy_doc(path: Path, report: dict[str, Any]) -> tuple[bool, list[str]]:
    """The review's findings in the policy document (see tasks.update.policy_doc): whether the file
    changed, and what could not be placed. A document without a findings section is a warning."""
    from tasks.update.policy_doc import update_findings

    before = path.read_text(encoding="utf-8")
    update = update_findings(before, findings_markdown(report), str(path))
    if update.text != before:
        write_atomic(path, update.text)
    return update.text != before, update.warnings


def write_reports(out_dir: Path, report: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    stem = out_dir / f"review-{report['date']}"
    markdown = "\n".join(
        [
            f"# Quarterly base-image review, {report['date']}",
            "",
            findings_markdown(report),
            "",
            "## Compatibility matrix",
            "",
            matrix_markdown(rows),
            "",
            "## Reasons",
            "",
        ]
        + [
            f"- **{i['image']}** ({i['file']}:{i['line']}): " + "; ".join(i["reasons"] + i["errors"])
            for i in report["images"]
        ]
    )
    write_atomic(stem.with_suffix(".md"), markdown + "\n")
    write_atomic(stem.with_suffix(".json"), json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(Path(f"{stem}-matrix.csv"), matrix_csv(rows))
    return {
        "markdown": str(stem.with_suffix(".md")),
        "json": str(stem.with_suffix(".json")),
        "csv": f"{stem}-matrix.csv",
    }
