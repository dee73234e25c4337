"""Property tests: references and tags generated from Docker's grammar (and arbitrary text)
round-trip through parse and str, and nothing but the project's errors ever comes out."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import ImageReferenceError, TagError
from tasks.images.reference import DIGEST_ALGORITHMS, NAME_TOTAL_LENGTH_MAX, ImageReference, parse_reference
from tasks.images.tags import CudaTag, NgcTag

# Bounded so each property takes a few seconds; no example database is written.
BOUNDED = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

alnum = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
separator = st.sampled_from([".", "_", "__", "-", "--"])


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = [draw(alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(separator), draw(alnum)]
    return "".join(parts)


domain_label = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
port = st.integers(1, 65535).map(lambda p: f":{p}")


@st.composite
def domains(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["dotted", "localhost", "ipv6", "docker.io", "index.docker.io"]))
    if kind == "dotted":
        host = ".".join(draw(st.lists(domain_label, min_size=2, max_size=3)))
    elif kind == "ipv6":
        host = "[" + draw(st.from_regex(r"[0-9a-f]{0,4}:[0-9a-f:]{1,10}", fullmatch=True)) + "]"
    else:
        host = kind
    return host + (draw(port) if draw(st.booleans()) and kind != "docker.io" else "")


tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)


@st.composite
def digests(draw: st.DrawFn) -> str:
    algorithm = draw(st.sampled_from(sorted(DIGEST_ALGORITHMS)))
    hexdigits = draw(
        st.text("0123456789abcdef", min_size=DIGEST_ALGORITHMS[algorithm], max_size=DIGEST_ALGORITHMS[algorithm])
    )
    return f"{algorithm}:{hexdigits}"


@st.composite
def references(draw: st.DrawFn) -> str:
    path = "/".join(draw(st.lists(path_components(), min_size=1, max_size=3)))
    domain = draw(domains()) if draw(st.booleans()) else None
    if domain is None and "/" in path and "." in path.split("/", 1)[0]:
        domain = "docker.io"  # without it Docker reads the dotted first component as a registry host
    text = f"{domain}/{path}" if domain else path
    if draw(st.booleans()):
        text += ":" + draw(tags)
    if draw(st.booleans()):
        text += "@" + draw(digests())
    return text


def _canonical_length(ref: ImageReference) -> int:
    return len(ref.registry) + 1 + len(ref.repository)


@BOUNDED
@given(references())
def test_grammar_references_round_trip(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ImageReferenceError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        # The rules the generator does not enforce: the 255-character canonical name and a bare
        # 64-hex name (an image ID).
        assert "longer than" in refusal or "image ID" in refusal, refusal
        return
    assert _canonical_length(ref) <= NAME_TOTAL_LENGTH_MAX
    again = parse_reference(str(ref))
    assert again == ref
    assert str(again) == str(ref)


@BOUNDED
@given(
    st.text(max_size=80)
    | references().map(lambda r: r + "\n")
    | st.builds(lambda a, b, c: a + b + c, references(), st.characters(), references())
)
def test_arbitrary_text_is_refused_or_round_trips(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ImageReferenceError:
        return
    assert re.fullmatch(r"[\x21-\x7e]+", text), f"accepted a reference with a forbidden character: {text!r}"
    assert parse_reference(str(ref)) == ref


@BOUNDED
@given(references(), st.integers(0, 200), st.characters())
def test_any_non_ascii_or_control_character_is_refused(text: str, where: int, char: str) -> None:
    if "\x21" <= char <= "\x7e":
        return
    where %= len(text) + 1
    mutated = text[:where] + char + text[where:]
    try:
        parse_reference(mutated)
    except ImageReferenceError:
        return
    raise AssertionError(f"accepted {mutated!r}")


@BOUNDED
@given(st.text(max_size=140) | tags | tags.map(lambda t: t + "\n") | st.builds(str.__add__, tags, st.characters()))
def test_with_tag_refuses_or_keeps_a_docker_tag(tag: str) -> None:
    base = parse_reference("nvidia/cuda")
    docker_tag = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) is not None
    try:
        ref = base.with_tag(tag)
    except ImageReferenceError:
        assert not docker_tag, f"refused a valid tag {tag!r}"
        return
    assert docker_tag, f"accepted {tag!r}, which Docker refuses"
    assert parse_reference(str(ref)) == ref and ref.tag == tag


version_number = st.integers(0, 40)


@st.composite
def cuda_tags(draw: st.DrawFn) -> CudaTag:
    flavor = draw(st.sampled_from(["base", "runtime", "devel"]))
    extra = None if flavor == "base" else draw(st.sampled_from([None, "cudnn", "cudnn8", "cudnn9", "tensorrt"]))
    os_name = draw(
        st.sampled_from(["ubuntu", "ubi", "rockylinux", "centos", "oraclelinux", "amzn", "azl", "cm", "opensuse"])
    )
    os_version = draw(st.from_regex(r"[0-9]{1,4}(?:\.[0-9]{1,2})?", fullmatch=True))
    version = (draw(version_number), draw(version_number), draw(version_number))
    return CudaTag(version, flavor, os_name, os_version, extra)  # type: ignore[arg-type]


@BOUNDED
@given(cuda_tags())
def test_cuda_tags_round_trip(tag: CudaTag) -> None:
    text = str(tag)
    assert CudaTag.parse(text) == tag
    assert str(CudaTag.parse(text)) == text
    assert parse_reference(f"nvidia/cuda:{text}").tag == text


@BOUNDED
@given(
    st.from_regex(
        r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-cudnn[0-9]?|-tensorrt)?-(base|runtime|devel)-(ubuntu|ubi|azl)[0-9]{1,3}(\.[0-9]{2})?",
        fullmatch=True,
    )
    | st.text(max_size=40)
)
def test_cuda_tag_strings_parse_back_exactly_or_are_refused(text: str) -> None:
    try:
        tag = CudaTag.parse(text)
    except TagError:
        return
    assert str(tag) == text


@BOUNDED
@given(st.from_regex(r"[0-9]{2}\.[0-9]{2}-py[0-9](-igpu)?", fullmatch=True) | st.text(max_size=20))
def test_ngc_tags_parse_back_exactly_or_are_refused(text: str) -> None:
    try:
        tag = NgcTag.parse(text)
    except TagError:
        return
    assert str(tag) == text
    assert NgcTag.parse(str(tag)) == tag
