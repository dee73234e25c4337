"""Extract every FROM of a Dockerfile with file, line, ARG resolution and a skip reason.

Follows BuildKit's rules: ARGs before the first FROM are the only ones a FROM can use,
``--build-arg`` overrides only declared ARGs, ``${VAR:-word}`` and ``${VAR:+word}`` expand,
a FROM naming an earlier stage's alias is a stage, not an image. Anything that cannot be
resolved gets a skip reason; nothing here raises on a strange Dockerfile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tasks.dockerfile.lexer import Instruction, lex
from tasks.errors import DockerfileError, ImageReferenceError
from tasks.images.reference import ImageReference, parse_reference

# BuildKit defines these in the global scope; their values depend on the build host.
PLATFORM_ARGS = frozenset(
    {
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
    }
)
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class VarRef:
    name: str
    op: str | None = None  # ":-" or ":+"
    word: str = ""


TemplatePart = Literal | VarRef


def template(raw: str, escape: str = "\\") -> list[TemplatePart]:
    """Split `raw` into literal text and ``$VAR`` references (an escaped ``$`` is literal)."""
    parts: list[TemplatePart] = []
    buffer = ""
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == escape and index + 1 < len(raw) and raw[index + 1] == "$":
            buffer += "$"
            index += 2
            continue
        if char == "$":
            match = _VAR.match(raw, index)
            if match:
                if buffer:
                    parts.append(Literal(buffer))
                    buffer = ""
                name = match["braced"] or match["bare"]
                parts.append(VarRef(name, match["op"], match["word"] or ""))
                index = match.end()
                continue
        buffer += char
        index += 1
    if buffer:
        parts.append(Literal(buffer))
    return parts


def expand(parts: list[TemplatePart], values: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """Expand a template; returns the text and the names that were unset (Docker: empty)."""
    out = []
    missing = []
    for part in parts:
        if isinstance(part, Literal):
            out.append(part.text)
            continue
        value = values.get(part.name)
        if part.op == ":-":
            out.append(value if value else part.word)
        elif part.op == ":+":
            out.append(part.word if value else "")
        elif value is None:
            missing.append(part.name)
        else:
            out.append(value)
    return "".join(out), missing


@dataclass(frozen=True)
class ArgDefault:
    """A global ARG: its default as written and where that default sits in the file."""

    name: str
    default: str | None
    line: int
    span: tuple[int, int] | None  # file offsets of the default value text, quotes excluded


@dataclass(frozen=True)
class BaseImage:
    """One FROM: what it names, where, and why it was skipped if it cannot be looked up."""

    file: str
    line: int
    stage: int
    raw: str
    image: str | None
    reference: ImageReference | None
    alias: str | None = None
    platform: str | None = None
    skip_reason: str | None = None
    raw_span: tuple[int, int] | None = None
    variables: tuple[str, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Dockerfile:
    """A parsed Dockerfile: its text (kept exactly) and what its FROMs use."""

    path: str
    text: str
    escape: str
    args: dict[str, ArgDefault] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    bases: list[BaseImage] = field(default_factory=list)

    def arg_values(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {name: arg.default for name, arg in self.args.items()}
        for name, value in self.build_args.items():
            if name in self.args:
                values[name] = value
        return values


def _tokens(text: str, start: int) -> list[tuple[str, int, int]]:
    """Whitespace-separated tokens of text[start:], quotes kept, with logical spans."""
    return [(m[0], m.start(), m.end()) for m in re.finditer(r"(?:\"[^\"]*\"|'[^']*'|\S)+", text) if m.start() >= start]


def _parse_arg(instr: Instruction, args: dict[str, ArgDefault]) -> None:
    for token, start, _end in _tokens(instr.text, instr.args_offset):
        name, eq, value = token.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        if not eq:
            args[name] = ArgDefault(
                name,
                args[name].default if name in args else None,
                instr.line,
                args[name].span if name in args else None,
            )
            continue
        value_start = start + len(name) + 1
        value_end = value_start + len(value)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value, value_start, value_end = value[1:-1], value_start + 1, value_end - 1
        args[name] = ArgDefault(name, value, instr.line, instr.physical_span(value_start, value_end))


def parse_dockerfile(text: str, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Parse Dockerfile `text` (as read, CRLF and all); `path` only labels the results."""
    lexed = lex(text)
    result = Dockerfile(path=path, text=text, escape=lexed.escape, build_args=dict(build_args or {}))
    aliases: set[str] = set()
    seen_from = False
    for instr in lexed.instructions:
        if instr.keyword == "ARG" and not seen_from:
            _parse_arg(instr, result.args)
        elif instr.keyword == "FROM":
            seen_from = True
            base = _parse_from(result, instr, len(result.bases), aliases)
            result.bases.append(base)
            if base.alias:
                aliases.add(base.alias.lower())
    return result


def _parse_from(df: Dockerfile, instr: Instruction, stage: int, aliases: set[str]) -> BaseImage:
    tokens = _tokens(instr.text, instr.args_offset)
    platform = None
    while tokens and tokens[0][0].startswith("--"):
        flag = tokens.pop(0)[0]
        if flag.startswith("--platform="):
            platform = flag.split("=", 1)[1]
    base = BaseImage(df.path, instr.line, stage, "", None, None, platform=platform)
    if not tokens:
        return replace(base, skip_reason="FROM names no image")
    raw, start, end = tokens[0]
    rest = [t[0] for t in tokens[1:]]
    if rest and not (len(rest) == 2 and rest[0].lower() == "as"):
        return replace(base, raw=raw, skip_reason=f"unexpected text after the image: {' '.join(rest)!r}")
    parts = template(raw, df.escape)
    variables = tuple(p.name for p in parts if isinstance(p, VarRef))
    base = replace(
        base,
        raw=raw,
        alias=rest[1] if rest else None,
        variables=variables,
        raw_span=instr.physical_span(start, end),
    )
    platform_vars = sorted(set(variables) & PLATFORM_ARGS - set(df.args))
    if platform_vars:
        return replace(base, skip_reason=f"FROM depends on build-platform ARG {platform_vars[0]}")
    undeclared = [v for v in variables if v not in df.args]
    if undeclared:
        return replace(
            base,
            skip_reason=f"FROM uses ARG {undeclared[0]}, which is not declared before the first FROM",
        )
    image, missing = expand(parts, df.arg_values())
    if missing:
        return replace(base, skip_reason=f"FROM uses unset ARG {missing[0]} (no default, no --build-arg)")
    base = replace(base, image=image)
    if image.lower() == "scratch":
        return replace(base, skip_reason="scratch: no base image")
    if image.lower() in aliases:
        return replace(base, skip_reason=f"refers to the earlier build stage {image!r}")
    try:
        return replace(base, reference=parse_reference(image))
    except ImageReferenceError as exc:
        return replace(base, skip_reason=str(exc))


def read_dockerfile(path: Path, build_args: Mapping[str, str] | None = None, label: str | None = None) -> Dockerfile:
    """Read and parse `path`; bytes are kept exactly (CRLF, non-UTF-8 bytes) for rewriting."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DockerfileError(f"{path}: cannot read Dockerfile: {exc.strerror}") from exc
    text = data.decode("utf-8", errors="surrogateescape")
    return parse_dockerfile(text, label or str(path), build_args)
