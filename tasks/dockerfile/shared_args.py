"""A rewrite's edits and the other FROMs they reach: an ARG that feeds several FROMs moves them
all, so the rewrite checks which FROMs moved where they are not meant to go (`moved_elsewhere`),
says which ARG is shared (`conflict_message`), or gives this FROM an ARG of its own
(`split_args`, ``--split-arg``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tasks.dockerfile.parser import BaseImage, Dockerfile, FromSource
from tasks.dockerfile.shellword import walk_vars
from tasks.errors import DockerfileError
from tasks.images.reference import ImageReference


@dataclass(frozen=True)
class Edit:
    """One replacement in the Dockerfile's text."""

    start: int
    end: int
    text: str
    decl: int | None  # the ARG declaration it changes (None: the FROM line)
    kind: str  # "value" or "text"


def apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, value in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + value + text[end:]
    return text


def moved_elsewhere(
    before: Dockerfile, after: Dockerfile, base: BaseImage, target: str, planned: Mapping[int, ImageReference]
) -> list[tuple[BaseImage, BaseImage]]:
    """Other FROMs the edit moved where they are not meant to go."""
    moved = []
    for old, new in zip(before.bases, after.bases, strict=True):
        if old.stage == base.stage or (old.image, old.skip_reason) == (new.image, new.skip_reason):
            continue
        if old.stage in planned and new.reference == planned[old.stage]:
            continue
        if old.reference is not None and old.reference == base.reference and new.image == target:
            continue  # the same image, moving to the same target: the same change
        moved.append((old, new))
    return moved


def conflict_message(
    df: Dockerfile, base: BaseImage, edits: list[Edit], conflicts: list[tuple[BaseImage, BaseImage]]
) -> str:
    changed = {e.decl for e in edits if e.decl is not None}
    lines = []
    for old, new in conflicts:
        shared = sorted(df.decls[d].name for d in changed & df.sources[old.stage].deps) or sorted(
            df.decls[d].name for d in changed
        )
        lines.append(
            f"ARG {', '.join(shared)} also feeds {old.location} (FROM {old.raw}), which would change from "
            f"{old.image or old.raw!r} to {new.image or new.raw!r}"
        )
    return (
        f"{base.location}: " + "; ".join(lines) + ". Plan that FROM too, or split the ARG so this FROM "
        "gets its own (split_arg / --split-arg)"
    )


def split_args(
    df: Dockerfile,
    base: BaseImage,
    source: FromSource,
    edits: list[Edit],
    conflicts: list[tuple[BaseImage, BaseImage]],
) -> str:
    """The edits, with each shared ARG replaced for this FROM by a new global ARG of its own."""
    shared = {e.decl for e in edits if e.decl is not None}
    shared &= set().union(*(df.sources[old.stage].deps for old, _new in conflicts))
    changes = [(e.start, e.end, e.text) for e in edits if e.decl not in shared]
    taken = set(df.arg_names) | set(df.env)
    assert source.parts is not None
    for decl_index in sorted(shared):
        decl = df.decls[decl_index]
        edit = next(e for e in edits if e.decl == decl_index)
        if edit.kind != "value":
            raise DockerfileError(
                f"{base.location}: cannot give this FROM its own ARG: the text to change is inside ARG "
                f"{decl.name}'s default ({df.path}:{decl.line}), which other FROMs use; change it by hand"
            )
        refs = [v for v in walk_vars(source.parts) if v.name == decl.name and df.provider(v.name) == decl_index]
        if not refs:
            raise DockerfileError(
                f"{base.location}: cannot give this FROM its own ARG {decl.name}: the FROM reaches it through "
                "another ARG's default; change it by hand"
            )
        name = _fresh_name(decl.name, base, taken)
        taken.add(name)
        at = decl.instruction.end_offset
        ending = "\r\n" if df.text[max(0, at - 2) : at] == "\r\n" else "\n"
        prefix = "" if at == 0 or df.text[at - 1] == "\n" else ending
        changes.append((at, at, f"{prefix}ARG {name}={edit.text}{ending}"))
        for ref in refs:
            span = source.instruction.physical_span(ref.name_start, ref.name_end)
            if span is None:
                raise DockerfileError(f"{base.location}: the FROM is split across lines; change it by hand")
            changes.append((*span, name))
    return apply_edits(df.text, changes)


def _fresh_name(name: str, base: BaseImage, taken: set[str]) -> str:
    suffix = re.sub(r"[^A-Za-z0-9_]", "_", base.alias).upper() if base.alias else f"STAGE{base.stage}"
    candidate = f"{name}_{suffix}"
    number = 2
    while candidate in taken:
        candidate = f"{name}_{suffix}_{number}"
        number += 1
    return candidate
