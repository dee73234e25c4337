"""A pip requirements file as pip reads it, with where every piece sits (pure).

pip's rules (``pip/_internal/req/req_file.py``): the text is split with ``str.splitlines``; a line
ending in a backslash is joined with the next (a comment line never continues); a ``#`` at the
start or after whitespace starts a comment; the requirement is the words before the first word
that starts with ``-``, the options are the rest (``--hash=sha256:...``, ``-r other.txt``,
``-i URL``, ``--extra-index-url URL``, with a space or ``=``). Every logical line keeps the map
back to file offsets, so an edit replaces exact characters and leaves the rest byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# str.splitlines' line boundaries, which are pip's.
_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_COMMENT_LINE = re.compile(r"^\s*#")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_WORD = re.compile(r"\S+")
# name, extras, then the specifier (legacy parentheses allowed), then a marker.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SPEC = re.compile(r"\s*(?:\[[^\]]*\])?\s*\(?(?P<spec>(?:===|~=|==|!=|<=|>=|<|>)[^;()]*?)\)?\s*(?:;.*)?$")
INCLUDES = {"-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint"}
INDEXES = {"-i": "index", "--index-url": "index", "--extra-index-url": "extra-index"}
_VALUED = {*INCLUDES, *INDEXES, "-e", "--editable", "-f", "--find-links", "--hash", "--trusted-host"}
_VALUED |= {"--config-settings", "--global-option", "--no-binary", "--only-binary", "--use-feature"}


@dataclass(frozen=True)
class Piece:
    """`length` characters of logical text from `logical` come from file offset `physical`."""

    logical: int
    physical: int
    length: int


@dataclass(frozen=True)
class Option:
    """``--name value``: the option as written, its value and the value's logical span."""

    name: str
    value: str
    start: int  # of the option word
    end: int  # of the value
    value_start: int


@dataclass
class Line:
    """One logical line: its number, text (joined, comment removed), and what it holds."""

    number: int  # 1-based first physical line
    text: str
    pieces: list[Piece]
    end: int  # file offset where the logical line's content ends (before the comment and break)
    requirement: str = ""  # the words before the options
    req_end: int = 0  # logical end of the requirement part
    options: list[Option] = field(default_factory=list)
    parsed: Requirement | None = None
    spec_span: tuple[int, int] | None = None  # logical span of the specifier text
    name_span: tuple[int, int] | None = None

    @property
    def name(self) -> str | None:
        return canonicalize_name(self.parsed.name) if self.parsed else None

    @property
    def spec(self) -> str:
        return self.text[self.spec_span[0] : self.spec_span[1]] if self.spec_span else ""

    def physical(self, start: int, end: int) -> tuple[int, int] | None:
        """File offsets of logical text [start, end), or None when it spans a continuation."""
        for piece in self.pieces:
            if piece.logical <= start and end <= piece.logical + piece.length:
                offset = piece.physical + start - piece.logical
                return offset, offset + end - start
        return None

    def at(self, logical: int) -> int:
        """The file offset of a logical position (the end of a piece for a position between two)."""
        for piece in self.pieces:
            if piece.logical <= logical <= piece.logical + piece.length:
                return piece.physical + logical - piece.logical
        last = self.pieces[-1]
        return last.physical + last.length

    def hashes(self) -> list[Option]:
        return [o for o in self.options if o.name == "--hash"]


def _physical_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line's content, as str.splitlines gives them."""
    lines, pos = [], 0
    for match in _BREAK.finditer(text):
        lines.append((pos, match.start()))
        pos = match.end()
    if pos < len(text):
        lines.append((pos, len(text)))
    return lines


def parse(text: str) -> list[Line]:
    """Every logical line of a requirements file that holds a requirement or an option."""
    out: list[Line] = []
    pieces: list[Piece] = []
    logical = ""
    first = 0
    for number, (start, end) in enumerate(_physical_lines(text), 1):
        line = text[start:end]
        if _COMMENT_LINE.match(line):  # a comment line ends a continuation and is all comment
            if pieces:
                _finish(out, logical, pieces, first)
            logical, pieces, first = "", [], 0
            continue
        if not line.endswith("\\"):
            pieces.append(Piece(len(logical), start, len(line)))
            _finish(out, logical + line, pieces, first or number)
            logical, pieces, first = "", [], 0
            continue
        stripped = line.strip("\\")
        lead = len(line) - len(line.lstrip("\\"))
        first = first or number
        pieces.append(Piece(len(logical), start + lead, len(stripped)))
        logical += stripped
    if pieces:
        _finish(out, logical, pieces, first)
    return out


def _finish(out: list[Line], text: str, pieces: list[Piece], number: int) -> None:
    content = _COMMENT.sub("", text)
    if not content.strip():
        return
    stop = len(content.rstrip())
    line = Line(number, text[:stop], pieces, 0)
    line.end = line.at(stop)
    words = [(m[0], m.start(), m.end()) for m in _WORD.finditer(text, 0, stop)]
    index = 0
    while index < len(words) and not words[index][0].startswith("-"):
        index += 1
    if index:
        line.requirement = text[words[0][1] : words[index - 1][2]]
        line.req_end = words[index - 1][2]
        _requirement(line, words[0][1])
    while index < len(words):
        word, start, end = words[index]
        index += 1
        if not word.startswith("-"):
            continue
        name, eq, value = word.partition("=")
        if eq:
            line.options.append(Option(name, value, start, end, start + len(name) + 1))
        elif len(name) > 2 and not name.startswith("--") and name[:2] in _VALUED:
            line.options.append(Option(name[:2], name[2:], start, end, start + 2))  # -rfile, -iURL
        elif name in _VALUED and index < len(words):
            value, value_start, value_end = words[index]
            index += 1
            line.options.append(Option(name, value, start, value_end, value_start))
        else:
            line.options.append(Option(name, "", start, end, end))
    out.append(line)


def _requirement(line: Line, start: int) -> None:
    try:
        line.parsed = Requirement(line.requirement)
    except InvalidRequirement:
        return
    name = _NAME.match(line.requirement)
    if name is None:  # pragma: no cover - packaging accepted it, so it starts with a name
        return
    line.name_span = (start + name.start(), start + name.end())
    if line.parsed.url:
        return
    match = _SPEC.match(line.requirement, name.end())
    if match is not None:
        spec = match["spec"].rstrip()
        line.spec_span = (start + match.start("spec"), start + match.start("spec") + len(spec))


def includes(lines: list[Line]) -> list[tuple[str, str, int]]:
    """(kind, path as written, line number) of every ``-r``/``-c`` include."""
    return [(INCLUDES[o.name], o.value, line.number) for line in lines for o in line.options if o.name in INCLUDES]


def index_options(lines: list[Line]) -> list[tuple[Line, Option]]:
    """Every ``-i``/``--index-url``/``--extra-index-url`` option, in order."""
    return [(line, o) for line in lines for o in line.options if o.name in INDEXES]
