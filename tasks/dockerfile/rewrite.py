"""Rewrite a base image by exact substring: the FROM text, or the ARG default(s) it comes from.

Nothing else in the file changes: comments, continuations, ``# escape=``, CRLF and other
stages stay byte for byte. A rewrite to the same image returns the text unchanged.

When the FROM is written through ARGs, the template is solved for the new image. The FROM's
text is flattened, through every ARG default that itself uses ARGs
(``ARG BASE_TAG=${CUDA}-${FLAVOR}-${OS}``), into template text and the values of the innermost
ARGs; those values are the unknowns. Every solution that keeps the template text is found and
ranked: first by how many changed values lose the shape of the old ones (``12.6`` -> ``12.9``
keeps it, ``12`` does not), then by how many ARGs change. The best is taken when it is the
only one with its rank; a tie is refused with a message naming the ARGs and the candidates. Only when no solution keeps
the template text is a single piece of template text edited (the innermost one that holds the
whole change, e.g. ``FROM ${REGISTRY}/nvidia/cuda:12.6.3-...``), and only when neither suffices
do ARG values and one piece of text change together (``ARG CUDA=12.6`` with
``FROM nvidia/cuda:${CUDA}.0-...`` to 12.9.1), each keeping its shape, the fewest pieces.

The result is re-parsed: the FROM must name the target, and no other FROM may move unless it
names the same image and moves to the same target, or the caller plans it (`planned`). An ARG
that also feeds another FROM is refused, or, with ``split_arg=True``, given to this FROM as a
new ARG of its own. A digest-pinned FROM is not rewritten to a target without a digest unless
``allow_unpin=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tasks.dockerfile.parser import BaseImage, Dockerfile, FromSource, parse_dockerfile
from tasks.dockerfile.shared_args import Edit, apply_edits, conflict_message, moved_elsewhere, split_args
from tasks.dockerfile.shellword import Lit, Part, Value, Var, evaluate, variables
from tasks.errors import DockerfileError
from tasks.images.reference import ImageReference, parse_reference

SOLUTION_LIMIT = 512  # more ways than this to write the target is refused, not chosen among
SEARCH_BUDGET = 200_000
MAX_SEGMENTS = 200
SpanOf = Callable[[int, int], tuple[int, int] | None]


@dataclass(frozen=True)
class _Seg:
    """A piece of the FROM's expansion: an ARG's value (`kind` "value", solved for), template
    text ("text", kept when possible) or text that cannot be edited ("fixed")."""

    text: str
    kind: str
    key: int | None  # for a value: the ARG declaration it comes from
    span: tuple[int, int] | None  # file offsets to replace
    depth: int  # 0 for the FROM line, +1 per ARG default it sits in
    why: str | None = None  # why it cannot be edited
    owner: int | None = None  # the ARG declaration whose default holds template text


def new_image_text(base: BaseImage, new: ImageReference, *, allow_unpin: bool = False) -> str:
    """The image text `base` should name after the change, in the form the file already uses.

    Only the tag and digest change: ``nvidia/cuda:12.6.0-…`` stays short,
    ``docker.io/nvidia/cuda:…`` keeps its registry. A digest-pinned FROM keeps a pin: the
    target must carry its own digest (``ImageReference.with_tag(tag, digest=...)``) unless
    `allow_unpin`.
    """
    if base.image is None or base.reference is None:
        raise DockerfileError(f"{base.location}: cannot rewrite a skipped FROM ({base.skip_reason})")
    old = base.reference
    if (old.registry, old.repository) != (new.registry, new.repository):
        raise DockerfileError(
            f"{base.location}: refusing to change repository {old.name} to {new.name}; "
            "only the tag or digest of a base image is rewritten"
        )
    if old.digest and not new.digest and new != old and not allow_unpin:
        raise DockerfileError(
            f"{base.location}: the FROM is pinned by digest ({old.digest}) and the target {new} has none; "
            "rewriting it would drop the pin. Resolve the target's digest from the registry and pin it "
            "(tag@sha256:...), or allow dropping the pin explicitly"
        )
    name = base.image
    if old.digest:
        name = name[: -(len(old.digest) + 1)]
    if old.tag:
        name = name[: -(len(old.tag) + 1)]
    text = name
    if new.tag:
        text += f":{new.tag}"
    if new.digest:
        text += f"@{new.digest}"
    return text


def rewrite_base(
    dockerfile: Dockerfile,
    base: BaseImage,
    new: ImageReference,
    *,
    split_arg: bool = False,
    allow_unpin: bool = False,
    planned: Mapping[int, ImageReference] | None = None,
) -> str:
    """Return the Dockerfile text with `base` pointing at `new`; raises DockerfileError.

    `planned`: targets of other FROMs of this file (by stage index) rewritten in the same
    plan; an ARG shared with one of them may move it only to its planned target.
    `split_arg`: when an ARG this FROM needs changed also feeds another FROM, declare a new
    global ARG for this FROM instead of refusing. `allow_unpin`: rewrite a digest-pinned FROM
    to a target without a digest.
    """
    target = new_image_text(base, new, allow_unpin=allow_unpin)
    if target == base.image:
        return dockerfile.text
    source = dockerfile.sources[base.stage]
    if source.parts is None:
        raise DockerfileError(f"{base.location}: cannot rewrite a skipped FROM ({base.skip_reason})")
    segments = _flatten(dockerfile, source, source.parts)
    edits, refused = _plan(dockerfile, base, source.parts, segments, target)
    text = apply_edits(dockerfile.text, [(e.start, e.end, e.text) for e in edits])
    after = parse_dockerfile(text, dockerfile.path, dockerfile.build_args)
    _check_same_shape(dockerfile, base, after, target)
    conflicts = moved_elsewhere(dockerfile, after, base, target, planned or {})
    if conflicts:
        if refused is not None:  # an ARG and text changed together would move another FROM: refuse as before
            raise refused
        if not split_arg:
            raise DockerfileError(conflict_message(dockerfile, base, edits, conflicts))
        text = split_args(dockerfile, base, source, edits, conflicts)
        after = parse_dockerfile(text, dockerfile.path, dockerfile.build_args)
        _check_same_shape(dockerfile, base, after, target)
        left = moved_elsewhere(dockerfile, after, base, target, planned or {})
        if left:
            raise DockerfileError(conflict_message(dockerfile, base, edits, left))
    parse_reference(target)
    return text


def solve_args(dockerfile: Dockerfile, base: BaseImage, new: ImageReference) -> dict[str, str]:
    """The ARG values (by name) the chosen solution changes so that `base` names `new`, whether
    or not they can be edited in the Dockerfile: for an ARG set by ``--build-arg`` this is the
    value to give it where the build is invoked. Empty when no ARG values can spell the target."""
    target = new_image_text(base, new)
    source = dockerfile.sources[base.stage]
    if target == base.image or source.parts is None:
        return {}
    segments = _flatten(dockerfile, source, source.parts)
    solutions = _solutions(base, segments, target)
    if not solutions:
        return {}
    chosen = _choose(dockerfile, base, segments, solutions, variables(source.parts), target)
    return {dockerfile.decls[key].name: value for key, value in chosen.items()}


# ---------------------------------------------------------------- flattening


def _flatten(df: Dockerfile, source: FromSource, parts: tuple[Part, ...]) -> list[_Seg]:
    out: list[_Seg] = []
    _walk(df, parts, source.instruction.physical_span, None, None, 0, out)
    return out


def _walk(
    df: Dockerfile,
    parts: tuple[Part, ...],
    span_of: SpanOf,
    before: int | None,
    owner: int | None,
    depth: int,
    out: list[_Seg],
) -> None:
    """Append the segments `parts` expand to, in the scope of the ARGs before `before`."""
    env = df.env if before is None else _env_before(df, before)
    for part in parts:
        if isinstance(part, Lit):
            span = span_of(part.start, part.end) if part.exact else None
            why = None
            if span is None:
                why = "is split across lines" if part.exact else "is written with escape characters"
            out.append(_Seg(part.text, "text", None, span, depth, why, owner))
            continue
        provider = df.provider(part.name, before)
        value = env.get(part.name)
        is_set = value is not None
        empty = value is not None and value.text == ""
        if part.op in ("", "?") or (part.op == "-" and is_set and not (part.colon and empty)):
            _value(df, part, provider, depth, out)
        elif part.op == "-" or (part.op == "+" and is_set and not (part.colon and empty)):
            _walk(df, part.word, span_of, before, owner, depth, out)
        elif part.op == "+":
            continue
        else:
            text = evaluate((part,), env).text
            out.append(_Seg(text, "fixed", None, None, depth, f"is computed by ${{{part.name}{part.op}...}}", owner))


def _value(df: Dockerfile, var: Var, provider: int | None, depth: int, out: list[_Seg]) -> None:
    if provider is None:
        value = df.env.get(var.name)
        text = value.text if value is not None else ""
        out.append(_Seg(text, "fixed", None, None, depth, f"comes from {var.name}, which no ARG declaration sets"))
        return
    decl = df.decls[provider]
    assert decl.value is not None
    if decl.source == "build-arg":
        reason = f"ARG {decl.name} is set by --build-arg; change it where the build is invoked, not in the Dockerfile"
        out.append(_Seg(decl.value.text, "value", provider, None, depth + 1, reason))
        return
    parts = decl.parts or ()
    if decl.source == "default" and any(isinstance(p, Var) for p in parts):
        _walk(df, parts, decl.instruction.physical_span, provider, provider, depth + 1, out)
        return
    why: str | None = None
    if decl.span is None:
        why = (
            f"ARG {decl.name} at {df.path}:{decl.line} has a default that cannot be edited in place "
            "(split across lines, escaped or in several quoted pieces); change it by hand"
        )
    out.append(_Seg(decl.value.text, "value", provider, decl.span, depth + 1, why))


def _env_before(df: Dockerfile, before: int) -> dict[str, Value]:
    env: dict[str, Value] = {name: value for name, value in df.env.items() if value.origin is None}
    for decl in df.decls[:before]:
        if decl.source != "none" and decl.value is not None:
            env[decl.name] = decl.value
    return env


# ---------------------------------------------------------------- solving


def _plan(
    df: Dockerfile, base: BaseImage, parts: tuple[Part, ...], segs: list[_Seg], target: str
) -> tuple[list[Edit], DockerfileError | None]:
    """The edits that make the FROM spell `target`, and, for ARG values and text changed together
    (the last resort), the refusal to raise instead should they move another FROM."""
    if len(segs) > MAX_SEGMENTS:
        raise DockerfileError(f"{base.location}: the FROM's template has too many parts to solve; change it by hand")
    names = variables(parts)
    solutions = _solutions(base, segs, target)
    if solutions:
        chosen = _choose(df, base, segs, solutions, names, target)
        edits = []
        for key, value in chosen.items():
            seg = next(s for s in segs if s.key == key)
            if seg.why or seg.span is None:
                raise DockerfileError(f"{base.location}: {seg.why}")
            edits.append(Edit(*seg.span, value, key, "value"))
        return edits, None
    try:
        index, value = _single_edit(base, segs, target, names)
    except DockerfileError as refusal:
        together = _value_and_text(base, segs, target)
        if together is None:
            raise
        return together, refusal
    seg = segs[index]
    if seg.why or seg.span is None:
        where = "in the FROM line" if seg.owner is None else f"in ARG {df.decls[seg.owner].name}'s default"
        raise DockerfileError(
            f"{base.location}: the text to change ({seg.text!r}, {where}) {seg.why}; change the FROM line by hand"
        )
    return [Edit(*seg.span, value, seg.owner, "text")], None


def _solutions(base: BaseImage, segs: list[_Seg], target: str) -> list[dict[int, str]]:
    """Every assignment of the ARG values that makes the segments spell `target`."""
    found: list[dict[int, str]] = []
    assigned: dict[int, str] = {}
    steps = 0

    def search(i: int, pos: int) -> None:
        nonlocal steps
        steps += 1
        if steps > SEARCH_BUDGET:
            raise DockerfileError(
                f"{base.location}: {target!r} can be written through the template {base.raw!r} in too many "
                "ways to choose one; change the FROM line by hand"
            )
        if len(found) >= SOLUTION_LIMIT:
            return
        if i == len(segs):
            if pos == len(target):
                found.append(dict(assigned))
            return
        seg = segs[i]
        if seg.kind != "value" or seg.key is None:
            if target.startswith(seg.text, pos):
                search(i + 1, pos + len(seg.text))
            return
        if seg.key in assigned:
            known = assigned[seg.key]
            if target.startswith(known, pos):
                search(i + 1, pos + len(known))
            return
        anchor = _anchor(segs, i + 1)
        for end in range(pos, len(target) + 1):
            if anchor and not target.startswith(anchor, end):
                continue
            assigned[seg.key] = target[pos:end]
            search(i + 1, end)
            if len(found) >= SOLUTION_LIMIT:
                break
        assigned.pop(seg.key, None)

    search(0, 0)
    if len(found) >= SOLUTION_LIMIT:
        raise DockerfileError(
            f"{base.location}: {target!r} can be written through the template {base.raw!r} in too many "
            "ways to choose one; change the FROM line by hand"
        )
    return found


def _anchor(segs: list[_Seg], start: int) -> str:
    text = []
    for seg in segs[start:]:
        if seg.kind == "value":
            break
        text.append(seg.text)
    return "".join(text)


def _shape(text: str) -> str:
    """``12.6`` -> ``9.9``, ``ubuntu22.04`` -> ``a9.9``: what a value looks like."""
    return re.sub(r"[0-9]+", "9", re.sub(r"[A-Za-z]+", "a", text))


def _choose(
    df: Dockerfile,
    base: BaseImage,
    segs: list[_Seg],
    solutions: list[dict[int, str]],
    names: tuple[str, ...],
    target: str,
) -> dict[int, str]:
    old = {s.key: s.text for s in segs if s.kind == "value" and s.key is not None}

    def changed(solution: dict[int, str]) -> dict[int, str]:
        return {key: value for key, value in solution.items() if value != old[key]}

    def score(solution: dict[int, str]) -> tuple[int, int]:
        moved = changed(solution)
        reshaped = sum(1 for key, value in moved.items() if _shape(value) != _shape(old[key]))
        return reshaped, len(moved)

    ranked = sorted(solutions, key=score)
    best = [s for s in ranked if score(s) == score(ranked[0])]
    if len(best) == 1:
        return changed(best[0])
    ways = " or ".join(
        " and ".join(f"{df.decls[k].name}={v}" for k, v in sorted(changed(s).items())) or "no change" for s in best[:3]
    )
    raise DockerfileError(
        f"{base.location}: {target!r} can be written through the template {base.raw!r} in more than one "
        f"way (ARGs {', '.join(names)}: {ways}); set the ARGs by hand"
    )


def _value_and_text(base: BaseImage, segs: list[_Seg], target: str) -> list[Edit] | None:
    """ARG values and one piece of template text changed together, when neither alone spells
    `target` (``ARG CUDA=12.6`` and ``FROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04`` to 12.9.1:
    ``CUDA=12.9`` and ``.1-runtime-ubuntu22.04``). Taken only when every changed piece keeps its
    shape and one way changes the fewest pieces; None otherwise (the caller refuses)."""
    found: list[tuple[int, int, dict[int, str]]] = []
    for j, seg in enumerate(segs):
        if seg.kind != "text" or seg.span is None or seg.why:
            continue
        free = -1 - j  # the text's own unknown, beside the ARGs' (their declaration indexes)
        trial = [*segs[:j], _Seg(seg.text, "value", free, seg.span, seg.depth, None, seg.owner), *segs[j + 1 :]]
        try:
            solutions = _solutions(base, trial, target)
        except DockerfileError:  # too many ways with this text free: not this one
            continue
        old = {s.key: s.text for s in trial if s.kind == "value" and s.key is not None}
        by_key = {s.key: s for s in trial if s.kind == "value"}
        for solution in solutions:
            moved = {key: value for key, value in solution.items() if value != old[key]}
            if free not in moved or len(moved) < 2:  # the text alone, or the ARGs alone: tried before
                continue
            if any(_shape(value) != _shape(old[key]) for key, value in moved.items()):
                continue
            if any(by_key[key].why or by_key[key].span is None for key in moved):
                continue
            found.append((len(moved), j, moved))
    if not found:
        return None
    fewest = min(n for n, _j, _moved in found)
    best = [(j, moved) for n, j, moved in found if n == fewest]
    if len(best) != 1:
        return None
    j, moved = best[0]
    edits = []
    for key, value in moved.items():
        if key < 0:
            text = segs[j]
            assert text.span is not None
            edits.append(Edit(*text.span, value, text.owner, "text"))
        else:
            arg = next(s for s in segs if s.key == key)
            assert arg.span is not None
            edits.append(Edit(*arg.span, value, key, "value"))
    return edits


def _single_edit(base: BaseImage, segs: list[_Seg], target: str, names: tuple[str, ...]) -> tuple[int, str]:
    """The one segment whose change alone gives `target` (the innermost when several do)."""
    old = "".join(s.text for s in segs)
    bounds = [0]
    for seg in segs:
        bounds.append(bounds[-1] + len(seg.text))
    candidates = []
    for i, seg in enumerate(segs):
        if seg.kind == "value":
            continue
        prefix, suffix = old[: bounds[i]], old[bounds[i + 1] :]
        if len(prefix) + len(suffix) <= len(target) and target.startswith(prefix) and target.endswith(suffix):
            candidates.append((i, target[len(prefix) : len(target) - len(suffix)]))
    if candidates:
        deepest = max(segs[i].depth for i, _ in candidates)
        innermost = [c for c in candidates if segs[c[0]].depth == deepest]
        if len(innermost) == 1:
            return innermost[0]
    using = f" (ARGs {', '.join(names)})" if names else ""
    raise DockerfileError(
        f"{base.location}: {target!r} cannot be written through the template {base.raw!r}{using}; "
        "change the FROM line by hand"
    )


# ---------------------------------------------------------------- the re-parse check


def _check_same_shape(before: Dockerfile, base: BaseImage, after: Dockerfile, target: str) -> None:
    """Re-parse check: the FROM now names `target` and no FROM appeared or vanished."""
    if len(after.bases) != len(before.bases) or after.bases[base.stage].image != target:
        raise DockerfileError(f"{base.location}: rewrite did not produce {target!r}; file left as is")
