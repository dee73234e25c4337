"""CHANGELOG.md and the policy document's changelog row through a migration's life: proposed
under ``[Unreleased]`` with the update, moved into a release section once production runs it,
and a "Rolled back" entry when it is reverted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from tasks.update.plan import POLICY_DOC, ImageChange, MigrationPlan
from tasks.update.policy_doc import set_changelog_status
from tasks.update.requirements import RequirementChanges

CHANGELOG_HEAD = (
    "# Changelog\n\nAll notable changes to the base images are recorded here "
    "([Keep a Changelog](https://keepachangelog.com/en/1.1.0/)).\n\n## [Unreleased]\n"
)


def _pins(changes: RequirementChanges) -> list[str]:
    extra = []
    if changes.torch:
        extra.append(f"torch {changes.torch}")
    if changes.torchvision:
        extra.append(f"torchvision {changes.torchvision}")
    if changes.cupy_package:
        extra.append(f"{changes.cupy_package} {changes.cupy_version}")
    if changes.onnxruntime_gpu:
        extra.append(f"onnxruntime-gpu {changes.onnxruntime_gpu}")
    return extra


def _changelog_line(change: ImageChange) -> str:
    """The base's move and every pin the plan moves with it, saying in which file (the stack's
    requirements file, the Dockerfile's own ``RUN pip install`` lines)."""
    parts = []
    if pins := _pins(change.changes):
        parts.append(", ".join(pins) + (f" in `{change.requirements}`" if change.requirements else ""))
    if pins := _pins(change.dockerfile_pins):
        parts.append(", ".join(pins) + " in its RUN pip install lines")
    tail = f" ({'; '.join(parts)})" if parts else ""
    return f"- {change.image}: base image `{change.current}` -> `{change.target}` in `{change.dockerfile}`{tail}\n"


def _with_unreleased(text: str | None) -> str:
    """The changelog (a new one when there is none) with an ``[Unreleased]`` section."""
    text = text if text else CHANGELOG_HEAD
    if "## [Unreleased]" not in text:
        text = text.rstrip("\n") + "\n\n## [Unreleased]\n"
    return text


def _under_unreleased(text: str, block: str) -> str:
    """`block` as the first entry of the ``[Unreleased]`` section of `text` (which has one)."""
    head, rest = text.split("## [Unreleased]\n", 1)
    tail = f"\n{rest.lstrip(chr(10))}" if rest.strip() else ""
    return f"{head}## [Unreleased]\n{block}{tail}"


def proposed_changelog(
    text: str | None, plan: MigrationPlan, today: date, notes: tuple[str, ...] | list[str] = ()
) -> str:
    text = _with_unreleased(text)
    lines = [_changelog_line(c) for c in plan.changes if _changelog_line(c) not in text]
    lines += [f"- {b.line()}\n" for b in plan.consumers.bumps if f"- {b.line()}\n" not in text]
    if not lines:
        return text
    lines += [f"- {note}\n" for note in notes]
    return _under_unreleased(text, f"### Changed ({today.isoformat()}, {plan.branch})\n" + "".join(lines))


def release_changelog(text: str | None, plan: MigrationPlan, today: date, note: str) -> str:
    """Move the plan's block out of ``[Unreleased]`` into a release section with a Deployed line."""
    text = proposed_changelog(text, plan, today)
    name = plan.branch.split("/", 1)[1]
    heading = f"## [{name}] - {today.isoformat()}\n"
    if heading in text:
        return text
    head, rest = text.split("## [Unreleased]\n", 1)
    nxt = rest.find("\n## [")
    unreleased, later = (rest, "") if nxt < 0 else (rest[: nxt + 1], rest[nxt + 1 :])
    marker = f", {plan.branch})\n"
    start = unreleased.find("### Changed (")
    while start >= 0 and not unreleased[start:].split("\n", 1)[0].endswith(marker.rstrip("\n")):
        start = unreleased.find("### Changed (", start + 1)
    if start >= 0:
        end = unreleased.find("\n### ", start + 1)
        end = len(unreleased) if end < 0 else end + 1
        changed = [line for line in unreleased[start:end].splitlines()[1:] if line.strip()]
        unreleased = unreleased[:start] + unreleased[end:]
    else:
        changed = [_changelog_line(c).rstrip("\n") for c in plan.changes]
    section = heading + "### Changed\n" + "\n".join(changed) + f"\n### Deployed\n- {note}\n"
    unreleased = unreleased.rstrip("\n") + "\n\n" if unreleased.strip() else "\n"
    return f"{head}## [Unreleased]\n{unreleased}{section}" + (f"\n{later}" if later else "")


def release_policy_row(text: str, plan: MigrationPlan, note: str) -> str:
    """The policy document's changelog entry for the plan's branch: status proposed -> deployed."""
    return set_changelog_status(text, f" - {plan.branch}", note)


def release_files(
    read: Callable[[str], str | None], plan: MigrationPlan, today: date, note: str
) -> dict[str, tuple[str | None, str]]:
    """CHANGELOG.md and the policy document (as `read` gives them from the branch) once the plan
    reached production."""
    out: dict[str, tuple[str | None, str]] = {}
    old = read("CHANGELOG.md")
    out["CHANGELOG.md"] = (old, release_changelog(old, plan, today, note))
    doc = read(POLICY_DOC)
    if doc is not None:
        out[POLICY_DOC] = (doc, release_policy_row(doc, plan, note))
    return {k: v for k, v in out.items() if v[0] != v[1]}


def rollback_changelog(text: str | None, branch: str, reason: str, today: date) -> str:
    """A "Rolled back" entry under ``[Unreleased]`` (once per branch)."""
    text = _with_unreleased(text)
    if f"- `{branch}`: " in text and "### Rolled back" in text:
        return text
    first = reason.splitlines()[0] if reason else "rolled back"
    return _under_unreleased(text, f"### Rolled back ({today.isoformat()})\n- `{branch}`: {first}\n")
