"""The lexer reads lines, comments, continuations, directives and heredocs as BuildKit does."""

from __future__ import annotations

import pytest

from tasks.dockerfile.lexer import lex
from tasks.dockerfile.parser import parse_dockerfile
from tasks.errors import DockerfileError


def froms(text: str) -> list[tuple[int, str | None]]:
    return [(b.line, b.image or b.raw) for b in parse_dockerfile(text).bases]


@pytest.mark.parametrize(
    "separator",
    ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\r", "\x1c", "\x1d", "\x1e"],
)
def test_only_newline_ends_a_line(separator: str) -> None:
    # Python's str.splitlines splits on every one of these; Docker splits on "\n" only.
    text = f"# a comment{separator}FROM evil/phantom:1\nFROM nvidia/cuda:12.6.3-base-ubuntu22.04\n"
    assert froms(text) == [(2, "nvidia/cuda:12.6.3-base-ubuntu22.04")]


def test_separators_inside_a_from_stay_in_the_line() -> None:
    # U+2028 is neither a line break nor a field separator: one FROM with fields 'a:1\u2028FROM', 'b:2'.
    bases = parse_dockerfile("FROM a:1\u2028FROM b:2\n").bases
    assert [(b.skip, b.skip_reason) for b in bases] == [("malformed-from", "unexpected text after the image: 'b:2'")]
    (only,) = parse_dockerfile("FROM a:1\u2028\n").bases  # trailing Unicode blanks are trimmed
    assert only.image == "a:1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM a:1\r\nFROM b:2\r\n", [(1, "a:1"), (2, "b:2")]),
        ("FROM a:1\r\r\n", [(1, "a:1")]),
        ("\ufeffFROM a:1\n", [(1, "a:1")]),
        ("FROM \\\n  a:1\n", [(1, "a:1")]),
        ("FROM \\  \t\n a:1 \\\n\n# dropped\n  \t\n AS b\n", [(1, "a:1")]),
        ("  \t FROM a:1\n", [(1, "a:1")]),
        ("\u3000FROM a:1\n", [(1, "a:1")]),  # Unicode blanks before the keyword are trimmed
        ("from a:1\nFrOm b:2\n", [(1, "a:1"), (2, "b:2")]),
        ("RUN echo \\\n# FROM not:this\nFROM x:1\n", []),  # the comment is dropped, FROM x:1 is RUN text
        ("RUN echo \\\nFROM x:1\nFROM y:1\n", [(3, "y:1")]),
    ],
)
def test_lines_and_continuations(text: str, expected: list[tuple[int, str]]) -> None:
    assert froms(text) == expected


def test_continuation_keeps_the_alias() -> None:
    base = parse_dockerfile("FROM \\  \t\n a:1 \\\n\n# dropped\n  \t\n AS b\n").bases[0]
    assert (base.image, base.alias) == ("a:1", "b")


@pytest.mark.parametrize(
    ("text", "escape", "expected"),
    [
        ("# escape=`\nFROM a:1 `\n AS b\n", "`", [(2, "a:1")]),
        ("#escape = ` \nFROM a:1\n", "`", [(2, "a:1")]),
        ("# syntax=docker/dockerfile:1\n# escape=`\nFROM a:1\n", "`", [(3, "a:1")]),
        # A blank line, a comment or an unknown directive ends the directives.
        ("\n# escape=`\nFROM a:1 `\n", "\\", [(3, "a:1")]),  # 'a:1' '`': two fields, see below
        ("# hello\n# escape=`\nFROM a:1\n", "\\", [(3, "a:1")]),
        ("# foo=bar\n# escape=`\nFROM a:1\n", "\\", [(3, "a:1")]),
    ],
)
def test_parser_directives(text: str, escape: str, expected: list[tuple[int, str]]) -> None:
    parsed = parse_dockerfile(text)
    assert parsed.escape == escape
    assert [(b.line, b.image or b.raw) for b in parsed.bases] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # BuildKit refuses these files; reading them as if it did not would be a guess
        ("# escape=x\nFROM a:1\n", "Dockerfile: line 1: invalid escape token 'x' does not match ` or \\"),
        ("# escape=`\n# escape=`\nFROM a:1\n", "Dockerfile: line 2: only one escape parser directive can be used"),
        ("FROM a:1\nRUN echo <<EOF\n", "Dockerfile: line 2: unterminated heredoc EOF"),
    ],
)
def test_a_file_buildkit_refuses_is_an_error_naming_why(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(text)
    assert message in str(info.value)


def test_unknown_directive_means_backtick_is_not_a_continuation() -> None:
    base = parse_dockerfile("# foo=bar\n# escape=`\nFROM a:1 `\n AS b\n").bases[0]
    assert (base.skip, base.skip_reason) == ("malformed-from", "unexpected text after the image: '`'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RUN <<EOT\nFROM x:1\nEOT\nFROM y:1\n", [(4, "y:1")]),
        ("RUN <<-EOT\n\tFROM x:1\n\tEOT\nFROM y:1\n", [(4, "y:1")]),
        # Without '-', a tab-indented terminator is content: the heredoc runs on.
        ("RUN <<EOT\nFROM x:1\n\tEOT\nFROM y:1\nEOT\nFROM z:1\n", [(6, "z:1")]),
        ("COPY <<'A' <<\"B\" /dst/\nFROM x:1\nA\nFROM y:1\nB\nFROM z:1\n", [(6, "z:1")]),
        ("RUN cat <<EOF > /f\nFROM x:1\nEOF\r\nFROM y:1\n", [(4, "y:1")]),
        ("RUN echo '<<' a\nFROM y:1\n", [(2, "y:1")]),  # '<<' alone opens nothing
        # the delimiter as the shell reads it: <<\EOF ends at EOF (the later FROM was lost)
        ("FROM a:1 AS a\nRUN cat <<\\EOF > /x\nhi\nEOF\nFROM y:1\n", [(1, "a:1"), (5, "y:1")]),
        # ONBUILD RUN opens its heredoc too (its body is not a FROM)
        ("FROM a:1 AS a\nONBUILD RUN <<EOF\nFROM x:1\nEOF\nFROM y:1\n", [(1, "a:1"), (5, "y:1")]),
        # an escaped escape at the end of a line is no continuation (C:\\ ends the RUN)
        ("FROM a:1 AS a\nRUN echo c:\\\\\nFROM y:1\n", [(1, "a:1"), (3, "y:1")]),
        ("# escape=`\nFROM a:1 AS a\nRUN echo ``\nFROM y:1\n", [(2, "a:1"), (4, "y:1")]),
    ],
)
def test_heredocs(text: str, expected: list[tuple[int, str]]) -> None:
    assert froms(text) == expected


def test_spans_map_logical_text_back_to_the_file() -> None:
    text = "FROM \\\n    nvidia/cuda:12.6.3 \\\n    AS base\n"
    instr = lex(text).instructions[0]
    assert instr.text == "FROM     nvidia/cuda:12.6.3     AS base"
    start = instr.text.index("nvidia")
    span = instr.physical_span(start, start + len("nvidia/cuda:12.6.3"))
    assert span is not None and text[span[0] : span[1]] == "nvidia/cuda:12.6.3"
    assert instr.physical_span(start, len(instr.text)) is None  # crosses a line break
    assert (instr.line, instr.end_line, instr.end_offset) == (1, 3, len(text))


def test_a_long_continued_line_is_one_instruction() -> None:
    text = "RUN echo \\\n" + "  part \\\n" * 20_000 + "  end\nFROM nvidia/cuda:12.6.3-base-ubuntu22.04\n"
    lexed = lex(text)
    assert [i.keyword for i in lexed.instructions] == ["RUN", "FROM"]
    assert lexed.instructions[0].text.count("part") == 20_000
    assert lexed.instructions[1].line == 20_003
