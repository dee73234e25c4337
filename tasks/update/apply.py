"""Apply a migration plan to a git repository as one commit on ``baseimage/cuda-<target>``:
Dockerfile base references (the FROM or the ARG default, nothing else), requirements, a backup of
each replaced Dockerfile named after the old tag, a CHANGELOG.md entry and the policy document's
changelog row. Writes are atomic; a second run changes nothing; a dry run only returns the diff;
uncommitted changes in managed files are refused."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from tasks.dockerfile.parser import parse_dockerfile
from tasks.dockerfile.rewrite import rewrite_base
from tasks.errors import BaseImageError
from tasks.images.reference import parse_reference
from tasks.images.tags import CudaTag, NgcTag
from tasks.research.report import replace_between_markers, write_atomic
from tasks.update import git
from tasks.update.requirements import RequirementChanges, rewrite_requirements

CHANGELOG_HEAD = (
    "# Changelog\n\nAll notable changes to the base images are recorded here "
    "([Keep a Changelog](https://keepachangelog.com/en/1.1.0/)).\n\n## [Unreleased]\n"
)
POLICY_DOC = "docs/base-image-policy.md"


class DirtyTreeError(BaseImageError):
    """Managed files have uncommitted changes; applying would mix them into the migration."""


@dataclass(frozen=True)
class ImageChange:
    image: str
    dockerfile: str  # relative to the repository
    current: str
    target: str
    requirements: str | None = None
    changes: RequirementChanges = field(default_factory=RequirementChanges)
    # The `RUN pip install` pins of the Dockerfile the plan decided (CuPy, onnxruntime-gpu); recorded
    # here for the Dockerfile rewrite, which does not apply them yet.
    dockerfile_pins: RequirementChanges = field(default_factory=RequirementChanges)


@dataclass(frozen=True)
class MigrationPlan:
    changes: tuple[ImageChange, ...]
    reasons: tuple[str, ...] = ()
    matrix_markdown: str | None = None  # the review's compatibility matrix, when the plan came from one

    @property
    def branch(self) -> str:
        tags = [parse_reference(c.target).tag or "" for c in self.changes]
        cuda = [t for t in (CudaTag.try_parse(x) for x in tags) if t]
        if cuda:
            return f"baseimage/cuda-{max(cuda, key=lambda t: t.version).version_str}"
        ngc = [t for t in (NgcTag.try_parse(x) for x in tags) if t]
        return f"baseimage/ngc-{max(ngc, key=lambda t: t.sort_key).release}" if ngc else "baseimage/update"

    def summary(self) -> str:
        lines = [f"- {c.image}: {c.current} -> {c.target}" for c in self.changes]
        return "\n".join(lines)


@dataclass
class ApplyResult:
    branch: str
    diff: str
    files: list[str] = field(default_factory=list)
    commit: str | None = None
    already_applied: bool = False


def backup_name(dockerfile: Path, old_tag: str) -> Path:
    """``Dockerfile.cuda126.bak`` for 12.6.x, ``Dockerfile.ngc.ngc2504.bak`` for NGC 25.04."""
    cuda = CudaTag.try_parse(old_tag)
    if cuda:
        label = f"cuda{cuda.version[0]}{cuda.version[1]}"
    else:
        ngc = NgcTag.try_parse(old_tag)
        label = f"ngc{ngc.release.replace('.', '')}" if ngc else "previous"
    return dockerfile.with_name(f"{dockerfile.name}.{label}.bak")


def _changelog_line(change: ImageChange) -> str:
    extra = []
    if change.changes.torch:
        extra.append(f"torch {change.changes.torch}")
    if change.changes.torchvision:
        extra.append(f"torchvision {change.changes.torchvision}")
    if change.changes.cupy_package:
        extra.append(f"{change.changes.cupy_package} {change.changes.cupy_version}")
    if change.changes.onnxruntime_gpu:
        extra.append(f"onnxruntime-gpu {change.changes.onnxruntime_gpu}")
    tail = f" ({', '.join(extra)})" if extra else ""
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


def _changelog(text: str | None, plan: MigrationPlan, today: date) -> str:
    text = _with_unreleased(text)
    lines = [_changelog_line(c) for c in plan.changes if _changelog_line(c) not in text]
    if not lines:
        return text
    return _under_unreleased(text, f"### Changed ({today.isoformat()}, {plan.branch})\n" + "".join(lines))


def _policy_changelog(text: str, plan: MigrationPlan, today: date) -> str:
    marker = "## Changelog\n"
    if marker not in text:
        return text
    entry = (
        f"\n### {today.isoformat()} - {plan.branch}\n"
        + "".join(f"- **From**: `{c.current}`\n- **To**: `{c.target}`\n" for c in plan.changes)
        + "- **Status**: proposed (awaiting approval and validation)\n"
    )
    if entry in text:
        return text
    head, rest = text.split(marker, 1)
    return f"{head}{marker}{entry}{rest}"


def _configuration(files: dict[str, str], plan: MigrationPlan, today: date) -> str:
    """The "Current Configuration" section from data: each managed image's base and its pins."""
    from tasks.research.osv import parse_pins

    lines = [
        f"As of {today.isoformat()} (branch `{plan.branch}`):",
        "",
        "| image | Dockerfile | base image | pins |",
        "|---|---|---|---|",
    ]
    for change in plan.changes:
        pins = ""
        if change.requirements and change.requirements in files:
            pins = ", ".join(f"{p.name}=={p.version}" for p in parse_pins(files[change.requirements]))
        lines.append(f"| {change.image} | `{change.dockerfile}` | `{change.target}` | {pins} |")
    return "\n".join(lines)


def planned_files(repo: Path, plan: MigrationPlan, today: date) -> dict[str, tuple[str | None, str]]:
    """Relative path -> (old text or None, new text) for every file the plan changes."""
    out: dict[str, tuple[str | None, str]] = {}

    def read(rel: str) -> str | None:
        path = repo / rel
        return path.read_bytes().decode("utf-8", "surrogateescape") if path.exists() else None

    for change in plan.changes:
        old = out[change.dockerfile][1] if change.dockerfile in out else read(change.dockerfile)
        if old is None:
            raise BaseImageError(f"{repo / change.dockerfile}: managed Dockerfile is missing")
        parsed = parse_dockerfile(old, change.dockerfile)
        current, target = parse_reference(change.current), parse_reference(change.target)
        bases = [b for b in parsed.bases if b.reference == current]
        new = old
        for base in bases:
            new = rewrite_base(parse_dockerfile(new, change.dockerfile), base, target)
        if new != old:
            out[change.dockerfile] = (read(change.dockerfile), new)
            backup = backup_name(Path(change.dockerfile), current.tag or "")
            out[str(backup)] = (read(str(backup)), old)
        if change.requirements:
            before = out[change.requirements][1] if change.requirements in out else read(change.requirements)
            if before is not None:
                after = rewrite_requirements(before, change.changes)
                if after != before:
                    out[change.requirements] = (read(change.requirements), after)
    if not out:
        return out
    out["CHANGELOG.md"] = (read("CHANGELOG.md"), _changelog(read("CHANGELOG.md"), plan, today))
    doc = read(POLICY_DOC)
    if doc is not None:
        new_doc = _policy_changelog(doc, plan, today)
        if "<!-- baseimage:configuration:start -->" in new_doc:
            texts = {rel: new for rel, (_old, new) in out.items()}
            for change in plan.changes:
                if change.requirements and change.requirements not in texts:
                    texts[change.requirements] = read(change.requirements) or ""
            section = _configuration(texts, plan, today)
            new_doc = replace_between_markers(new_doc, "configuration", section, Path(POLICY_DOC))
        if plan.matrix_markdown and "<!-- baseimage:matrix:start -->" in new_doc:
            new_doc = replace_between_markers(new_doc, "matrix", plan.matrix_markdown, Path(POLICY_DOC))
        out[POLICY_DOC] = (doc, new_doc)
    return {k: v for k, v in out.items() if v[0] != v[1]}


def unified_diff(files: dict[str, tuple[str | None, str]]) -> str:
    chunks: list[str] = []
    for rel, (old, new) in sorted(files.items()):
        chunks.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{rel}" if old is not None else "/dev/null",
                tofile=f"b/{rel}",
            )
        )
    return "".join(chunks)


def apply_plan(repo: Path, plan: MigrationPlan, *, dry_run: bool = False, today: date | None = None) -> ApplyResult:
    """Make the plan's change on its branch and commit it once; see the module docstring."""
    today = today or date.today()
    managed = sorted(
        {c.dockerfile for c in plan.changes}
        | {c.requirements for c in plan.changes if c.requirements}
        | {"CHANGELOG.md", POLICY_DOC}
    )
    dirty = git.dirty(repo, managed)
    if dirty:
        raise DirtyTreeError(
            f"{repo}: uncommitted changes in managed files: {', '.join(dirty)}; commit or stash "
            "them first, so the migration commit holds only the migration"
        )
    result = ApplyResult(plan.branch, "")
    if dry_run:
        files = planned_files(repo, plan, today)
        result.diff, result.files = unified_diff(files), sorted(files)
        return result
    start = git.git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    if git.branch_exists(repo, plan.branch):
        git.git(repo, "checkout", "-q", plan.branch)
    else:
        git.git(repo, "checkout", "-q", "-b", plan.branch)
    try:
        files = planned_files(repo, plan, today)
        result.diff, result.files = unified_diff(files), sorted(files)
        if not files:
            result.already_applied = True
            return result
        for rel, (_old, new) in files.items():
            write_atomic(repo / rel, new)
        git.git(repo, "add", "--", *files)
        message = f"baseimage: migrate to {plan.branch.split('/', 1)[1]}\n\n{plan.summary()}\n"
        if plan.reasons:
            message += "\nWhy:\n" + "".join(f"- {r}\n" for r in plan.reasons)
        result.commit = git.commit_as_baseimage(repo, message)
    except BaseException:
        git.git(repo, "checkout", "-q", "--", ".", check=False)
        raise
    finally:
        git.git(repo, "checkout", "-q", start, check=False)
    return result


def release_changelog(text: str | None, plan: MigrationPlan, today: date, note: str) -> str:
    """Move the plan's block out of ``[Unreleased]`` into a release section with a Deployed line."""
    text = _changelog(text, plan, today)
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
    proposed = "- **Status**: proposed (awaiting approval and validation)\n"
    header = f" - {plan.branch}\n"
    at = text.find(header)
    if at < 0:
        return text
    status = text.find(proposed, at)
    following = text.find("\n### ", at + len(header))
    if status < 0 or (0 <= following < status):
        return text
    return text[:status] + f"- **Status**: {note}\n" + text[status + len(proposed) :]


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
