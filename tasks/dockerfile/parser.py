"""Extract every FROM of a Dockerfile with file, line, ARG resolution and a skip code.

Follows BuildKit (``dockerfile2llb``): only ARGs declared before the first FROM (the global
scope) reach a FROM, each expanded in order from the ARGs before it, so
``ARG BASE_TAG=${CUDA}-${FLAVOR}-${OS}`` uses the ``CUDA`` declared above it; an ARG declared
inside a stage does not reach any FROM. A ``--build-arg`` replaces a declared ARG's value as it
is (not expanded) and feeds the ARGs after it; an undeclared one is ignored, except the
build-platform ARGs (``TARGETARCH``...), which BuildKit defines before the first line and whose
value depends on the build host. ``${VAR:-word}``, ``${VAR:+word}`` and the other forms expand
as BuildKit expands them (``tasks.dockerfile.shellword``). A FROM naming an earlier stage's
alias is a stage, not an image.

A FROM that cannot be looked up keeps its row, with a machine-readable `skip` code
(``SKIP_CODES``) and a `skip_reason` that says why. Nothing here raises on a strange Dockerfile;
``read_dockerfile`` refuses only what it cannot read (missing, not a regular file, too large).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tasks.dockerfile.lexer import FIELD_SPACE, GO_SPACE, Instruction, lex, words
from tasks.dockerfile.shellword import Lit, Part, Value, Var, WordSyntaxError, evaluate, parse_word, variables
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
SKIP_CODES = (
    "scratch",  # FROM scratch: no base image
    "stage-reference",  # FROM names an earlier build stage
    "unresolved-arg",  # an ARG it uses has no value here (unset, out of scope, host-dependent)
    "invalid-reference",  # the expanded text is not a valid image reference
    "empty-from",  # FROM names nothing (or expands to nothing)
    "malformed-from",  # BuildKit would refuse the instruction (arguments, flags, syntax)
)
MAX_DOCKERFILE_BYTES = 1024 * 1024
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")
_FIELDS = re.compile(f"[^{FIELD_SPACE}]+")
_FLAG_PLAIN = re.compile("[^" + "".join(re.escape(c) for c in GO_SPACE) + "'\"\\\\]+")


@dataclass(frozen=True)
class ArgDefault:
    """A global ARG as a FROM sees it: its value, the line of the declaration that set it and
    where that default sits in the file (None when it is not one editable piece of text)."""

    name: str
    default: str | None
    line: int
    span: tuple[int, int] | None  # file offsets of the default value text, quotes excluded


@dataclass(frozen=True)
class ArgDecl:
    """One ARG declaration in the global scope, in file order."""

    index: int
    name: str
    line: int
    raw: str | None  # the default as written (quotes and all); None without '='
    parts: tuple[Part, ...] | None  # the default as a template; None without one (or unreadable)
    span: tuple[int, int] | None  # file offsets of the default, quotes excluded, if one plain piece
    value: Value | None  # the name's value after this declaration (None: unset)
    source: str  # "default", "build-arg", "none" (no default: the earlier value stays) or "error"
    instruction: Instruction = field(compare=False, repr=False)


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
    skip: str | None = None  # one of SKIP_CODES when skipped

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class FromSource:
    """How a FROM's image text is written: its instruction and the parsed template."""

    instruction: Instruction = field(repr=False)
    parts: tuple[Part, ...] | None
    deps: frozenset[int] = frozenset()  # global ARG declarations it depends on


@dataclass
class Dockerfile:
    """A parsed Dockerfile: its text (kept exactly) and what its FROMs use."""

    path: str
    text: str
    escape: str
    args: dict[str, ArgDefault] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    bases: list[BaseImage] = field(default_factory=list)
    decls: list[ArgDecl] = field(default_factory=list)
    env: dict[str, Value] = field(default_factory=dict)
    sources: list[FromSource] = field(default_factory=list)
    arg_names: frozenset[str] = frozenset()  # every ARG name declared anywhere in the file

    def arg_values(self) -> dict[str, str | None]:
        """Each global ARG's value as a FROM sees it (None: declared but unset)."""
        return {name: arg.default for name, arg in self.args.items()}

    def provider(self, name: str, before: int | None = None) -> int | None:
        """The declaration whose value `name` has before declaration `before` (or at FROM)."""
        for decl in reversed(self.decls[:before] if before is not None else self.decls):
            if decl.name == name and decl.value is not None and decl.source != "none":
                return decl.index
        return None


def parse_dockerfile(text: str, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Parse Dockerfile `text` (as read, CRLF and all); `path` only labels the results. A file
    BuildKit refuses (a bad or repeated parser directive, an unterminated heredoc) is a
    DockerfileError: what it would build is unknown, so nothing is read from it."""
    lexed = lex(text)
    if lexed.problems:
        raise DockerfileError(f"{path}: {lexed.problems[0]}; BuildKit refuses this file: fix it first")
    given = dict(build_args or {})
    result = Dockerfile(path=path, text=text, escape=lexed.escape, build_args=given)
    env: dict[str, Value] = {}
    for name in sorted(PLATFORM_ARGS):
        env[name] = Value(given[name]) if name in given else Value("", unknown=(name,))
    aliases: set[str] = set()
    names: set[str] = set()
    seen_from = False
    for instr in lexed.instructions:
        if instr.keyword == "ARG":
            names.update(w.partition("=")[0] for w, _start, _end in words(instr.text, instr.args_offset, lexed.escape))
            if not seen_from:
                _parse_arg(result, instr, env)
        elif instr.keyword == "FROM":
            seen_from = True
            base, source = _parse_from(result, instr, len(result.bases), aliases, env)
            result.bases.append(base)
            result.sources.append(source)
            if base.alias:
                aliases.add(base.alias.lower())
    result.env = env
    result.arg_names = frozenset(names)
    return result


def _parse_arg(df: Dockerfile, instr: Instruction, env: dict[str, Value]) -> None:
    for word, start, end in words(instr.text, instr.args_offset, df.escape):
        name, eq, raw = word.partition("=")
        index = len(df.decls)
        parts: tuple[Part, ...] | None = None
        span = None
        source = "none"
        value = env.get(name)
        if eq:
            value_start = start + len(name) + 1
            try:
                parts = parse_word(instr.text, value_start, end, df.escape)
            except WordSyntaxError as exc:
                source, value = "error", _error_value(index, instr, exc)
            span = _value_span(instr, parts, raw, value_start, end)
        if name in df.build_args:
            source, value = "build-arg", Value(df.build_args[name], deps=frozenset({index}), origin=index)
        elif eq and source != "error" and parts is not None:
            try:
                expanded = evaluate(parts, env)
            except WordSyntaxError as exc:
                source, value = "error", _error_value(index, instr, exc)
            else:
                source = "default"
                value = Value(
                    expanded.text,
                    expanded.missing,
                    expanded.unknown,
                    expanded.deps | {index},
                    index,
                    expanded.error,
                )
        if source != "none" and value is not None:
            env[name] = value
        df.decls.append(ArgDecl(index, name, instr.line, raw if eq else None, parts, span, value, source, instr))
        current = env.get(name)
        provider = df.decls[current.origin] if current is not None and current.origin is not None else None
        df.args[name] = ArgDefault(
            name,
            current.text if current is not None and not current.unknown else None,
            provider.line if provider else instr.line,
            provider.span if provider else None,
        )


def _error_value(index: int, instr: Instruction, exc: WordSyntaxError) -> Value:
    return Value("", deps=frozenset({index}), origin=index, error=f"line {instr.line}: {exc}")


def _value_span(
    instr: Instruction, parts: tuple[Part, ...] | None, raw: str, start: int, end: int
) -> tuple[int, int] | None:
    """File offsets of an ARG default that is one plain piece of text (quotes excluded)."""
    if parts is None:
        return None
    if not parts:
        if raw in ('""', "''"):
            return instr.physical_span(start + 1, start + 1)
        return instr.physical_span(start, start) if raw == "" else None
    if len(parts) == 1 and isinstance(parts[0], Lit) and parts[0].exact:
        return instr.physical_span(parts[0].start, parts[0].end)
    return None


def _builder_flags(text: str, start: int) -> tuple[list[str], int]:
    """BuildKit's extractBuilderFlags: the leading ``--flag`` words and where the rest starts."""
    flags: list[str] = []
    index = start
    end = len(text)
    while True:
        while index < end and text[index] in GO_SPACE:
            index += 1
        if index >= end or not text.startswith("--", index):
            return flags, index
        word = []
        quote = ""
        while index < end:
            char = text[index]
            if quote:
                if char == quote:
                    quote = ""
                elif char == "\\" and index + 1 < end:
                    index += 1
                    word.append(text[index])
                elif char != "\\":
                    word.append(char)
            elif char in GO_SPACE:
                break
            elif char in "'\"":
                quote = char
            elif char == "\\":
                if index + 1 < end:
                    index += 1
                    word.append(text[index])
            else:
                run = _FLAG_PLAIN.match(text, index)
                stop_at = run.end() if run else index + 1
                word.append(text[index:stop_at])
                index = stop_at
                continue
            index += 1
        flag = "".join(word)
        if flag == "--":
            return flags, index
        flags.append(flag)


def _parse_from(
    df: Dockerfile, instr: Instruction, stage: int, aliases: set[str], env: Mapping[str, Value]
) -> tuple[BaseImage, FromSource]:
    flags, rest = _builder_flags(instr.text, instr.args_offset)
    # BuildKit trims Unicode blanks from the ends (strings.TrimSpace), then splits on ASCII ones.
    stop = len(instr.text.rstrip(GO_SPACE))
    fields = [(m[0], m.start(), m.end()) for m in _FIELDS.finditer(instr.text, rest, max(rest, stop))]
    found = _FromFields(df.path, instr.line, stage)
    source = FromSource(instr, None)
    if not fields:
        return found.skip("empty-from", "FROM names no image"), source
    raw, start, end = fields[0]
    rest_words = [f[0] for f in fields[1:]]
    found.raw, found.raw_span = raw, instr.physical_span(start, end)
    if len(rest_words) == 2 and rest_words[0].lower() == "as":
        found.alias = rest_words[1]
    if rest_words and found.alias is None:
        return found.skip("malformed-from", f"unexpected text after the image: {' '.join(rest_words)!r}"), source
    if found.alias is not None and not _STAGE_NAME.fullmatch(found.alias.lower()):
        reason = f"invalid name for build stage: {found.alias!r}, name can't start with a number or contain symbols"
        return found.skip("malformed-from", reason), source
    for flag in flags:
        flag_name, eq, flag_value = flag[2:].partition("=")
        if flag_name != "platform":
            return found.skip("malformed-from", f"unknown flag: {flag_name}"), source
        if not eq:
            return found.skip("malformed-from", "missing a value on flag: platform"), source
        found.platform = flag_value
    try:
        parts = parse_word(instr.text, start, end, df.escape)
    except WordSyntaxError as exc:
        return found.skip("malformed-from", f"FROM {raw}: {exc}"), source
    found.variables = variables(parts)
    try:
        value = evaluate(parts, env)
    except WordSyntaxError as exc:
        code = "unresolved-arg" if exc.unresolved else "malformed-from"
        return found.skip(code, f"FROM {raw}: {exc}"), FromSource(instr, parts)
    source = FromSource(instr, parts, value.deps)
    problem = _unresolved(df, value)
    if problem:
        return found.skip("unresolved-arg", problem), source
    image = found.image = value.text
    if image == "":
        return found.skip("empty-from", f"FROM {raw} expands to nothing"), source
    if image == "scratch":
        return found.skip("scratch", "scratch: no base image"), source
    if image.lower() in aliases:
        return found.skip("stage-reference", f"refers to the earlier build stage {image!r}"), source
    try:
        found.reference = parse_reference(image)
    except ImageReferenceError as exc:
        return found.skip("invalid-reference", str(exc)), source
    return found.build(), source


@dataclass
class _FromFields:
    """A BaseImage being read (built once: frozen dataclasses are slow to copy)."""

    file: str
    line: int
    stage: int
    raw: str = ""
    image: str | None = None
    reference: ImageReference | None = None
    alias: str | None = None
    platform: str | None = None
    raw_span: tuple[int, int] | None = None
    variables: tuple[str, ...] = ()

    def build(self, skip: str | None = None, reason: str | None = None) -> BaseImage:
        return BaseImage(
            self.file,
            self.line,
            self.stage,
            self.raw,
            self.image,
            self.reference,
            self.alias,
            self.platform,
            reason,
            self.raw_span,
            self.variables,
            skip,
        )

    def skip(self, code: str, reason: str) -> BaseImage:
        return self.build(code, reason)


def _unresolved(df: Dockerfile, value: Value) -> str | None:
    """Why the value of a FROM cannot be trusted (an ARG it needs has no value here), or None."""
    if value.error:
        return f"an ARG this FROM uses cannot be expanded: {value.error}"
    if value.unknown:
        return f"FROM depends on build-platform ARG {value.unknown[0]}"
    if not value.missing:
        return None
    name = value.missing[0]
    declared = [d for d in df.decls if d.name == name]
    if not declared:
        return f"FROM uses ARG {name}, which is not declared before the first FROM"
    if any(d.source != "none" for d in declared):
        return f"FROM uses ARG {name} before its declaration at line {declared[0].line} gives it a value"
    return f"FROM uses unset ARG {name} (no default, no --build-arg)"


def read_dockerfile(
    path: Path,
    build_args: Mapping[str, str] | None = None,
    label: str | None = None,
    *,
    max_bytes: int = MAX_DOCKERFILE_BYTES,
) -> Dockerfile:
    """Read and parse `path`; bytes are kept exactly (CRLF, non-UTF-8 bytes) for rewriting.

    Refuses, with a DockerfileError naming the file, anything that is not a regular file (a
    FIFO is opened without blocking and never read) and files over `max_bytes`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DockerfileError(f"{path}: cannot read Dockerfile: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DockerfileError(f"{path}: cannot read Dockerfile: it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise DockerfileError(_too_large(path, info.st_size, max_bytes))
        chunks = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise DockerfileError(_too_large(path, size, max_bytes))
    except OSError as exc:
        raise DockerfileError(f"{path}: cannot read Dockerfile: {exc.strerror}") from exc
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", errors="surrogateescape")
    return parse_dockerfile(text, label or str(path), build_args)


def _too_large(path: Path, size: int, limit: int) -> str:
    return (
        f"{path}: Dockerfile is {size} bytes, over the {limit}-byte limit; "
        "check that this is the Dockerfile you mean (no real Dockerfile is this large)"
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"


__all__ = [
    "MAX_DOCKERFILE_BYTES",
    "PLATFORM_ARGS",
    "SKIP_CODES",
    "ArgDecl",
    "ArgDefault",
    "BaseImage",
    "Dockerfile",
    "FromSource",
    "Lit",
    "Var",
    "parse_dockerfile",
    "read_dockerfile",
]
