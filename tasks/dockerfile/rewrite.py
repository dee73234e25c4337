"""Rewrite a base image by exact substring: the FROM text, or the ARG default it comes from.

Nothing else in the file changes: comments, continuations, ``# escape=``, CRLF and other
stages stay byte for byte. A rewrite to the same image returns the text unchanged.
"""

from __future__ import annotations

import re

from tasks.dockerfile.parser import (
    BaseImage,
    Dockerfile,
    Literal,
    VarRef,
    parse_dockerfile,
    template,
)
from tasks.errors import DockerfileError
from tasks.images.reference import ImageReference, parse_reference


def new_image_text(base: BaseImage, new: ImageReference) -> str:
    """The image text `base` should name after the change, in the form the file already uses.

    Only the tag and digest change: ``nvidia/cuda:12.6.0-…`` stays short,
    ``docker.io/nvidia/cuda:…`` keeps its registry.
    """
    if base.image is None or base.reference is None:
        raise DockerfileError(f"{base.location}: cannot rewrite a skipped FROM ({base.skip_reason})")
    old = base.reference
    if (old.registry, old.repository) != (new.registry, new.repository):
        raise DockerfileError(
            f"{base.location}: refusing to change repository {old.name} to {new.name}; "
            "only the tag or digest of a base image is rewritten"
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


def _solve(parts: list[Literal | VarRef], target: str) -> dict[str, str] | None:
    """Values for the template's variables that make it expand to `target`, or None."""
    pattern = ""
    groups: dict[str, str] = {}
    for part in parts:
        if isinstance(part, Literal):
            pattern += re.escape(part.text)
        elif part.name in groups:
            pattern += f"(?P={groups[part.name]})"
        elif part.op is None:
            groups[part.name] = f"v{len(groups)}"
            pattern += f"(?P<{groups[part.name]}>.+?)"
        else:
            return None
    match = re.fullmatch(pattern, target)
    if match is None:
        return None
    return {name: match[group] for name, group in groups.items()}


def rewrite_base(dockerfile: Dockerfile, base: BaseImage, new: ImageReference) -> str:
    """Return the Dockerfile text with `base` pointing at `new`; raises DockerfileError."""
    target = new_image_text(base, new)
    if target == base.image:
        return dockerfile.text
    parts = template(base.raw, dockerfile.escape)
    edits: list[tuple[int, int, str]] = []
    if not any(isinstance(p, VarRef) for p in parts):
        if base.raw_span is None:
            raise DockerfileError(f"{base.location}: the image reference is split across lines; edit it by hand")
        edits.append((*base.raw_span, target))
    else:
        edits.extend(_arg_edits(dockerfile, base, parts, target))
    text = dockerfile.text
    for start, end, value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    _verify(dockerfile, base, text, target)
    return text


def _arg_edits(
    dockerfile: Dockerfile, base: BaseImage, parts: list[Literal | VarRef], target: str
) -> list[tuple[int, int, str]]:
    solved = _solve(parts, target)
    if solved is None:
        raise DockerfileError(
            f"{base.location}: {target!r} cannot be written through the template {base.raw!r}; "
            "change the FROM line by hand"
        )
    current = dockerfile.arg_values()
    edits = []
    for name, value in solved.items():
        if value == current.get(name):
            continue
        arg = dockerfile.args[name]
        if name in dockerfile.build_args:
            raise DockerfileError(
                f"{base.location}: ARG {name} is set by --build-arg; change it where the build "
                "is invoked, not in the Dockerfile"
            )
        if arg.span is None:
            raise DockerfileError(
                f"{dockerfile.path}:{arg.line}: ARG {name} has no default to rewrite (or it is split across lines)"
            )
        edits.append((*arg.span, value))
    return edits


def _verify(dockerfile: Dockerfile, base: BaseImage, text: str, target: str) -> None:
    """Re-parse the result: the FROM must now name `target` and nothing else may have moved."""
    after = parse_dockerfile(text, dockerfile.path, dockerfile.build_args)
    if len(after.bases) != len(dockerfile.bases) or after.bases[base.stage].image != target:
        raise DockerfileError(f"{base.location}: rewrite did not produce {target!r}; file left as is")
    parse_reference(target)
