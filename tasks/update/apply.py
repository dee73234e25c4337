"""Apply a migration plan to a git repository as one commit on ``baseimage/cuda-<target>``:
Dockerfile base references (the FROM or the ARG default, nothing else), requirements, a backup of
each replaced Dockerfile named after the old tag, a CHANGELOG.md entry and the policy document's
changelog row. Writes are atomic; a second run changes nothing; a dry run only returns the diff;
uncommitted changes in managed files are refused."""

from __future__ import annotations

import difflib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from tasks.dockerfile.parser import parse_dockerfile
from tasks.dockerfile.rewrite import rewrite_base, solve_args
from tasks.errors import DirtyTreeError, EmptyPlanError, PlanMismatchError
from tasks.files import write_atomic
from tasks.images.reference import parse_reference
from tasks.images.tags import CudaTag, NgcTag
from tasks.secrets import Redactor
from tasks.update import git
from tasks.update.changelog import proposed_changelog
from tasks.update.coupled import dockerfile_changes, edit_stack, read_stack
from tasks.update.pip_lines import read_run_pins
from tasks.update.pip_rewrite import rewrite_pip_lines
from tasks.update.plan import POLICY_DOC, ImageChange, MigrationPlan
from tasks.update.policy_doc import Moved, migration_doc
from tasks.update.requirements import CurrentPins, HashSource


@dataclass
class ApplyResult:
    branch: str
    diff: str  # against `base`: what the branch changes, also when it already held the change
    files: list[str] = field(default_factory=list)
    commit: str | None = None
    already_applied: bool = False  # the branch already held exactly this change: no new commit
    base: str | None = None  # the commit the change was planned on
    build_args: dict[str, dict[str, str]] = field(default_factory=dict)  # per Dockerfile, after the change
    warnings: list[str] = field(default_factory=list)  # what could not be placed (policy document sections)
    notes: list[str] = field(default_factory=list)  # what the rewrite did that a reviewer must know (ranges, hashes)
    numstat: list[tuple[str, str, str]] = field(default_factory=list)  # (added, removed, path) per file


def backup_name(dockerfile: Path, old_tag: str, exists: Callable[[str], bool] = lambda _rel: False) -> Path:
    """``Dockerfile.cuda126.bak`` for 12.6.x, ``Dockerfile.ngc.ngc2504.bak`` for NGC 25.04; a file
    already named after the tag (``Dockerfile.cuda126``) is not named twice, unless the file it
    would then collide with exists (``Dockerfile``, whose own backup for 12.6 has that name):
    then ``Dockerfile.cuda126.cuda126.bak``."""
    cuda = CudaTag.try_parse(old_tag)
    if cuda:
        label = f"cuda{cuda.version[0]}{cuda.version[1]}"
    else:
        ngc = NgcTag.try_parse(old_tag)
        label = f"ngc{ngc.release.replace('.', '')}" if ngc else "previous"
    if dockerfile.name.endswith(f".{label}"):
        sibling = dockerfile.with_name(dockerfile.name.removesuffix(f".{label}"))
        if not exists(sibling.as_posix()):
            return dockerfile.with_name(f"{dockerfile.name}.bak")
    return dockerfile.with_name(f"{dockerfile.name}.{label}.bak")


def _checkpoint(name: str) -> None:
    """Tests kill the process here (``BASEIMAGE_TEST_KILL_AT=<name>``) to prove that a kill at any
    point of the update leaves the checkout as it was; nothing else sets this variable."""
    if os.environ.get("BASEIMAGE_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


Reader = Callable[[str], str | None]


def _rewrite_dockerfile(
    rel: str, old: str, change: ImageChange, strict: bool, config_edits: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """The Dockerfile text with `change` applied, and the build args the image then builds with.
    `strict`: the FROM must name `change.current` (else the plan is stale); otherwise a FROM that
    already names the target counts as done."""
    build_args = dict(change.build_args)
    parsed = parse_dockerfile(old, rel, build_args)
    current, target = parse_reference(change.current), parse_reference(change.target)
    bases = [b for b in parsed.bases if b.reference == current]
    if not bases:
        at_target = [b for b in parsed.bases if b.reference == target]
        if at_target and not strict:
            return old, build_args
        found = ", ".join(f"line {b.line}: {b.image or b.raw}" for b in parsed.bases) or "no FROM"
        if at_target:
            raise PlanMismatchError(
                f"{rel}: the plan moves {change.current} to {change.target}, but the FROM already names "
                f"{change.target} ({found}): the plan is stale; run a fresh review (baseimage review) or migrate again"
            )
        raise PlanMismatchError(
            f"{rel}: the plan expects a FROM naming {change.current}, found {found}"
            + (f" (with build args {build_args})" if build_args else "")
            + "; the plan is stale or for another Dockerfile: run a fresh review or fix images[].dockerfile"
        )
    new = old
    planned = {b.stage: target for b in bases}
    for base in bases:
        solved = solve_args(parse_dockerfile(new, rel, build_args), base, target)
        for name, value in solved.items():
            if name in build_args and value != build_args[name]:  # set where the build is invoked
                config_edits[name] = value
                build_args[name] = value
        again = parse_dockerfile(new, rel, build_args)
        new = rewrite_base(again, again.bases[base.stage], target, planned=planned)
    return new, build_args


def planned_files(
    read: Reader | Path,
    plan: MigrationPlan,
    today: date,
    *,
    strict: bool = True,
    build_args: dict[str, dict[str, str]] | None = None,
    warnings: list[str] | None = None,
    hashes: HashSource | None = None,
    notes: list[str] | None = None,
) -> dict[str, tuple[str | None, str]]:
    """Relative path -> (old text or None, new text) for every file the plan changes, reading the
    repository through `read` (a path reads the working tree). With `strict`, a plan whose FROM is
    not in the files (stale, or for another Dockerfile) raises PlanMismatchError. `build_args`, when
    given, receives each Dockerfile's build args after the change; `warnings`, what could not be
    placed in the policy document (a section it lacks); `notes`, what the stack rewrite did that a
    reviewer must know (a range moved, hashes refreshed or removed). `hashes` is asked for the
    ``--hash`` values of a changed pin (None: they are removed, said in the notes)."""
    if isinstance(read, Path):
        root = read

        def read(rel: str) -> str | None:
            path = root / rel
            return path.read_bytes().decode("utf-8", "surrogateescape") if path.exists() else None

    assert callable(read)
    reader: Reader = read
    out: dict[str, tuple[str | None, str]] = {}
    config_edits: dict[str, dict[str, str]] = {}

    found_notes: list[str] = []
    backups: dict[str, str] = {}  # backup file -> the Dockerfile whose old text it keeps

    def current(rel: str) -> str | None:
        return out[rel][1] if rel in out else reader(rel)

    for change in plan.changes:
        old = current(change.dockerfile)
        if old is None:
            raise PlanMismatchError(f"{change.dockerfile}: managed Dockerfile is missing from the repository")
        edits: dict[str, str] = {}
        new, args_after = _rewrite_dockerfile(change.dockerfile, old, change, strict, edits)
        pip_changes = dockerfile_changes(change.changes, change.dockerfile_pins, read_run_pins(new, args_after))
        if not pip_changes.empty:
            pip = rewrite_pip_lines(new, change.dockerfile, pip_changes, args_after)
            new = pip.text
            found_notes.extend(pip.notes)
            for name, value in pip.build_args.items():  # an ARG the pip lines use, set where the build is invoked
                edits[name] = value
                args_after[name] = value
        if build_args is not None:
            build_args[change.dockerfile] = args_after
        if edits:
            config_edits.setdefault(change.image, {}).update(edits)
        if new != old:
            first = out[change.dockerfile][0] if change.dockerfile in out else reader(change.dockerfile)
            out[change.dockerfile] = (first, new)
            backup = backup_name(
                Path(change.dockerfile), parse_reference(change.current).tag or "", lambda rel: reader(rel) is not None
            ).as_posix()
            owner = backups.setdefault(backup, change.dockerfile)
            if owner != change.dockerfile:  # never one backup for two files: the second old text would be lost
                raise PlanMismatchError(
                    f"{change.dockerfile} and {owner} would both be backed up to {backup}; rename one of them"
                )
            if backup not in out:
                out[backup] = (reader(backup), old)
        stack = edit_stack(current, change.requirements, change.pyproject, change.changes, hashes)
        found_notes.extend(n for n in stack.notes if n not in found_notes)
        for rel, new_text in stack.files.items():
            out[rel] = (out[rel][0] if rel in out else reader(rel), new_text)
    for bump in plan.consumers.bumps:
        from tasks.update.consumer_pins import rewrite_pin

        before = out[bump.file][1] if bump.file in out else reader(bump.file)
        if before is None:
            raise PlanMismatchError(f"{bump.file}: the pin file of consumer {bump.consumer} is missing")
        after = rewrite_pin(before, bump.file, bump, bump.dockerfile)
        if after != before:
            out[bump.file] = (reader(bump.file), after)
    if config_edits:
        if plan.config is None:
            raise PlanMismatchError(
                f"an ARG that the FROM or the pip lines of {', '.join(config_edits)} use comes from "
                "images[].build_args, and the policy file is outside the repository: change build_args there by hand"
            )
        text = out[plan.config][1] if plan.config in out else reader(plan.config)
        if text is None:
            raise PlanMismatchError(f"{plan.config}: policy file is missing from the repository")
        new_config = text
        for image, values in config_edits.items():
            for name, value in values.items():
                new_config = set_build_arg(new_config, plan.config, image, name, value)
        out[plan.config] = (reader(plan.config), new_config)
    if notes is not None:
        notes.extend(found_notes)
    if not out:
        return out
    out["CHANGELOG.md"] = (reader("CHANGELOG.md"), proposed_changelog(reader("CHANGELOG.md"), plan, today, found_notes))
    doc = reader(POLICY_DOC)
    if doc is not None:
        moved = []
        for change in plan.changes:
            was, now = _stack_pins(reader, change), _stack_pins(current, change)
            moved.append(
                Moved(
                    change.current,
                    change.target,
                    was.pins,
                    now.pins,
                    was.index_variant,
                    now.index_variant,
                    change.dockerfile,
                    ranges_after=now.ranges,
                )
            )
        reason = plan.reasons[0].split(": ", 1)[-1] if plan.reasons else "requested"
        update = migration_doc(doc, POLICY_DOC, plan.branch, reason, moved, today.isoformat())
        if warnings is not None:
            warnings.extend(update.warnings)
        out[POLICY_DOC] = (doc, update.text)
    return {k: v for k, v in out.items() if v[0] != v[1]}


def _stack_pins(read: Reader, change: ImageChange) -> CurrentPins:
    """What the image's stack files (requirements with their includes, pyproject.toml, the
    Dockerfile's pip lines) pin, as `read` gives them."""
    pins = CurrentPins()
    if change.requirements and read(change.requirements) is not None:
        pins = read_stack(read, change.requirements, change.pyproject).pins
    dockerfile = read(change.dockerfile)
    if dockerfile is not None:
        pins = pins.merged(read_run_pins(dockerfile, dict(change.build_args)))
    return pins


def set_build_arg(text: str, label: str, image: str, name: str, value: str) -> str:
    """`images[name=image].build_args.<name>` of a policy file set to `value` by exact substring
    (comments, quoting and layout kept); the result is re-read to prove it."""
    tree = yaml.compose(text)
    node = None
    if isinstance(tree, yaml.MappingNode):
        images = next((v for k, v in tree.value if k.value == "images"), None)
        for item in images.value if isinstance(images, yaml.SequenceNode) else []:
            if not isinstance(item, yaml.MappingNode):
                continue
            fields = {k.value: v for k, v in item.value}
            if getattr(fields.get("name"), "value", None) == image and isinstance(
                fields.get("build_args"), yaml.MappingNode
            ):
                node = next((v for k, v in fields["build_args"].value if k.value == name), None)
    if not isinstance(node, yaml.ScalarNode):
        raise PlanMismatchError(f"{label}: no images[{image}].build_args.{name} to change")
    start, end = node.start_mark.index, node.end_mark.index
    style = node.style
    quoted = f"{style}{value}{style}" if style in ("'", '"') else json.dumps(value) if not _plain_ok(value) else value
    new = text[:start] + quoted + text[end:]
    reread = yaml.safe_load(new)
    values = [i.get("build_args", {}).get(name) for i in reread.get("images", []) if i.get("name") == image]
    if values != [value]:
        raise PlanMismatchError(f"{label}: could not set images[{image}].build_args.{name} to {value!r}")
    return new


def _plain_ok(value: str) -> bool:
    """Whether `value` reads back as the same string when written as a plain YAML scalar."""
    try:
        return yaml.safe_load(value) == value and "#" not in value and ": " not in value
    except yaml.YAMLError:
        return False


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


def managed_paths(plan: MigrationPlan) -> list[str]:
    return sorted(
        {c.dockerfile for c in plan.changes}
        | {c.requirements for c in plan.changes if c.requirements}
        | {b.file for b in plan.consumers.bumps}
        | {"CHANGELOG.md", POLICY_DOC}
        | ({plan.config} if plan.config else set())
    )


def apply_plan(
    repo: Path,
    plan: MigrationPlan,
    *,
    dry_run: bool = False,
    today: date | None = None,
    hashes: HashSource | None = None,
) -> ApplyResult:
    """Make the plan's change on its branch and commit it once; see the module docstring.

    The plan is checked against the checked-out commit (a stale plan or one that changes nothing
    raises before anything is written); the files are written and committed in a temporary
    worktree and the branch ref is moved last, so the user's checkout is never touched and a
    kill at any point leaves no branch change or the complete commit. `hashes` gives the
    ``--hash`` values of changed pins (see planned_files). The diff has credentials in URLs
    redacted."""
    today = today or date.today()
    git.clean_leftovers(repo)
    base = git.head(repo)
    args: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    review_notes: list[str] = []
    files = planned_files(
        lambda rel: git.show(repo, base, rel),
        plan,
        today,
        build_args=args,
        warnings=notes,
        hashes=hashes,
        notes=review_notes,
    )
    dirty = git.dirty(repo, sorted(set(managed_paths(plan)) - {plan.config} | set(files)))
    if dirty:
        raise DirtyTreeError(
            f"{repo}: uncommitted changes in managed files: {', '.join(dirty)}; commit or stash "
            "them first, so the migration commit holds only the migration"
        )
    if not files:
        raise EmptyPlanError(
            "the plan changes nothing in "
            + ", ".join(sorted({c.dockerfile for c in plan.changes}))
            + ": nothing to migrate"
        )
    shown = Redactor()
    result = ApplyResult(
        plan.branch,
        shown.redact(unified_diff(files)),
        sorted(files),
        base=base,
        build_args=args,
        warnings=notes,
        notes=shown.lines(review_notes),
    )
    if dry_run:
        return result
    old_tip = git.rev(repo, f"refs/heads/{plan.branch}")
    parent = old_tip if old_tip and git.is_ancestor(repo, base, old_tip) else base
    with git.worktree(repo, parent) as tree:
        _checkpoint("worktree")
        on_parent = planned_files(tree, plan, today, strict=parent == base, hashes=hashes)
        for number, (rel, (_old, new)) in enumerate(sorted(on_parent.items())):
            write_atomic(tree / rel, new)
            if number == 0:
                _checkpoint("write")
        if on_parent:
            git.git(tree, "add", "--", *on_parent)
        if not git.git(tree, "status", "--porcelain").strip():
            result.already_applied = True
            result.commit = parent
            if parent != old_tip:
                git.update_ref(repo, plan.branch, parent, old_tip)
        else:
            message = f"baseimage: migrate to {plan.branch.split('/', 1)[1]}\n\n{plan.summary()}\n"
            if plan.reasons:
                message += "\nWhy:\n" + "".join(f"- {r}\n" for r in plan.reasons)
            if result.notes:
                message += "\nNotes:\n" + "".join(f"- {n}\n" for n in result.notes)
            result.commit = git.commit(tree, shown.redact(message))
            _checkpoint("commit")
            git.update_ref(repo, plan.branch, result.commit, old_tip)
            _checkpoint("ref")
    result.diff = shown.redact(git.git(repo, "diff", base, str(result.commit)))
    result.files = sorted(git.git(repo, "diff", "--name-only", base, str(result.commit)).split())
    stats = git.git(repo, "diff", "--numstat", base, str(result.commit)).splitlines()
    result.numstat = [(a, r, p) for a, r, p in (line.split("\t", 2) for line in stats if line.count("\t") >= 2)]
    return result
