"""Split a Dockerfile into logical instructions as BuildKit's parser does, keeping where every
character came from.

The rules (moby/buildkit ``frontend/dockerfile/parser``): a line ends at ``\\n`` only, and the
carriage returns before it are not content (``\\r\\n`` files read like ``\\n`` files; U+2028,
U+0085 or a form feed are ordinary characters, which is why this never uses
``str.splitlines``). A UTF-8 byte-order mark is dropped. Parser directives (``# escape=``,
``# syntax=``, ``# check=``) come first; the first other line ends them. A line whose first
non-blank character is ``#`` is a comment; inside a continuation, comment and blank lines are
dropped. An instruction continues while its line ends with the escape character (then spaces
or tabs). ``RUN``/``COPY``/``ADD`` may open heredocs (``<<EOF``, ``<<-EOF``) whose bodies are
not instructions.

Each instruction keeps a map from its logical text back to offsets in the original text, so
edits replace exact substrings. Everything here is linear in the size of the input.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

# Go's unicode.IsSpace: BuildKit trims and splits words with it (Python's str.isspace also
# counts U+001C..U+001F, which Go does not).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# The separators of instruction fields (BuildKit's reWhitespace): ASCII only.
FIELD_SPACE = "\t\v\f\r "
# RE2's \s, used by the directive pattern.
_RE2_SPACE = " \t\n\f\r"
_DIRECTIVE_NAME = re.compile(r"#[ \t\n\f\r]*([a-zA-Z][a-zA-Z0-9]*)[ \t\n\f\r]*=")
KNOWN_DIRECTIVES = ("escape", "syntax", "check")
_HEREDOC_KEYWORDS = {"RUN", "COPY", "ADD"}
_HEREDOC_WORD = re.compile(r"[0-9]*<<(-?)([^<]*)")
_KEYWORD_END = re.compile(f"[{FIELD_SPACE}]")
_FIELD_RUN = re.compile(f"[{FIELD_SPACE}]*")
_GO_SPACE_CLASS = "".join(re.escape(c) for c in GO_SPACE)
_WORD_PATTERNS: dict[str, re.Pattern[str]] = {}


@dataclass(frozen=True)
class Segment:
    """`length` characters of logical text starting at `logical` come from offset `physical`."""

    logical: int
    physical: int
    length: int


@dataclass
class Instruction:
    """One logical instruction: keyword, its text (continuations joined) and where it sits."""

    keyword: str  # upper-case for ASCII keywords, as written otherwise
    text: str
    line: int  # 1-based line of the keyword
    segments: list[Segment] = field(default_factory=list)
    end_line: int = 0  # 1-based last physical line of the instruction
    args_offset: int = 0  # logical index where the arguments start
    end_offset: int = 0  # file offset just past the instruction's last line (and its line break)
    _starts: list[int] = field(default_factory=list, repr=False)

    def physical_span(self, start: int, end: int) -> tuple[int, int] | None:
        """Offsets in the file of logical text [start, end), or None if it spans a line break."""
        if not self._starts:
            self._starts = [seg.logical for seg in self.segments]
        index = bisect.bisect_right(self._starts, start) - 1
        if index < 0:
            return None
        seg = self.segments[index]
        if seg.logical <= start and end <= seg.logical + seg.length:
            offset = seg.physical + (start - seg.logical)
            return offset, offset + (end - start)
        return None


@dataclass
class LexedDockerfile:
    escape: str
    directives: dict[str, str]
    instructions: list[Instruction]
    problems: list[str] = field(default_factory=list)  # what BuildKit would refuse, as found


def words(text: str, start: int, escape: str) -> list[tuple[str, int, int]]:
    """BuildKit's ``parseWords``: whitespace-separated words of text[start:], quotes and
    escapes kept, with their logical spans (an escape at the very end is dropped)."""
    pattern = _WORD_PATTERNS.get(escape)
    if pattern is None:
        esc = re.escape(escape)
        pattern = re.compile(
            rf"(?:'[^']*(?:'|\Z)|\"(?:[^\"{esc}]|{esc}.)*(?:\"|{esc}?\Z)|{esc}.|{esc}\Z|[^{_GO_SPACE_CLASS}'\"{esc}])+",
            re.DOTALL,
        )
        _WORD_PATTERNS[escape] = pattern
    found = []
    for match in pattern.finditer(text, start):
        word, end = match[0], match.end()
        if end == len(text) and word.endswith(escape) and _ends_with_lone_escape(word, escape):
            word, end = word[:-1], end - 1
        if word:
            found.append((word, match.start(), end))
    return found


def _ends_with_lone_escape(word: str, escape: str) -> bool:
    """True when the word's last escape character escapes nothing (an odd run at the end)."""
    run = len(word) - len(word.rstrip(escape))
    return run % 2 == 1


def _directive(line: str) -> tuple[str, str] | None:
    """BuildKit's ``^#\\s*([a-zA-Z][a-zA-Z0-9]*)\\s*=\\s*(.+?)\\s*$`` without backtracking."""
    match = _DIRECTIVE_NAME.match(line)
    if match is None:
        return None
    rest = line[match.end() :]
    value = rest.strip(_RE2_SPACE)
    if not value:
        if not rest:
            return None
        value = rest[-1]  # '(.+?)' takes one blank when there is nothing else
    return match[1], value


def _continued(line: str, escape: str) -> tuple[bool, str]:
    """(continues, content): the escape then spaces or tabs at the end continue the line."""
    trimmed = line.rstrip(" \t")
    if trimmed.endswith(escape):
        return True, trimmed[:-1]
    return False, line


def lex(text: str) -> LexedDockerfile:
    """Split `text` into instructions. Never raises on odd input: it yields what it can read."""
    lines = text.split("\n")
    count = len(lines)
    directives: dict[str, str] = {}
    problems: list[str] = []
    escape = "\\"
    instructions: list[Instruction] = []
    in_directives = True
    index = 0
    offset = 0
    while index < count:
        raw = lines[index]
        start = offset
        offset += len(raw) + 1
        index += 1
        body = raw.rstrip("\r")
        if index == 1 and body.startswith("\ufeff"):
            body, start = body[1:], start + 1
        stripped = body.lstrip(GO_SPACE)
        if in_directives:
            found = _directive(stripped)
            if found is None or found[0].lower() not in KNOWN_DIRECTIVES:
                in_directives = False
            else:
                name, value = found[0].lower(), found[1]
                if name in directives:
                    problems.append(f"line {index}: only one {name} parser directive can be used")
                    in_directives = False
                    continue
                directives[name] = value
                if name == "escape":
                    if value in ("\\", "`"):
                        escape = value
                    else:
                        problems.append(f"line {index}: invalid escape token {value!r} does not match ` or \\")
                continue
        if not stripped or stripped[0] == "#":
            continue
        first_line = index
        continues, content = _continued(stripped, escape)
        pieces = [content]
        segments = [Segment(0, start + len(body) - len(stripped), len(content))]
        logical = len(content)
        while continues and index < count:
            raw = lines[index]
            start = offset
            offset += len(raw) + 1
            index += 1
            body = raw.rstrip("\r")
            head = body.lstrip(GO_SPACE)
            if not head or head[0] == "#":
                continue
            continues, content = _continued(body, escape)
            if content:
                pieces.append(content)
                segments.append(Segment(logical, start, len(content)))
                logical += len(content)
        joined = "".join(pieces)
        instr = _instruction(joined, first_line, index, segments, min(offset, len(text)))
        instructions.append(instr)
        if instr.keyword in _HEREDOC_KEYWORDS and "<<" in joined:
            for name, chomp in _heredocs(joined, instr.args_offset, escape):
                while index < count:
                    raw = lines[index]
                    offset += len(raw) + 1
                    index += 1
                    candidate = raw.rstrip("\r")
                    if chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == name:
                        break
                instr.end_line = index
                instr.end_offset = min(offset, len(text))
    return LexedDockerfile(escape=escape, directives=directives, instructions=instructions, problems=problems)


def _instruction(text: str, line: int, end_line: int, segments: list[Segment], end_offset: int) -> Instruction:
    match = _KEYWORD_END.search(text)
    keyword_end = match.start() if match else len(text)
    word = text[:keyword_end]
    keyword = word.upper() if word.isascii() else word
    run = _FIELD_RUN.match(text, keyword_end)
    args_offset = run.end() if run else keyword_end
    return Instruction(keyword, text, line, segments, end_line, args_offset, end_offset)


def _heredocs(text: str, start: int, escape: str) -> list[tuple[str, bool]]:
    """The heredocs an instruction opens, in order: (terminator, strip leading tabs)."""
    found = []
    for word, _start, _end in words(text, start, escape):
        match = _HEREDOC_WORD.fullmatch(word)
        if match is None or not match[2]:
            continue
        name = _unquote(match[2])
        if name:
            found.append((name, match[1] == "-"))
    return found


def _unquote(word: str) -> str:
    """The heredoc word with its quotes removed (``'EOF'``, ``"EOF"``, ``E"O"F`` are EOF)."""
    return word.replace('"', "").replace("'", "")
