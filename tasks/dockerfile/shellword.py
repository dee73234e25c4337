"""BuildKit's word expansion for FROM and ARG values, with where every piece came from.

Follows moby/buildkit ``frontend/dockerfile/shell/lex.go`` (``ProcessWord``): ``$NAME`` and
``${NAME}``; ``${NAME-word}``/``${NAME:-word}`` (word when unset / unset or empty),
``${NAME+word}``/``${NAME:+word}`` (word when set / set and not empty), ``${NAME?msg}``/
``${NAME:?msg}``, ``${NAME#pat}``/``##``/``%``/``%%`` and ``${NAME/pat/repl}``/``//``. The word
may itself hold variables and is expanded whether or not it is used (as BuildKit does, so an
error inside it is an error). Single quotes are literal; inside double quotes the escape
character escapes only ``"``, ``$`` and itself; outside quotes it escapes any character. A
``$`` not followed by a name is a literal ``$``; ``$$`` is the special parameter ``$``, which is
never set, so it expands to nothing, as in BuildKit.

Parsing keeps positions (offsets in the instruction's logical text) so a rewrite can edit the
exact characters a value came from. Parsing and expansion are linear in the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

MAX_NESTING = 32
_SPECIAL_PARAMS = "@*#?-$!0"


class WordSyntaxError(Exception):
    """The word cannot be expanded (BuildKit refuses the Dockerfile); `unresolved` when the
    cause is a ``${NAME?message}`` check rather than the syntax."""

    def __init__(self, message: str, *, unresolved: bool = False) -> None:
        super().__init__(message)
        self.unresolved = unresolved


@dataclass(frozen=True)
class Lit:
    """Literal text; [start, end) is where it sits in the source, `exact` when the source
    characters are the text itself (no escape or quote in between)."""

    text: str
    start: int
    end: int
    exact: bool = True


@dataclass(frozen=True)
class Var:
    """A variable reference; `op` is '' (plain), '-', '+', '?', '#', '%', '/' or '//'."""

    name: str
    start: int
    end: int
    name_start: int
    name_end: int
    op: str = ""
    colon: bool = False
    word: tuple[Part, ...] = ()
    pattern: tuple[Part, ...] = ()


Part = Lit | Var


@dataclass(frozen=True)
class Value:
    """An expanded value. `missing`: names used plainly while unset (BuildKit expands them to
    nothing); `unknown`: names whose value depends on the build host; `deps`: the ARG
    declarations (by index) it was computed from; `origin`: the declaration that set it."""

    text: str
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    deps: frozenset[int] = field(default_factory=frozenset)
    origin: int | None = None
    error: str | None = None


def parse_word(text: str, start: int = 0, end: int | None = None, escape: str = "\\") -> tuple[Part, ...]:
    """The parts of the word text[start:end]; raises WordSyntaxError as BuildKit would."""
    stop = len(text) if end is None else end
    special = _patterns(escape)[0][None]
    if special.search(text, start, stop) is None:  # plain text: the common case
        return (Lit(text[start:stop], start, stop),) if stop > start else ()
    if stop - start >= 2 and text[start] in "'\"" and text[stop - 1] == text[start]:
        inner = special.search(text, start + 1, stop - 1)
        if inner is None:  # "plain text" or 'plain text': the quotes go, the rest is as written
            return (Lit(text[start + 1 : stop - 1], start + 1, stop - 1),) if stop - start > 2 else ()
    parser = _Parser(text, stop, escape)
    parser.index = start
    return tuple(parser.until(None, raw=False, depth=0))


_PATTERNS: dict[str, tuple[dict[str | None, re.Pattern[str]], re.Pattern[str]]] = {}


def _patterns(escape: str) -> tuple[dict[str | None, re.Pattern[str]], re.Pattern[str]]:
    """The characters that end a plain run (per stop character), and inside double quotes."""
    found = _PATTERNS.get(escape)
    if found is None:
        esc = re.escape(escape)
        plain = {stop: re.compile(rf"[$'\"{esc}{re.escape(stop or '')}]") for stop in (None, "}", "/")}
        found = _PATTERNS[escape] = (plain, re.compile(rf"[$\"{esc}]"))
    return found


def variables(parts: tuple[Part, ...]) -> tuple[str, ...]:
    """Every variable name the parts refer to, in order, without repeats (words included)."""
    return tuple(dict.fromkeys(var.name for var in walk_vars(parts)))


def walk_vars(parts: tuple[Part, ...]) -> Iterator[Var]:
    for part in parts:
        if isinstance(part, Var):
            yield part
            yield from walk_vars(part.pattern)
            yield from walk_vars(part.word)


class _Parser:
    def __init__(self, text: str, end: int, escape: str) -> None:
        self.text = text
        self.end = end
        self.escape = escape
        self.index = 0
        self._plain, self._in_double = _patterns(escape)

    def _run(self, pattern: re.Pattern[str]) -> int:
        match = pattern.search(self.text, self.index, self.end)
        return match.start() if match else self.end

    def until(self, stop: str | None, *, raw: bool, depth: int) -> list[Part]:
        """BuildKit's processStopOn: parts up to (and past) `stop`, or to the end."""
        parts: list[Part] = []
        text, esc = self.text, self.escape
        plain = self._plain[stop]
        while self.index < self.end:
            char = text[self.index]
            if stop is not None and char == stop:
                self.index += 1
                return _merge(parts)
            if char == "$":
                parts.append(self._dollar(depth))
            elif char == "'":
                self._single(parts)
            elif char == '"':
                self._double(parts, raw=raw, depth=depth)
            elif char == esc:
                at = self.index
                if at + 1 >= self.end:
                    if raw:
                        parts.append(Lit(esc, at, at + 1))
                    self.index = self.end
                    break
                if raw:
                    parts.append(Lit(text[at : at + 2], at, at + 2))
                else:
                    parts.append(Lit(text[at + 1], at, at + 2, exact=False))
                self.index = at + 2
            else:
                at = self.index
                self.index = max(at + 1, self._run(plain))
                parts.append(Lit(text[at : self.index], at, self.index))
        if stop is not None:
            raise WordSyntaxError(f"unexpected end of statement while looking for matching {stop}")
        return _merge(parts)

    def _single(self, parts: list[Part]) -> None:
        at = self.index
        close = self.text.find("'", at + 1, self.end)
        if close < 0:
            raise WordSyntaxError("unexpected end of statement while looking for matching single-quote")
        if close > at + 1:
            parts.append(Lit(self.text[at + 1 : close], at + 1, close))
        self.index = close + 1

    def _double(self, parts: list[Part], *, raw: bool, depth: int) -> None:
        text, esc = self.text, self.escape
        self.index += 1
        while True:
            if self.index >= self.end:
                raise WordSyntaxError("unexpected end of statement while looking for matching double-quote")
            at = self.index
            char = text[at]
            if char == '"':
                self.index += 1
                return
            if char == "$":
                parts.append(self._dollar(depth))
            elif char == esc:
                if at + 1 >= self.end:
                    self.index += 1
                    continue
                if text[at + 1] in ('"', "$", esc):
                    if raw:
                        parts.append(Lit(text[at : at + 2], at, at + 2))
                    else:
                        parts.append(Lit(text[at + 1], at, at + 2, exact=False))
                    self.index = at + 2
                else:
                    # Any other escape is kept as it is (twice in raw mode: BuildKit writes it twice).
                    parts.append(Lit(esc * 2, at, at + 1, exact=False) if raw else Lit(esc, at, at + 1))
                    self.index = at + 1
            else:
                self.index = max(at + 1, self._run(self._in_double))
                parts.append(Lit(text[at : self.index], at, self.index))

    def _name_end(self, at: int) -> int:
        text, end = self.text, self.end
        if at >= end:
            return at
        char = text[at]
        if char.isdecimal():
            while at < end and text[at].isdecimal():
                at += 1
            return at
        if char in _SPECIAL_PARAMS:
            return at + 1
        while at < end and (text[at].isalpha() or text[at].isdecimal() or text[at] == "_"):
            at += 1
        return at

    def _dollar(self, depth: int) -> Part:
        text, end = self.text, self.end
        start = self.index
        at = start + 1
        if at >= end or text[at] != "{":
            name_end = self._name_end(at)
            self.index = name_end
            if name_end == at:
                return Lit("$", start, start + 1)
            return Var(text[at:name_end], start, name_end, at, name_end)
        if depth >= MAX_NESTING:
            raise WordSyntaxError(f"variables nested more than {MAX_NESTING} deep")
        at += 1
        if at >= end:
            raise WordSyntaxError("syntax error: missing '}'")
        if text[at] in "{}:":
            raise WordSyntaxError("syntax error: bad substitution")
        name_end = self._name_end(at)
        name = text[at:name_end]
        if name_end >= end:
            raise WordSyntaxError("syntax error: missing '}'")
        op = text[name_end]
        self.index = name_end + 1
        if op == "}":
            return Var(name, start, self.index, at, name_end)
        colon = op == ":"
        if colon:
            op = text[self.index] if self.index < end else ""
            self.index += 1
        if colon or op in "+-?#%":
            word = self._word("}", raw=op in "#%", depth=depth)
            if op not in ("+", "-", "?", "#", "%"):
                raise WordSyntaxError(f"unsupported modifier ({':' if colon else ''}{op}) in substitution")
            return Var(name, start, self.index, at, name_end, op, colon, tuple(word))
        if op == "/":
            if self.index < end and text[self.index] == "/":
                op = "//"
                self.index += 1
            pattern = self._word("/", raw=True, depth=depth, missing="syntax error: missing '/' in ${}")
            replacement = self._word("}", raw=True, depth=depth)
            return Var(name, start, self.index, at, name_end, op, False, tuple(replacement), tuple(pattern))
        raise WordSyntaxError(f"unsupported modifier ({op}) in substitution")

    def _word(self, stop: str, *, raw: bool, depth: int, missing: str = "syntax error: missing '}'") -> list[Part]:
        try:
            return self.until(stop, raw=raw, depth=depth + 1)
        except WordSyntaxError as exc:
            if self.index >= self.end:
                raise WordSyntaxError(missing) from exc
            raise


def _merge(parts: list[Part]) -> list[Part]:
    """Join literal pieces that are contiguous and exact, so a value is one editable piece."""
    merged: list[Part] = []
    for part in parts:
        last = merged[-1] if merged else None
        if isinstance(part, Lit) and isinstance(last, Lit) and part.exact and last.exact and last.end == part.start:
            merged[-1] = Lit(last.text + part.text, last.start, part.end)
        else:
            merged.append(part)
    return merged


def evaluate(parts: tuple[Part, ...], env: Mapping[str, Value]) -> Value:
    """Expand `parts` with `env` (absent names are unset); raises WordSyntaxError."""
    out: list[str] = []
    missing: list[str] = []
    unknown: list[str] = []
    deps: set[int] = set()
    error = None
    for part in parts:
        if isinstance(part, Lit):
            out.append(part.text)
            continue
        value = _variable(part, env)
        out.append(value.text)
        missing.extend(value.missing)
        unknown.extend(value.unknown)
        deps.update(value.deps)
        error = error or value.error
    return Value(
        "".join(out), tuple(dict.fromkeys(missing)), tuple(dict.fromkeys(unknown)), frozenset(deps), None, error
    )


def _variable(var: Var, env: Mapping[str, Value]) -> Value:
    value = env.get(var.name)
    deps = value.deps if value is not None else frozenset()
    if var.op == "":
        if value is None:
            # $$, $1, $@...: shell parameters, never ARGs; BuildKit expands them to nothing.
            return Value("", missing=(var.name,) if _is_arg_name(var.name) else ())
        return value
    word = evaluate(var.word, env)
    deps = deps | word.deps
    is_set = value is not None
    if value is not None and value.unknown and (var.colon or var.op not in "-+"):
        return Value("", unknown=value.unknown, deps=deps)
    empty = value is not None and value.text == ""
    if var.op == "-":
        if not is_set or (var.colon and empty):
            return _with_deps(word, deps)
        assert value is not None
        return _with_deps(value, deps)
    if var.op == "+":
        if not is_set or (var.colon and empty):
            return Value("", deps=deps)
        return _with_deps(word, deps)
    if var.op == "?":
        if not is_set:
            raise WordSyntaxError(f"{var.name}: {word.text or 'is not allowed to be unset'}", unresolved=True)
        if var.colon and empty:
            raise WordSyntaxError(f"{var.name}: {word.text or 'is not allowed to be empty'}", unresolved=True)
        assert value is not None
        return _with_deps(value, deps)
    subject = value.text if value is not None else ""
    taint = Value(
        "",
        missing=(value.missing if value is not None else (var.name,) if _is_arg_name(var.name) else ()) + word.missing,
        unknown=(value.unknown if value is not None else ()) + word.unknown,
        deps=deps,
        error=(value.error if value is not None else None) or word.error,
    )
    if var.op in ("#", "%"):
        pattern, greedy = word.text, False
        if pattern.startswith(var.op):
            pattern, greedy = pattern[1:], True
        if var.op == "#":
            result = _trim_prefix(pattern, subject, greedy)
        else:
            result = _trim_prefix(_reverse_pattern(pattern), subject[::-1], greedy)[::-1]
        return _with_text(taint, result)
    pattern_value = evaluate(var.pattern, env)
    regex = _shell_pattern(pattern_value.text, greedy=True, anchored=False)
    count = 0 if var.op == "//" else 1
    result = regex.sub(lambda _m: word.text, subject, count=count)
    return _with_text(taint, result)


def _is_arg_name(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_")


def _with_deps(value: Value, deps: frozenset[int]) -> Value:
    return Value(value.text, value.missing, value.unknown, value.deps | deps, value.origin, value.error)


def _with_text(value: Value, text: str) -> Value:
    return Value(text, value.missing, value.unknown, value.deps, None, value.error)


def _shell_pattern(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """BuildKit's convertShellPatternToRegex: ``*`` and ``?`` wildcards, ``\\`` escapes them."""
    out = [r"\A"] if anchored else []
    star = ".*" if greedy else ".*?"
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append(star)
        elif char == "?":
            out.append(".")
        elif char == "\\":
            following = pattern[index + 1] if index + 1 < len(pattern) else ""
            if following in ("}", "/"):
                index += 1
                continue
            if following not in ("*", "?", "\\"):
                raise WordSyntaxError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'")
            out.append(re.escape(following))
            index += 1
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))


def _trim_prefix(pattern: str, subject: str, greedy: bool) -> str:
    match = _shell_pattern(pattern, greedy=greedy, anchored=True).search(subject)
    return subject[match.end() :] if match else subject


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each ``\\x`` escape in order (as BuildKit does for ``%``)."""
    pieces = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            pieces.append(pattern[index : index + 2])
            index += 2
        else:
            pieces.append(pattern[index])
            index += 1
    return "".join(reversed(pieces))
