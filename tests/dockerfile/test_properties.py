"""Property tests for reading and rewriting Dockerfiles.

Generated Dockerfiles write a known reference through ARGs in every form the parser supports
(plain, nested defaults, ``${U:-word}`` with U unset, ``${S:+word}`` with S set, quotes,
continuations, CRLF, the backtick escape), so what they name is known by construction:

- the parser finds that reference;
- a rewrite to the same reference is byte-identical;
- every rewrite that succeeds re-parses to its target and moves no other FROM, and every
  refusal is a DockerfileError;
- the lexer and parser raise nothing on arbitrary text, and every FROM either has a
  reference or a skip code.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.dockerfile.parser import SKIP_CODES, parse_dockerfile, read_dockerfile
from tasks.dockerfile.rewrite import new_image_text, rewrite_base
from tasks.errors import DockerfileError
from tasks.images.reference import parse_reference

BOUNDED = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
REFERENCES = [
    "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
    "nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04",
    f"nvidia/cuda:12.9.1-base-ubi9@{D1}",
    "docker.io/nvidia/cuda:12.8.1-runtime-ubuntu22.04",
    "127.0.0.1:5000/nvidia/cuda:13.0.0-base-ubuntu24.04",
    "nvcr.io/nvidia/pytorch:25.04-py3",
]
TARGET_TAGS = [
    "12.6.3-runtime-ubuntu22.04",
    "12.9.1-runtime-ubuntu22.04",
    "12.10.0-runtime-ubuntu22.04",
    "13.0.2-cudnn-devel-ubuntu24.04",
    "12.6.3-runtime-ubuntu24.04",
    "12.9.1-base-ubi9",
    "25.10-py3",
    "1",
]


@dataclass(frozen=True)
class Generated:
    text: str
    image: str  # what the first FROM names
    line_ending: str


@st.composite
def written_through_args(draw: st.DrawFn, image: str, names: list[str], args: list[str]) -> str:
    """`image` as a FROM template: cut into pieces, each written literally or through an ARG."""
    cuts = sorted(draw(st.sets(st.integers(1, len(image) - 1), max_size=4)))
    pieces = [image[a:b] for a, b in zip([0, *cuts], [*cuts, len(image)], strict=True)]
    template = []
    for piece in pieces:
        mode = draw(st.sampled_from(["literal", "arg", "quoted", "nested", "default", "alternative", "undeclared"]))
        name = f"A{len(names)}"
        names.append(name)
        if mode == "literal":
            template.append(piece)
        elif mode in ("arg", "quoted"):
            value = f'"{piece}"' if mode == "quoted" else piece
            args.append(f"ARG {name}={value}")
            template.append(f"${{{name}}}")
        elif mode == "nested" and len(piece) > 1:
            inner = f"{name}I"
            split = draw(st.integers(1, len(piece) - 1))
            args.append(f"ARG {inner}={piece[split:]}")
            args.append(f"ARG {name}={piece[:split]}${{{inner}}}")
            template.append(f"${{{name}}}")
        elif mode == "default":
            if draw(st.booleans()):
                args.append(f"ARG {name}")
            template.append(f"${{{name}:-{piece}}}")
        elif mode == "alternative":
            args.append(f"ARG {name}=on")
            template.append(f"${{{name}:+{piece}}}")
        else:  # undeclared: out of scope, so ':-' gives the word
            template.append(f"${{{name}:-{piece}}}")
    return "".join(template)


@st.composite
def dockerfiles(draw: st.DrawFn) -> Generated:
    image = draw(st.sampled_from(REFERENCES))
    escape = draw(st.sampled_from(["\\", "`"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    names: list[str] = []
    args: list[str] = []
    template = draw(written_through_args(image, names, args))
    lines = []
    if escape == "`":
        lines.append("# escape=`")
    lines.append("# a comment\u2028FROM not/this:one")
    lines.extend(args)
    alias = draw(st.sampled_from(["", " AS build", " as Base"]))
    if draw(st.booleans()):
        lines.append(f"FROM {escape}")
        lines.append("# dropped inside the continuation")
        lines.append(f"    {template}{alias}")
    else:
        lines.append(f"FROM {template}{alias}")
    lines.append(f"RUN echo one {escape}")
    lines.append("  two")
    if draw(st.booleans()):
        lines.append("RUN <<EOF")
        lines.append("FROM also/not:this")
        lines.append("EOF")
    second = draw(st.sampled_from(["", "FROM ubuntu:24.04", "FROM " + template]))
    if second:
        lines.append(second)
    return Generated(eol.join(lines) + eol, image, eol)


@BOUNDED
@given(dockerfiles())
def test_generated_dockerfiles_name_their_image(generated: Generated) -> None:
    parsed = parse_dockerfile(generated.text)
    base = parsed.bases[0]
    assert (base.image, base.skip_reason) == (generated.image, None)
    assert base.reference == parse_reference(generated.image)
    assert all(b.image != "not/this:one" and b.image != "also/not:this" for b in parsed.bases)


@BOUNDED
@given(dockerfiles())
def test_rewrite_to_the_same_image_is_byte_identical(generated: Generated) -> None:
    parsed = parse_dockerfile(generated.text)
    for base in parsed.bases:
        if base.reference is not None:
            assert rewrite_base(parsed, base, base.reference) == generated.text


@BOUNDED
@given(dockerfiles(), st.sampled_from(TARGET_TAGS), st.sampled_from([None, D2]), st.booleans())
def test_every_successful_rewrite_names_its_target(
    generated: Generated, tag: str, digest: str | None, split: bool
) -> None:
    parsed = parse_dockerfile(generated.text)
    base = parsed.bases[0]
    assert base.reference is not None
    target = base.reference.with_tag(tag, digest=digest)
    try:
        text = rewrite_base(parsed, base, target, split_arg=split)
    except DockerfileError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert refusal.startswith(f"{base.location}: "), refusal
        return
    after = parse_dockerfile(text)
    assert after.bases[0].image == new_image_text(base, target, allow_unpin=True)
    assert after.bases[0].reference == target
    for old, new in zip(parsed.bases[1:], after.bases[1:], strict=True):
        moved_with_it = old.reference == base.reference and new.reference == target
        assert new.image == old.image or moved_with_it

    # Only ARG and FROM lines (and the FROM's continuation line) change; line endings are kept.
    def kept(text: str) -> list[str]:
        return [line for line in text.split(generated.line_ending) if not line.startswith(("ARG ", "FROM ", "    "))]

    assert kept(text) == kept(generated.text)
    assert text.count("\n") - text.count(generated.line_ending) == generated.text.count("\n") - generated.text.count(
        generated.line_ending
    )


characters = (
    st.sampled_from(list("FROMARGRUN fromarg${}:-+?#%/\\`'\"\n\r\t=@.aZ019_<\u2028\x85\x0c\ufeff")) | st.characters()
)


@BOUNDED
@given(st.text(characters, max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    parsed = parse_dockerfile(text)
    for base in parsed.bases:
        assert (base.reference is None) == (base.skip in SKIP_CODES)
        assert (base.skip is None) == (base.skip_reason is None)
        if base.reference is not None:
            assert rewrite_base(parsed, base, base.reference) == text
            with contextlib.suppress(DockerfileError):
                rewrite_base(parsed, base, base.reference.with_tag("12.9.1-runtime-ubuntu22.04"), split_arg=True)


@settings(max_examples=100, deadline=None, database=None)
@given(st.binary(max_size=400) | st.text(characters, max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_from_a_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Dockerfile"
        path.write_bytes(data)
        if len(data) > 300:
            with pytest.raises(DockerfileError, match="over the 300-byte limit"):
                read_dockerfile(path, max_bytes=300)
            return
        parsed = read_dockerfile(path, max_bytes=300)
        assert parsed.text.encode("utf-8", "surrogateescape") == data
