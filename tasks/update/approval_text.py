"""What a reviewer sees above the approval form (Prefect renders the pause's description as
Markdown): the plan in one table (each image's current -> target, index, torch/torchvision, CuPy,
ONNX Runtime and why), the diff summary and where to read the change (the PR, or the branch),
and for production the validation counts, the soak verdict with its coverage and chart, and the
staging image's ID and digest."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.monitoring.soak_report import SoakReport
from tasks.update.apply import ApplyResult
from tasks.update.plan import ImageChange, MigrationPlan
from tasks.validation import ValidationReport


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(reference: str) -> str:
    return reference.rsplit(":", 1)[-1] if ":" in reference.rsplit("/", 1)[-1] else reference


def _why(change: ImageChange, reasons: Sequence[str]) -> str:
    mine = [
        r
        for r in reasons
        if r.startswith(f"{change.image}:")
        or change.dockerfile in r
        or (change.requirements is not None and change.requirements in r)
    ]
    picked = mine or [r for r in reasons if ":" not in r.split(" ", 1)[0]][:1]
    return "; ".join(r.removeprefix(f"{change.image}: ") for r in picked[:3]) or "-"


def plan_table(plan: MigrationPlan) -> str:
    lines = [
        "| image | current → target | index | torch / torchvision | CuPy | ONNX Runtime | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for change in plan.changes:
        c = change.changes
        pins = change.dockerfile_pins
        torch = " / ".join(v for v in (c.torch, c.torchvision) if v) or "unchanged"
        cupy_package, cupy_version = c.cupy_package or pins.cupy_package, c.cupy_version or pins.cupy_version
        cupy = f"{cupy_package} {cupy_version}" if cupy_package and cupy_version else "unchanged"
        ort = c.onnxruntime_gpu or pins.onnxruntime_gpu or "unchanged"
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    change.image,
                    f"`{_short(change.current)}` → `{_short(change.target)}`",
                    c.variant or "unchanged",
                    torch,
                    cupy,
                    ort,
                    _why(change, plan.reasons),
                )
            )
            + " |"
        )
    return "\n".join(lines)


def diff_summary(numstat: Sequence[tuple[str, str, str]]) -> str:
    """``4 files changed, +12 -10``, then each file with its counts."""
    if not numstat:
        return "no file changes"
    added = sum(int(a) for a, _r, _p in numstat if a.isdigit())
    removed = sum(int(r) for _a, r, _p in numstat if r.isdigit())
    files = ", ".join(f"`{path}` (+{a} -{r})" for a, r, path in numstat)
    return f"{len(numstat)} files changed, +{added} -{removed}: {files}"


def update_description(
    plan: MigrationPlan, result: ApplyResult, pull_request: str | None, base: str, diff: str, limit: int = 6000
) -> str:
    where = (
        f"[the pull request]({pull_request})"
        if pull_request
        else f"the local branch `{result.branch}` (`git diff {base}...{result.branch}`)"
    )
    already = " The branch already held this change; nothing new was committed." if result.already_applied else ""
    shown = diff if len(diff) <= limit else diff[:limit] + "\n… (the rest is in the branch)"
    return "\n\n".join(
        [
            "## Approve the update?",
            f"Branch `{result.branch}`: read the change in {where}.{already}",
            plan_table(plan),
            *(["**Not in this plan**:\n" + "\n".join(f"- {w}" for w in plan.warnings)] if plan.warnings else []),
            f"**Diff**: {diff_summary(result.numstat)}",
            f"```diff\n{shown}\n```",
        ]
    )


def production_description(
    plan: MigrationPlan,
    validation: ValidationReport,
    image: str,
    image_id: str | None,
    digest: str | None,
    soak: SoakReport,
    soak_run_link: str | None,
) -> str:
    chart = ""
    if soak.chart:
        where = f" ([the soak run's artifacts]({soak_run_link}))" if soak_run_link else ""
        chart = f"- chart: `{soak.chart}`{where}\n"
    coverage = soak.coverage_line()
    reasons = "".join(f"- {r}\n" for r in soak.reasons)
    return "\n\n".join(
        [
            "## Approve production?",
            f"**{validation.line()}**",
            plan_table(plan),
            f"Staging runs `{image}`: image `{image_id or '?'}`, digest `{digest or 'none (built here)'}`.",
            f"### Staging soak: **{soak.status}**\n\n{reasons}- {coverage}; store `{soak.store}`\n{chart}",
        ]
    )


def pull_request_body(plan: MigrationPlan) -> str:
    """The migration pull request's description: the plan, why, and what is left to do."""
    return (
        "## Plan\n\n"
        + plan.summary()
        + "\n\n## Why\n\n"
        + "\n".join(f"- {r}" for r in plan.reasons)
        + "\n\n## Remaining checklist\n\n- [ ] approval (update)\n- [ ] validation on the GPU pool\n"
        "- [ ] approval (production)\n- [ ] staging, soak, production\n"
    )
