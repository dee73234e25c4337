"""Review outputs people read: Markdown (report and the policy document's generated sections),
JSON, and the compatibility matrix as a pandas DataFrame and CSV."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.errors import DockerfileError
from tasks.files import write_atomic
from tasks.research.drivers import branch_finding
from tasks.research.facts import Facts, load_facts
from tasks.research.settle import settle_requirements

MARKERS = ("findings", "matrix")


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
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The review report and its compatibility matrix as a DataFrame. Images that share a
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
    frame = matrix_frame(images)
    report["matrix"] = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return report, frame


def matrix_frame(images: Sequence[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for image in images:
        plan = image.get("plan") or {}
        for row in plan.get("matrix") or []:
            rows.append({"image": image["image"], **row})
    return pd.DataFrame(rows)


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


def matrix_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no CUDA images reviewed_"
    keep = [
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
    ]
    records = frame[keep].astype(object).where(pd.notna(frame[keep]), None).to_dict(orient="records")
    return md_table([{str(k): v for k, v in row.items()} for row in records])


def replace_between_markers(text: str, name: str, content: str, path: Path) -> str:
    start, end = f"<!-- baseimage:{name}:start -->", f"<!-- baseimage:{name}:end -->"
    if start not in text or end not in text:
        raise DockerfileError(
            f"{path}: markers {start} ... {end} are missing; add them where the generated {name} section belongs"
        )
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    note = "<!-- generated by baseimage review; edits here are overwritten -->"
    return f"{head}{start}\n{note}\n{content}\n{end}{tail}"


def update_policy_doc(path: Path, report: dict[str, Any], frame: pd.DataFrame) -> bool:
    """Regenerate the findings and matrix sections; True when the file changed."""
    before = path.read_text(encoding="utf-8")
    after = replace_between_markers(before, "findings", findings_markdown(report), path)
    after = replace_between_markers(after, "matrix", matrix_markdown(frame), path)
    if after != before:
        write_atomic(path, after)
    return after != before


def write_reports(out_dir: Path, report: dict[str, Any], frame: pd.DataFrame) -> dict[str, str]:
    stem = out_dir / f"review-{report['date']}"
    markdown = "\n".join(
        [
            f"# Quarterly base-image review, {report['date']}",
            "",
            findings_markdown(report),
            "",
            "## Compatibility matrix",
            "",
            matrix_markdown(frame),
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
    write_atomic(Path(f"{stem}-matrix.csv"), frame.to_csv(index=False))
    return {
        "markdown": str(stem.with_suffix(".md")),
        "json": str(stem.with_suffix(".json")),
        "csv": f"{stem}-matrix.csv",
    }
