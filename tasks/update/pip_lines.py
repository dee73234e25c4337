"""The Python stack as a Dockerfile declares it, read with where each character came from.

What is read: every ``pip install`` in a ``RUN`` (shell form with continuation lines and quoted
words, exec form, and a ``RUN <<EOF`` script): ``pip``, ``pip3``, ``pip3.11``, a path to one,
``python -m pip``, ``uv pip``; their index options (``-i``, ``--index-url``, ``--extra-index-url``,
uv's ``--index``/``--default-index``, with a space or ``=``), the requirements they name
(``torch==2.5.1``, ``'cupy-cuda12x>=13.3'``), and the index variables pip and uv read
(``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``UV_INDEX_URL``, ``UV_EXTRA_INDEX_URL``,
``UV_INDEX``, ``UV_DEFAULT_INDEX``) set by ``ENV``/``ARG`` or before the command. Values written
through ``ARG``/``ENV`` (``--index-url https://download.pytorch.org/whl/${TORCH_CUDA}`` with
``ARG TORCH_CUDA=cu126``, ``torch==${TORCH_VERSION}``) are expanded as Docker and the shell
would, keeping for every character where it came from.

What is written, and how it is checked, is tasks/update/pip_rewrite.py: it edits each value where
its characters come from, as this module records them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tasks.dockerfile.lexer import Instruction, lex, words
from tasks.dockerfile.shellword import Lit, Part, WordSyntaxError, parse_word
from tasks.secrets import Redactor
from tasks.update.requirements import CurrentPins, add_requirement
from tasks.update.specs import url_variant

INDEX_VARIABLES = frozenset(
    {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_DEFAULT_INDEX"}
)
_INDEX_OPTIONS = {"-i", "--index-url", "--extra-index-url", "--index", "--default-index"}
# pip/uv install options that take a value (the value is not a requirement).
_VALUED = _INDEX_OPTIONS | {
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-t", "--target", "--platform",
    "--python-version", "--implementation", "--abi", "--root", "--prefix", "--src", "--upgrade-strategy",
    "--progress-bar", "--root-user-action", "--report", "-f", "--find-links", "--no-binary", "--only-binary",
    "--config-settings", "-C", "--global-option", "--log", "--proxy", "--retries", "--timeout",
    "--exists-action", "--trusted-host", "--cert", "--client-cert", "--cache-dir", "--python", "-p",
    "--keyring-provider", "--use-feature", "--use-deprecated", "--group", "--index-strategy", "--resolution",
    "--prerelease", "--extra", "--override", "--build-constraint", "--link-mode", "--python-platform",
}  # fmt: skip
_PIP = re.compile(r"pip(?:3(?:\.\d+)?)?")
_PYTHON = re.compile(r"python(?:3(?:\.\d+)?)?")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = {"sudo", "env", "exec", "command", "nohup", "time", "then", "do", "else", "elif", "if", "!", "{"}
PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SPEC = re.compile(r"\s*(?:\[[^\]]*\])?\s*(?P<spec>(?:===|~=|==|!=|<=|>=|<|>)[^;]*?)\s*(?:;.*)?$")
_EXEC_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
MAX_DEPTH = 16
SHOWN = Redactor()  # messages quote words of the Dockerfile: credentials in index URLs are masked


@dataclass(frozen=True)
class Source:
    """Where a run of expanded characters comes from: file offsets it can be edited at, the
    ``--build-arg`` that sets it, or why it cannot be edited."""

    span: tuple[int, int] | None = None
    build_arg: str | None = None
    why: str | None = None


@dataclass(frozen=True)
class Seg:
    text: str
    source: Source


@dataclass
class Word:
    """One shell word, expanded, with the source of every character."""

    segs: list[Seg]
    line: int

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segs)


@dataclass(frozen=True)
class Occurrence:
    """A value the plan may change: an index URL, or a requirement's specifier, in a word."""

    kind: str  # "index" or "pin"
    word: Word
    start: int  # in the word's expanded text
    end: int
    line: int
    name: str | None = None  # a pin's normalised package name

    @property
    def text(self) -> str:
        return self.word.text[self.start : self.end]


@dataclass
class Scan:
    occurrences: list[Occurrence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # pip lines that could not be read, said so


# ---------------------------------------------------------------- variables


Env = dict[str, list[Seg] | None]  # name -> expansion (None: declared, unset)


def _flatten(parts: tuple[Part, ...], env: Mapping[str, list[Seg] | None], span_of: SpanOf, depth: int) -> list[Seg]:
    """The segments `parts` expand to with `env` (as the shell and Docker expand them)."""
    if depth > MAX_DEPTH:
        return [Seg("", Source(why="variables nested too deep"))]
    out: list[Seg] = []
    for part in parts:
        if isinstance(part, Lit):
            span = span_of(part.start, part.end) if part.exact else None
            why = None if span else ("is split across lines" if part.exact else "is written with escape characters")
            out.append(Seg(part.text, Source(span, why=why)))
            continue
        value = env.get(part.name)
        is_set = value is not None
        empty = not "".join(s.text for s in value or [])
        if part.op == "" or part.op == "?" or (part.op == "-" and is_set and not (part.colon and empty)):
            out.extend(value or [Seg("", Source(why=f"${part.name} is not set"))])
        elif part.op == "-" or (part.op == "+" and is_set and not (part.colon and empty)):
            out.extend(_flatten(part.word, env, span_of, depth + 1))
        elif part.op != "+":
            text = "".join(s.text for s in value or [])
            out.append(Seg(text, Source(why=f"is computed by ${{{part.name}{part.op}...}}")))
    return out


class SpanOf:
    """Logical offsets of one text -> file offsets (None: not one editable piece)."""

    def __init__(self, instruction: Instruction | None = None, base: int = 0) -> None:
        self.instruction = instruction
        self.base = base

    def __call__(self, start: int, end: int) -> tuple[int, int] | None:
        if self.instruction is None:
            return self.base + start, self.base + end
        return self.instruction.physical_span(start, end)


def _declare(
    instr: Instruction, escape: str, env: Env, globals_: Env, build_args: Mapping[str, str], in_stage: bool
) -> list[tuple[str, int, int]]:
    """Apply an ARG or ENV instruction to `env`; the declared (name, value start, value end)."""
    declared = []
    found = words(instr.text, instr.args_offset, escape)
    if instr.keyword == "ENV" and found and "=" not in found[0][0]:  # legacy ENV NAME value
        name = found[0][0]
        rest = found[1][1] if len(found) > 1 else len(instr.text)
        pairs = [(name, rest, len(instr.text.rstrip()))]
    else:
        pairs = []
        for word, start, end in found:
            name, eq, _value = word.partition("=")
            pairs.append((name, start + len(name) + 1 if eq else -1, end))
    for name, value_start, value_end in pairs:
        if instr.keyword == "ARG" and name in build_args:
            env[name] = [Seg(build_args[name], Source(build_arg=name))]
        elif value_start < 0:  # ARG NAME: the global value (in a stage) or unset
            env[name] = (globals_.get(name) if in_stage else None) if name not in env else env[name]
        else:
            try:
                parts = parse_word(instr.text, value_start, value_end, escape)
            except WordSyntaxError:
                env[name] = [Seg("", Source(why=f"{name} cannot be expanded"))]
                continue
            env[name] = _flatten(parts, env, SpanOf(instr), 0)
        declared.append((name, value_start, value_end))
    return declared


# ---------------------------------------------------------------- shell words


def shell_commands(text: str, start: int = 0) -> list[list[tuple[int, int]]]:
    """The simple commands of a shell script, each as its words' (start, end) in `text`:
    split at ``&&``, ``||``, ``;``, ``|``, ``&``, parentheses and line breaks; quotes, escapes,
    ``$(...)`` and backquotes kept inside words; comments dropped."""
    commands: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    index, size = start, len(text)
    while index < size:
        char = text[index]
        if text.startswith("\\\n", index):
            index += 2
            continue
        if char in " \t\r":
            index += 1
            continue
        if char in "\n;&|()":
            if current:
                commands.append(current)
                current = []
            index += 1
            continue
        if char == "#":
            newline = text.find("\n", index)
            index = size if newline < 0 else newline
            continue
        end = _word_end(text, index)
        current.append((index, end))
        index = end
    if current:
        commands.append(current)
    return commands


def _word_end(text: str, index: int) -> int:
    size = len(text)
    depth = 0
    while index < size:
        char = text[index]
        if char == "\\":
            index += 2
        elif char == "'":
            close = text.find("'", index + 1)
            index = size if close < 0 else close + 1
        elif char == '"':
            index += 1
            while index < size and text[index] != '"':
                index += 2 if text[index] == "\\" else 1
            index += 1
        elif char == "`":
            close = text.find("`", index + 1)
            index = size if close < 0 else close + 1
        elif text.startswith("$(", index):
            depth += 1
            index += 2
        elif char == ")" and depth:
            depth -= 1
            index += 1
        elif depth == 0 and (char in " \t\r\n;&|()"):
            break
        else:
            index += 1
    return min(index, size)


# ---------------------------------------------------------------- the scan


def _word(text: str, start: int, end: int, env: Env, span_of: SpanOf, line: int) -> Word | None:
    try:
        parts = parse_word(text, start, end, "\\")
    except WordSyntaxError:
        return None
    return Word(_flatten(parts, env, span_of, 0), line)


def _install_args(values: list[str]) -> int | None:
    """Where the arguments of ``install`` start in a command's words, if it is a pip install."""
    index = 0
    while index < len(values) and (values[index] in _PREFIXES or _ASSIGNMENT.match(values[index])):
        index += 1
        while values[index - 1] in _PREFIXES and index < len(values) and values[index].startswith("-"):
            index += 1  # sudo -H, env -i
    if index >= len(values):
        return None
    program = os.path.basename(values[index])
    if _PYTHON.fullmatch(program):
        index += 1
        while index < len(values) and values[index].startswith("-") and values[index] != "-m":
            index += 1
        if values[index : index + 2] != ["-m", "pip"]:
            return None
        index += 2
    elif program == "uv":
        if values[index + 1 : index + 2] != ["pip"]:
            return None
        index += 2
    elif _PIP.fullmatch(program):
        index += 1
    else:
        return None
    while index < len(values) and values[index].startswith("-"):
        name = values[index].partition("=")[0]
        index += 2 if name in _VALUED and "=" not in values[index] else 1
    if index < len(values) and values[index] == "install":
        return index + 1
    return None


def _index_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL with a CUDA variant in a space-separated list (``name=url`` too)."""
    found = []
    for match in re.finditer(r"\S+", text):
        url_start = match.start() + (match[0].find("=") + 1 if "=" in match[0].split("://")[0] else 0)
        if url_variant(text[url_start : match.end()]):
            found.append((url_start, match.end()))
    return found


def _command(words_: list[Word], scan: Scan, line: int) -> None:
    values = [w.text for w in words_]
    # `export PIP_INDEX_URL=...` (or `declare -x`) sets it for the commands after it in the RUN
    exported = values[:1] == ["export"] or values[:2] == ["declare", "-x"]
    assignments = words_[1 if values[:1] == ["export"] else 2 :] if exported else words_
    for word in assignments:  # PIP_EXTRA_INDEX_URL=... before the command, or exported
        name, eq, _ = word.text.partition("=")
        if eq and name in INDEX_VARIABLES and _ASSIGNMENT.match(word.text):
            for start, end in _index_spans(word.text[len(name) + 1 :]):
                scan.occurrences.append(Occurrence("index", word, start + len(name) + 1, end + len(name) + 1, line))
        elif not eq or not _ASSIGNMENT.match(word.text):
            break
    index = _install_args(values)
    if index is None:
        return
    while index < len(words_):
        word, value = words_[index], values[index]
        index += 1
        if value.startswith("-"):
            name, eq, _rest = value.partition("=")
            if name in _INDEX_OPTIONS:
                if eq:
                    _add_index(scan, word, len(name) + 1, line)
                elif index < len(words_):
                    _add_index(scan, words_[index], 0, line)
                    index += 1
            elif name[:2] == "-i" and len(name) > 2:
                _add_index(scan, word, 2, line)
            elif name in _VALUED and not eq:
                index += 1
            continue
        _add_pin(scan, word, line)


def _add_index(scan: Scan, word: Word, start: int, line: int) -> None:
    if url_variant(word.text[start:]):
        scan.occurrences.append(Occurrence("index", word, start, len(word.text), line))


def _add_pin(scan: Scan, word: Word, line: int) -> None:
    text = word.text
    try:
        parsed = Requirement(text)
    except InvalidRequirement:
        return
    if parsed.url:
        return
    name = PACKAGE_NAME.match(text)
    match = _SPEC.match(text, name.end()) if name else None
    if match is None:
        scan.occurrences.append(Occurrence("pin", word, len(text), len(text), line, canonicalize_name(parsed.name)))
        return
    spec = match["spec"].rstrip()
    start = match.start("spec")
    scan.occurrences.append(Occurrence("pin", word, start, start + len(spec), line, canonicalize_name(parsed.name)))


def _exec_form(instr: Instruction) -> list[tuple[str, tuple[int, int] | None]] | None:
    """The strings of an exec-form RUN (``["pip", "install", ...]``) with their logical spans."""
    body = instr.text[instr.args_offset :].strip()
    if not body.startswith("["):
        return None
    try:
        values = json.loads(body)
    except ValueError:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return None
    found = []
    offset = instr.text.index("[", instr.args_offset)
    for match, value in zip(_EXEC_STRING.finditer(instr.text, offset), values, strict=False):
        exact = match[1] == value
        found.append((value, (match.start(1), match.end(1)) if exact else None))
    return found if len(found) == len(values) else None


def scan(text: str, build_args: Mapping[str, str] | None = None) -> Scan:
    """Every index URL and requirement of the pip installs in `text` (see the module docstring)."""
    lexed = lex(text)
    args = dict(build_args or {})
    result = Scan()
    globals_: Env = {}
    env: Env = globals_
    in_stage = False
    # A stage built FROM an earlier stage starts with that stage's ENV (its image config), not
    # its ARGs: each named stage's variables and the names ENV set (lower-case stage names, as
    # BuildKit compares them), both filled in place as the stage is read.
    stages: dict[str, tuple[Env, set[str]]] = {}
    env_names: set[str] = set()
    for instr in lexed.instructions:
        if instr.keyword == "FROM":
            parent, name = _stage_names(instr, lexed.escape)
            parent_env, parent_names = stages.get(parent or "", ({}, set()))
            env = {n: parent_env[n] for n in parent_names if parent_env.get(n) is not None}
            env_names, in_stage = set(env), True
            if name:
                stages[name] = (env, env_names)
        elif instr.keyword in ("ARG", "ENV"):
            if instr.keyword == "ENV" and not in_stage:
                continue
            declared = _declare(instr, lexed.escape, env, globals_, args, in_stage)
            if instr.keyword == "ENV":
                env_names.update(name for name, _s, _e in declared)
            for name, start, end in declared:
                value = env.get(name)
                if name in INDEX_VARIABLES and value is not None and start >= 0:
                    word = Word(list(value), instr.line)
                    for a, b in _index_spans(word.text):
                        result.occurrences.append(Occurrence("index", word, a, b, instr.line))
                del end
        elif instr.keyword == "RUN" and in_stage:
            _run(text, instr, lexed.escape, env, result)
    return result


def _stage_names(instr: Instruction, escape: str) -> tuple[str | None, str | None]:
    """A FROM's image word and its ``AS`` name, both lower case (a stage name when it is one)."""
    found = [w for w, _s, _e in words(instr.text, instr.args_offset, escape)]
    while found and found[0].startswith("--"):
        found = found[1:]
    if not found:
        return None, None
    name = found[2].lower() if len(found) >= 3 and found[1].lower() == "as" else None
    return found[0].lower(), name


def _run(text: str, instr: Instruction, escape: str, env: Env, result: Scan) -> None:
    exec_form = _exec_form(instr)
    if exec_form is not None:
        span_of = SpanOf(instr)
        words_ = [
            Word([Seg(v, Source(span_of(*s) if s else None, why=None if s else "is JSON-escaped"))], instr.line)
            for v, s in exec_form
        ]
        _command(words_, result, instr.line)
        return
    start = _after_flags(instr, escape)
    script, span_of = instr.text, SpanOf(instr)
    heredoc = _heredoc_script(text, instr, escape, start)
    if heredoc is not None:
        body_start, body_end = heredoc
        script, span_of, start = text[body_start:body_end], SpanOf(None, body_start), 0
    for command in shell_commands(script, start):
        found = [_word(script, a, b, env, span_of, instr.line) for a, b in command]
        read = [w for w in found if w is not None]
        if len(read) != len(found):
            result.problems.append(f"line {instr.line}: a RUN command cannot be read as shell words")
            continue
        _command(read, result, instr.line)


def _after_flags(instr: Instruction, escape: str) -> int:
    """Where a RUN's command starts, after ``--mount=...``, ``--network=...`` flags."""
    for word, start, end in words(instr.text, instr.args_offset, escape):
        if not word.startswith("--"):
            return start
        del end
    return len(instr.text)


def _heredoc_script(text: str, instr: Instruction, escape: str, start: int) -> tuple[int, int] | None:
    """File offsets of the script of ``RUN <<EOF`` (a heredoc that is the whole command)."""
    found = words(instr.text, start, escape)
    if len(found) != 1 or not found[0][0].startswith("<<"):
        return None
    name = found[0][0].lstrip("<").lstrip("-").replace('"', "").replace("'", "")
    last = instr.segments[-1]
    newline = text.find("\n", last.physical + last.length)
    if newline < 0 or not name:
        return None
    terminator = re.compile(rf"^\t*{re.escape(name)}\r*$", re.MULTILINE)
    match = terminator.search(text, newline + 1)
    return (newline + 1, match.start() if match else len(text))


def read_run_pins(text: str, build_args: Mapping[str, str] | None = None) -> CurrentPins:
    """The pins, ranges and index variant of the pip installs of a Dockerfile."""
    variant: str | None = None
    pins: dict[str, str] = {}
    ranges: dict[str, str] = {}
    for occ in scan(text, build_args).occurrences:
        if occ.kind == "index":
            span = url_variant(occ.text)
            variant = occ.text[span[0] : span[1]] if span else variant
        elif occ.name:
            add_requirement(occ.name, occ.text, pins, ranges)
    return CurrentPins(variant, pins, ranges)


def dockerfile_pins(text: str, build_args: dict[str, str] | None = None) -> CurrentPins:
    """The pins and index variant of the ``RUN ... pip install`` lines of a Dockerfile."""
    return read_run_pins(text, build_args)
