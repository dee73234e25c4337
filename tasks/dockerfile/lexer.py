"""Split a Dockerfile into logical instructions, keeping where every character came from.

Handles parser directives (``# escape=``), continuation lines, comment lines inside
continuations, CRLF and heredocs. Each instruction keeps a map from its logical text back to
offsets in the original text so edits can replace exact substrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<-?\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")
_HEREDOC_KEYWORDS = {"RUN", "COPY", "ADD"}


@dataclass(frozen=True)
class Segment:
    """`length` characters of logical text starting at `logical` come from offset `physical`."""

    logical: int
    physical: int
    length: int


@dataclass
class Instruction:
    """One logical instruction: keyword, arguments text and where it sits in the file."""

    keyword: str
    text: str  # the whole logical line, continuations joined
    line: int  # 1-based line of the keyword
    segments: list[Segment] = field(default_factory=list)

    @property
    def args_offset(self) -> int:
        """Logical index where the arguments start (after the keyword and whitespace)."""
        match = re.match(r"\s*\S+\s*", self.text)
        return match.end() if match else len(self.text)

    def physical_span(self, start: int, end: int) -> tuple[int, int] | None:
        """Offsets in the file of logical text [start, end), or None if it spans a line break."""
        for seg in self.segments:
            if seg.logical <= start and end <= seg.logical + seg.length:
                offset = seg.physical + (start - seg.logical)
                return offset, offset + (end - start)
        return None


@dataclass
class LexedDockerfile:
    escape: str
    directives: dict[str, str]
    instructions: list[Instruction]


def _physical_lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its line ending) for every line; CR before LF is an ending."""
    lines = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        lines.append((offset, body))
        offset += len(raw)
    return lines


def lex(text: str) -> LexedDockerfile:
    """Split `text` into instructions. Never raises on odd input: it yields what it can read."""
    lines = _physical_lines(text)
    directives: dict[str, str] = {}
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index][1])
        if not match or match[1].lower() in directives:
            break
        directives[match[1].lower()] = match[2]
        index += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        escape = "\\"

    instructions: list[Instruction] = []
    current: Instruction | None = None
    heredoc_ends: list[str] = []
    for number in range(index, len(lines)):
        offset, body = lines[number]
        if heredoc_ends:
            if body.strip("\t") == heredoc_ends[0]:
                heredoc_ends.pop(0)
            continue
        stripped = body.strip()
        if current is None:
            if not stripped or stripped.startswith("#"):
                continue
            keyword = stripped.split(None, 1)[0].upper()
            current = Instruction(keyword=keyword, text="", line=number + 1)
        elif not stripped or stripped.startswith("#"):
            # Comment and empty lines inside a continuation are dropped by Docker.
            continue
        content = body
        continued = False
        trimmed = content.rstrip(" \t")
        if trimmed.endswith(escape):
            content = trimmed[:-1]
            continued = True
        current.segments.append(Segment(len(current.text), offset, len(content)))
        current.text += content
        if not continued:
            if current.keyword in _HEREDOC_KEYWORDS:
                heredoc_ends = [m[2] for m in _HEREDOC.finditer(current.text)]
            instructions.append(current)
            current = None
    if current is not None:
        instructions.append(current)
    return LexedDockerfile(escape=escape, directives=directives, instructions=instructions)
