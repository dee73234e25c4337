"""Incidents: a rollback or a break-glass deploy is written up as a GitHub issue (when a
repository and token are configured) or a local Markdown report, once per id. The body links to
the evidence files and quotes only redacted log lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tasks.deploy.rollback_record import CodeRevert, EnvironmentRestore
from tasks.files import write_atomic
from tasks.secrets import Redactor
from tasks.update.github import GitHub

TAIL_LINES = 20


def incident_body(
    reason: str, rows: Sequence[EnvironmentRestore], code: CodeRevert, evidence: Path, redactor: Redactor
) -> str:
    lines = [f"## What failed\n\n{redactor.redact(reason)}\n", "## Environments\n"]
    for row in rows:
        lines.append(
            f"- **{row.environment}**: {row.action}; from {row.from_image} to "
            f"{row.to or '-'}; health {row.health or 'NOT OK'}"
        )
        if row.error:
            lines.append(f"  - error: {redactor.redact(row.error)}")
        if row.logs:
            lines.append(f"  - logs: `{row.logs}`")
    lines.append(f"\n## Code\n\n{code.action}\n")
    lines.append(f"## Evidence\n\nKept in `{evidence}` (the full logs, one file per environment and run).\n")
    for row in rows:
        tail = list(row.log_tail)
        if tail:
            quoted = redactor.lines(tail[-TAIL_LINES:])
            lines.append(f"### {row.environment} logs (last {len(quoted)} lines, redacted)\n\n```\n")
            lines[-1] += "\n".join(quoted) + "\n```\n"
    return "\n".join(lines)


def open_incident(
    state_dir: Path,
    incident_id: str,
    title: str,
    body: str,
    github: GitHub | None,
    known: str | None = None,
    labels: Sequence[str] = ("baseimage", "rollback"),
) -> str:
    """The issue's URL, or the local report's path; `known` (from an earlier run) is kept."""
    if known:
        return known
    if github is not None:
        issue = github.open_issue(title, body, list(labels))
        return str(issue.get("html_url") or issue.get("url"))
    path = state_dir / "incidents" / f"{incident_id}.md"
    if not path.exists():
        write_atomic(path, f"# {title}\n\n{body}")
    return str(path)
