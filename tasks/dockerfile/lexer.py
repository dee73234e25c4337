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
import itertools
import re
from collections.abc import Iterator
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
_LINE_SPACE = "".join(re.escape(c) for c in GO_SPACE if c != "\n")
_WORD_PATTERNS: dict[str, re.Pattern[str]] = {}
_SCANNERS: dict[str, _Scanner] = {}


@dataclass(frozen=True)
class Segment:
    """`length` characters of logical text starting at `logical` come from offset `physical`."""

    logical: int
    physical: int
    length: int


@dataclass
class Instruction:
    """One logical instruction: keyword, its text (continuations joined) and where it sits.

    The map from logical text back to file offsets is built lazily, only as far as a caller
    asks (``physical_span``), from the pieces the continuations removed.
    """

    keyword: str  # upper-case for ASCII keywords, as written otherwise
    text: str
    line: int  # 1-based line of the keyword
    end_line: int = 0  # 1-based last physical line of the instruction
    args_offset: int = 0  # logical index where the arguments start
    end_offset: int = 0  # file offset just past the instruction's last line (and its line break)
    start_offset: int = 0  # file offset of the instruction's first character
    _source: str = field(default="", repr=False)
    _removals: Iterator[re.Match[str]] | None = field(default=None, repr=False)
    _cuts: list[int] = field(default_factory=list, repr=False)  # logical offsets of removed pieces
    _removed: list[int] = field(default_factory=list, repr=False)  # characters removed up to each cut

    def physical_span(self, start: int, end: int) -> tuple[int, int] | None:
        """Offsets in the file of logical text [start, end), or None if it spans a line break."""
        if not 0 <= start <= end <= len(self.text):
            return None
        offset = self.start_offset + start + self._removed_through(start)
        if self._removals is None and not self._cuts:
            return offset, offset + (end - start)
        physical = self._source[offset : offset + (end - start)]
        if physical != self.text[start:end]:
            return None  # a removed line break (and what went with it) lies inside
        return offset, offset + (end - start)

    def _removed_through(self, logical: int) -> int:
        """Characters removed before logical offset `logical` (pieces removed right at it count)."""
        while self._removals is not None and (not self._cuts or self._cuts[-1] <= logical):
            match = next(self._removals, None)
            if match is None:
                self._removals = None
                break
            total = self._removed[-1] if self._removed else 0
            self._cuts.append(match.start() - self.start_offset - total)
            self._removed.append(total + match.end() - match.start())
        index = bisect.bisect_right(self._cuts, logical)
        return self._removed[index - 1] if index else 0

    @property
    def segments(self) -> list[Segment]:
        """The logical text as runs of consecutive file characters."""
        self._removed_through(len(self.text))
        bounds = [0, *self._cuts, len(self.text)]
        removed = [0, *self._removed]
        found = [
            Segment(a, self.start_offset + a + removed[i], b - a)
            for i, (a, b) in enumerate(itertools.pairwise(bounds))
            if b > a
        ]
        return found or [Segment(0, self.start_offset, 0)]


@dataclass
class LexedDockerfile:
    escape: str
    directives: dict[str, str]
    instructions: list[Instruction]
    problems: list[str] = field(default_factory=list)  # what BuildKit would refuse, as found


@dataclass(frozen=True)
class _Scanner:
    """The line patterns for one escape character, compiled once."""

    skip_lines: re.Pattern[str]  # blank and comment lines, as many as there are
    continued: re.Pattern[str]  # the lines that keep a continuation going
    removal: re.Pattern[str]  # what joining continued lines removes


def _scanner(escape: str) -> _Scanner:
    found = _SCANNERS.get(escape)
    if found is None:
        esc = re.escape(escape)
        # Atomic groups and possessive quantifiers: each line is matched once, never revisited.
        skip = rf"(?>[{_LINE_SPACE}]*+(?:#[^\n]*+)?+\n)"
        found = _Scanner(
            re.compile(rf"{skip}*+"),
            re.compile(rf"(?:{skip}|(?>[^\n]*(?<!{esc}){esc}[ \t]*+\r*+\n))*+"),
            re.compile(rf"(?<!{esc}){esc}[ \t]*+\r*+\n{skip}*+"),
        )
        _SCANNERS[escape] = found
    return found


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
    """(continues, content): the escape then spaces or tabs at the end continue the line, unless
    an escape comes right before it (BuildKit's ``([^\\])\\[ \\t]*$|^\\[ \\t]*$``: ``C:\\\\``
    ends the instruction)."""
    trimmed = line.rstrip(" \t")
    if trimmed.endswith(escape) and not trimmed.endswith(escape * 2):
        return True, trimmed[:-1]
    return False, line


def lex(text: str) -> LexedDockerfile:
    """Split `text` into instructions. Never raises on odd input: it yields what it can read."""
    directives: dict[str, str] = {}
    problems: list[str] = []
    escape = "\\"
    instructions: list[Instruction] = []
    size = len(text)
    pos = 1 if text.startswith("\ufeff") else 0
    line = 1
    # Parser directives: one line at a time, until the first line that is not one.
    while pos < size:
        newline = text.find("\n", pos)
        newline = size if newline < 0 else newline
        found = _directive(text[pos:newline].rstrip("\r").lstrip(GO_SPACE))
        if found is None or found[0].lower() not in KNOWN_DIRECTIVES:
            break
        name, value = found[0].lower(), found[1]
        if name in directives:
            problems.append(f"line {line}: only one {name} parser directive can be used")
            break
        directives[name] = value
        if name == "escape":
            if value in ("\\", "`"):
                escape = value
            else:
                problems.append(f"line {line}: invalid escape token {value!r} does not match ` or \\")
        pos, line = newline + 1, line + 1
    scan = _scanner(escape)
    while pos < size:
        skipped = _match_end(scan.skip_lines, text, pos)
        line += text.count("\n", pos, skipped)
        pos = skipped
        if pos >= size:
            break
        newline = text.find("\n", pos)
        newline = size if newline < 0 else newline
        body = text[pos:newline].rstrip("\r")
        head = body.lstrip(GO_SPACE)
        if not head or head[0] == "#":  # a blank or comment last line without a line break
            break
        start = pos + len(body) - len(head)
        continues, content = _continued(head, escape)
        first_line = line
        if not continues:
            stop, after = start + len(content), newline + 1
            instr = _instruction(content, first_line, first_line, start, min(after, size))
        else:
            kept = _match_end(scan.continued, text, min(newline + 1, size))
            last_newline = text.find("\n", kept)
            last_newline = size if last_newline < 0 else last_newline
            last = text[kept:last_newline].rstrip("\r")
            stop, after = kept, last_newline + 1
            last_head = last.lstrip(GO_SPACE)
            if last_head and last_head[0] != "#":
                stop = kept + len(_continued(last, escape)[1])
            else:
                after = kept if kept < size and last_newline < size else size
            joined = scan.removal.sub("", text[start:stop])
            # The last line is the one `kept` starts, unless the file ended right after a line break.
            last_start = kept - 1 if kept >= size and text.endswith("\n") else kept
            end_line = first_line + text.count("\n", pos, max(pos, last_start))
            instr = _instruction(joined, first_line, end_line, start, min(after, size))
            instr._source = text
            instr._removals = scan.removal.finditer(text, start, stop)
        line = first_line + text.count("\n", pos, min(after, size))
        pos = after
        instructions.append(instr)
        if _opens_heredocs(instr, escape):
            for name, chomp in _heredocs(instr.text, instr.args_offset, escape):
                tabs = "\t*" if chomp else ""
                terminator = re.compile(rf"^{tabs}{re.escape(name)}\r*$", re.MULTILINE)
                match = terminator.search(text, pos)
                if match is None:
                    problems.append(f"line {instr.line}: unterminated heredoc {name}")
                done = size if match is None else min(match.end() + 1, size)
                line += text.count("\n", pos, done)
                pos = done
            instr.end_line = line - 1 if pos < size or text.endswith("\n") else line
            instr.end_offset = pos
    return LexedDockerfile(escape=escape, directives=directives, instructions=instructions, problems=problems)


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a pattern that can match nothing stops matching at `pos`."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


def _instruction(text: str, line: int, end_line: int, start: int, end_offset: int) -> Instruction:
    match = _KEYWORD_END.search(text)
    keyword_end = match.start() if match else len(text)
    word = text[:keyword_end]
    keyword = word.upper() if word.isascii() else word
    run = _FIELD_RUN.match(text, keyword_end)
    args_offset = run.end() if run else keyword_end
    return Instruction(keyword, text, line, end_line, args_offset, end_offset, start)


def _opens_heredocs(instr: Instruction, escape: str) -> bool:
    """RUN, COPY and ADD may open heredocs, and so may ``ONBUILD RUN|COPY|ADD`` (BuildKit's
    canContainHeredoc follows ONBUILD to the instruction it holds)."""
    if "<<" not in instr.text:
        return False
    if instr.keyword in _HEREDOC_KEYWORDS:
        return True
    if instr.keyword != "ONBUILD":
        return False
    held = words(instr.text, instr.args_offset, escape)
    return bool(held) and held[0][0].upper() in _HEREDOC_KEYWORDS


def _heredocs(text: str, start: int, escape: str) -> list[tuple[str, bool]]:
    """The heredocs an instruction opens, in order: (terminator, strip leading tabs)."""
    found = []
    for word, _start, _end in words(text, start, escape):
        match = _HEREDOC_WORD.fullmatch(word)
        if match is None or not match[2]:
            continue
        name = _unquote(match[2], escape)
        if name:
            found.append((name, match[1] == "-"))
    return found


def _unquote(word: str, escape: str = "\\") -> str:
    """The heredoc word as the shell reads it: quotes removed and escapes applied (``'EOF'``,
    ``"EOF"``, ``E"O"F`` and ``\\EOF`` are EOF)."""
    out: list[str] = []
    index = 0
    while index < len(word):
        char = word[index]
        if char == escape and index + 1 < len(word):
            out.append(word[index + 1])
            index += 2
            continue
        if char not in "\"'":
            out.append(char)
        index += 1
    return "".join(out)
