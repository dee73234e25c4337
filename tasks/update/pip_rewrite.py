"""The Python stack of a Dockerfile rewritten by exact edits (read by tasks/update/pip_lines.py).

Each value the plan changes is edited where its changed characters come from: the RUN line, or
the ``ARG``/``ENV`` default it expands (so ``ARG TORCH_CUDA=cu126`` becomes ``cu129``), or, for an
ARG set by ``images[].build_args``, that value (returned for the policy file). The result is
re-read: every value must read as planned, every other pin and every FROM as before; anything that
cannot be edited in one place is refused with a message naming the line."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from tasks.update.pip_lines import PACKAGE_NAME, SHOWN, Occurrence, Seg, Word, scan
from tasks.update.requirements import RequirementChanges, RequirementsError
from tasks.update.specs import SpecifierError, clauses, is_pin, pin_or_range, url_variant, with_variant


@dataclass(frozen=True)
class PipEdit:
    """The Dockerfile's new text, the build args it now needs changed, and notes for the plan."""

    text: str
    build_args: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Planned:
    requests: list[tuple[int, int, str]]  # (start, end, new text) in the occurrence's word
    expected: tuple[str, str | None, str]  # how the occurrence must read after the rewrite
    note: str | None = None


def _plan(occ: Occurrence, changes: RequirementChanges, where: str) -> _Planned:
    """What the plan changes in one occurrence, and how it must read afterwards."""
    same = _Planned([], (occ.kind, occ.name, occ.text))
    if occ.kind == "index":
        if not changes.variant:
            return same
        new = with_variant(occ.text, changes.variant, changes.index_base)
        span = url_variant(occ.text)
        if new == occ.text or span is None:
            return same
        moved_url: tuple[str, str | None, str] = ("index", None, new)
        if new[: span[0]] == occ.text[: span[0]]:
            return _Planned([(occ.start + span[0], occ.start + span[1], changes.variant)], moved_url)
        return _Planned([(occ.start, occ.end, new)], moved_url)
    wanted = changes.target(occ.name or "")
    if wanted is None:
        return same
    package, version = wanted
    requests = []
    if package != occ.name:
        name = PACKAGE_NAME.match(occ.word.text)
        assert name is not None
        requests.append((name.start(), name.end(), package))
    old = occ.text
    if occ.start == occ.end:  # no version asked: only a CuPy package renames
        return _Planned(requests, ("pin", package, old))
    try:
        moved = pin_or_range(old, version, changes.variant)
    except SpecifierError as exc:
        raise RequirementsError(f"{where}: {occ.name}{old}: {exc}") from exc
    expected = ("pin", package, moved.text)
    if not moved.changed:
        kept = f"{where}: {occ.name}{old} already admits {version} (the plan's choice): kept"
        note = None if is_pin(old) or package != occ.name else kept
        return _Planned(requests, expected, note)
    if not is_pin(old):
        note = (
            f"{where}: {occ.name}{old} -> {package}{moved.text}: the range moved only as far as needed "
            f"to admit {version} (the plan's choice)"
        )
        return _Planned([*requests, (occ.start, occ.end, moved.text)], expected, note)
    # A pin: the public version and the local part separately, as each may come from an ARG.
    was, now = clauses(old)[0], clauses(moved.text)[0]
    public_old, _, local_old = was.version.partition("+")
    public_new, _, local_new = now.version.partition("+")
    base = occ.start + was.start
    requests.append((base, base + len(public_old), public_new))
    if local_old and local_new != local_old:
        at = base + len(public_old) + 1
        requests.append((at, at + len(local_old), local_new))
    return _Planned(requests, expected)


def _resolve(word: Word, start: int, end: int, new: str, where: str) -> tuple[str, int, int, str]:
    """The one place where word[start:end] becomes `new`: ("file", start, end, text) in the
    Dockerfile, or ("build-arg", 0, 0, "NAME=value")."""
    old = word.text[start:end]
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    a, b = start + prefix, end - suffix
    replacement = new[prefix : len(new) - suffix]
    pos = 0
    blocked: Seg | None = None
    for seg in word.segs:
        seg_end = pos + len(seg.text)
        if pos <= a and b <= seg_end and (seg.text or a == b):
            if seg.source.span is not None:
                return "file", seg.source.span[0] + a - pos, seg.source.span[0] + b - pos, replacement
            if seg.source.build_arg is not None:
                value = seg.text[: a - pos] + replacement + seg.text[b - pos :]
                return "build-arg", 0, 0, f"{seg.source.build_arg}={value}"
            blocked = blocked or seg
        pos = seg_end
    if blocked is not None:
        raise RequirementsError(
            SHOWN.redact(
                f"{where}: the text to change ({blocked.text!r}) {blocked.source.why}; change the pip line by hand"
            )
        )
    raise RequirementsError(
        SHOWN.redact(
            f"{where}: in {word.text!r} the part to change ({old!r} -> {new!r}) spans several ARG/ENV values "
            "and the line's own text; change it by hand"
        )
    )


def rewrite_pip_lines(
    text: str, label: str, changes: RequirementChanges, build_args: Mapping[str, str] | None = None
) -> PipEdit:
    """`text` with the plan's index variant and pins applied to its pip installs (see the module
    docstring); raises RequirementsError naming the line when a value cannot be edited in place."""
    args = dict(build_args or {})
    before = scan(text, args)
    file_edits: dict[tuple[int, int], str] = {}
    arg_edits: dict[str, str] = {}
    expected: list[tuple[str, str | None, str]] = []
    notes: list[str] = []
    for occ in before.occurrences:
        where = f"{label}:{occ.line}"
        planned = _plan(occ, changes, where)
        expected.append(planned.expected)
        if planned.note and planned.note not in notes:
            notes.append(planned.note)
        for start, end, value in planned.requests:
            kind, a, b, replacement = _resolve(occ.word, start, end, value, where)
            if kind == "file":
                if file_edits.get((a, b), replacement) != replacement:
                    raise RequirementsError(f"{where}: two planned values need different text at one place")
                file_edits[(a, b)] = replacement
                continue
            name, _, arg_value = replacement.partition("=")
            if arg_edits.get(name, arg_value) != arg_value:
                raise RequirementsError(f"{where}: build arg {name} would need two different values")
            arg_edits[name] = arg_value
    spans = sorted(file_edits)
    for (_a, b), (c, _d) in itertools.pairwise(spans):
        if c < b:
            raise RequirementsError(f"{label}: planned edits overlap at offset {c}; change the pip lines by hand")
    new = text
    for (a, b), value in sorted(file_edits.items(), reverse=True):
        new = new[:a] + value + new[b:]
    _verify(text, new, label, args, {**args, **arg_edits}, expected)
    return PipEdit(new, arg_edits, tuple(notes))


def _verify(
    old: str,
    new: str,
    label: str,
    args_before: dict[str, str],
    args_after: dict[str, str],
    expected: list[tuple[str, str | None, str]],
) -> None:
    """Re-read: every value reads as planned, and no FROM moved."""
    from tasks.dockerfile.parser import parse_dockerfile

    after = scan(new, args_after).occurrences
    found = [(o.kind, o.name, o.text) for o in after]
    if found != expected:
        wrong = [
            f"line {o.line}: {o.text!r}" for o, e in zip(after, expected, strict=False) if (o.kind, o.name, o.text) != e
        ]
        what = SHOWN.redact(", ".join(wrong) or "values added or lost")
        raise RequirementsError(
            f"{label}: the pip lines did not read as planned after the rewrite ({what}); file left as is"
        )
    bases = [b.image for b in parse_dockerfile(old, label, args_before).bases]
    if [b.image for b in parse_dockerfile(new, label, args_after).bases] != bases:
        raise RequirementsError(
            f"{label}: an ARG the pip lines use also feeds a FROM, which the change would move; "
            "give the pip lines their own ARG"
        )
