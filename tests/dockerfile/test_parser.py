"""FROM extraction over the fixture Dockerfiles: one row per FROM, exact skip reasons."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tasks.dockerfile.parser import MAX_DOCKERFILE_BYTES, SKIP_CODES, parse_dockerfile, read_dockerfile
from tasks.errors import DockerfileError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"
DIGEST = "sha256:" + "a" * 64
D64 = "sha256:" + "0123456789abcdef" * 4

# file -> [(line, image as resolved, alias, platform, skip code, skip_reason)]
EXPECTED = {
    "simple.Dockerfile": [(1, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", None, None, None, None)],
    "arg_tag.Dockerfile": [(4, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", None, None, None, None)],
    "arg_full.Dockerfile": [(2, "nvidia/cuda:12.6.0-cudnn-runtime-ubuntu22.04", None, None, None, None)],
    "arg_default_op.Dockerfile": [(2, "nvidia/cuda:12.4.1-base-ubuntu22.04", None, None, None, None)],
    "multistage.Dockerfile": [
        (1, "nvidia/cuda:12.6.0-devel-ubuntu22.04", "build", None, None, None),
        (4, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", "runtime", None, None, None),
        (7, "build", "test", None, "stage-reference", "refers to the earlier build stage 'build'"),
    ],
    "platform.Dockerfile": [
        (1, "golang:1.22", "tools", "$BUILDPLATFORM", None, None),  # the platform is kept as text
        (2, "nvcr.io/nvidia/pytorch:25.04-py3", None, "linux/amd64", None, None),
    ],
    "digest.Dockerfile": [(1, f"nvidia/cuda:12.6.3-runtime-ubuntu22.04@{DIGEST}", None, None, None, None)],
    "scratch.Dockerfile": [(1, "scratch", None, None, "scratch", "scratch: no base image")],
    "escape_backtick.Dockerfile": [(3, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", "base", None, None, None)],
    "continuation.Dockerfile": [(1, "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "base", None, None, None)],
    "crlf.Dockerfile": [(2, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", None, None, None, None)],
    "unset_arg.Dockerfile": [
        (2, None, None, None, "unresolved-arg", "FROM uses unset ARG CUDA (no default, no --build-arg)")
    ],
    "undeclared_arg.Dockerfile": [
        (1, None, None, None, "unresolved-arg", "FROM uses ARG IMAGE, which is not declared before the first FROM")
    ],
    "invalid_ref.Dockerfile": [
        (
            1,
            "NVIDIA/CUDA:12.6.0-runtime-ubuntu22.04",
            None,
            None,
            "invalid-reference",
            "invalid image reference 'NVIDIA/CUDA:12.6.0-runtime-ubuntu22.04': repository name must be lowercase",
        ),
    ],
    "registry_port.Dockerfile": [
        (1, "127.0.0.1:5000/nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04", None, None, None, None)
    ],
    "heredoc.Dockerfile": [
        (1, "nvidia/cuda:12.6.3-base-ubuntu24.04", None, None, None, None),
        (7, "nvidia/cuda:12.6.3-runtime-ubuntu24.04", None, None, None, None),
    ],
    "comments_in_continuation.Dockerfile": [(1, "nvidia/cuda:12.9.1-devel-ubi9", None, None, None, None)],
    "lowercase.Dockerfile": [
        (1, "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", "Builder", None, None, None),
        (2, "builder", None, None, "stage-reference", "refers to the earlier build stage 'builder'"),
    ],
    "ngc_igpu.Dockerfile": [(1, "nvcr.io/nvidia/pytorch:25.04-py3-igpu", None, None, None, None)],
    "arg_in_stage.Dockerfile": [
        (1, "nvidia/cuda:12.6.0-base-ubuntu22.04", None, None, None, None),
        (
            3,
            None,
            None,
            None,
            "unresolved-arg",
            "FROM uses ARG STAGE_IMAGE, which is not declared before the first FROM",
        ),
    ],
    "build_arg.Dockerfile": [(2, "nvidia/cuda:12.1.0-runtime-ubuntu22.04", None, None, None, None)],
    "empty_from.Dockerfile": [
        (1, None, None, None, "empty-from", "FROM names no image"),
        (2, None, None, None, "malformed-from", "unexpected text after the image: 'extra words'"),
    ],
    # Global ARG defaults built from earlier global ARGs, two levels deep.
    "nested_arg.Dockerfile": [(8, "docker.io/nvidia/cuda:12.6.3-runtime-ubuntu22.04", "train", None, None, None)],
    # ${REGISTRY_PREFIX:-} with the ARG declared but unset: empty.
    "default_empty.Dockerfile": [(4, "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", None, None, None, None)],
    # ${MIRROR:+${MIRROR}/} with MIRROR unset: nothing.
    "alt_value.Dockerfile": [(4, "nvidia/cuda:12.9.1-base-ubuntu24.04", None, None, None, None)],
    # A stage ARG is out of scope for FROM, so ${RUNTIME_CUDA:-12.6.3} gives its word.
    "out_of_scope_default.Dockerfile": [
        (2, "nvidia/cuda:12.6.3-devel-ubuntu22.04", "build", None, None, None),
        (5, "nvidia/cuda:12.6.3-runtime-ubuntu22.04", None, None, None, None),
    ],
    "digest_arg.Dockerfile": [(3, f"nvidia/cuda:12.9.1-runtime-ubuntu22.04@{D64}", None, None, None, None)],
    "Containerfile": [(2, "nvidia/cuda:12.6.3-runtime-ubi9", None, None, None, None)],
    "app.containerfile": [(1, "nvcr.io/nvidia/pytorch:25.04-py3", None, None, None, None)],
    "multi_arg.Dockerfile": [(3, "nvidia/cuda:12.6.3-runtime-ubuntu22.04", None, None, None, None)],
    "shared_arg.Dockerfile": [
        (2, "nvidia/cuda:12.6.3-devel-ubuntu22.04", "build", None, None, None),
        (4, "myorg/runtime:12.6.3", None, None, None, None),
    ],
    # U+2028, U+0085, a form feed and a lone CR inside comments are not line breaks.
    "unicode_linebreaks.Dockerfile": [(4, "nvidia/cuda:12.6.3-base-ubuntu22.04", None, None, None, None)],
    "quoted_escaped.Dockerfile": [
        (3, "nvidia/cuda:12.6.3-runtime-ubuntu22.04", "quoted", None, None, None),
        (
            4,
            "nvidia/cuda:$CUDA",
            None,
            None,
            "invalid-reference",
            "invalid image reference 'nvidia/cuda:$CUDA': a tag is 1-128 characters of letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-'",
        ),
    ],
}


def test_every_fixture_has_expectations() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extracts_every_from(name: str) -> None:
    parsed = read_dockerfile(FIXTURES / name, label=f"fixtures/{name}")
    got = [(b.line, b.image, b.alias, b.platform, b.skip, b.skip_reason) for b in parsed.bases]
    assert got == EXPECTED[name]
    assert all(b.file == f"fixtures/{name}" for b in parsed.bases)
    for base in parsed.bases:
        assert (base.skip is None) == (base.skip_reason is None) == (base.reference is not None)
        assert base.skip is None or base.skip in SKIP_CODES


def test_reference_fields_are_parsed() -> None:
    base = read_dockerfile(FIXTURES / "registry_port.Dockerfile").bases[0]
    assert base.reference is not None
    assert (base.reference.registry, base.reference.repository, base.reference.tag) == (
        "127.0.0.1:5000",
        "nvidia/cuda",
        "12.8.1-cudnn-devel-ubuntu24.04",
    )
    pinned = read_dockerfile(FIXTURES / "digest.Dockerfile").bases[0].reference
    assert pinned is not None and pinned.digest == DIGEST and pinned.tag == "12.6.3-runtime-ubuntu22.04"


def test_build_arg_overrides_declared_arg_only() -> None:
    parsed = read_dockerfile(FIXTURES / "build_arg.Dockerfile", {"CUDA_VERSION": "12.6.3", "OTHER": "x"})
    assert parsed.bases[0].image == "nvidia/cuda:12.6.3-runtime-ubuntu22.04"
    assert parsed.bases[0].variables == ("CUDA_VERSION",)


def test_build_arg_fills_an_arg_without_default() -> None:
    parsed = read_dockerfile(FIXTURES / "unset_arg.Dockerfile", {"CUDA": "12.8.1"})
    assert parsed.bases[0].image == "nvidia/cuda:12.8.1-runtime-ubuntu22.04"
    assert parsed.bases[0].skip_reason is None


def test_escape_directive_is_read() -> None:
    parsed = read_dockerfile(FIXTURES / "escape_backtick.Dockerfile")
    assert parsed.escape == "`"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("FROM ${TARGETPLATFORM}/img\n", "FROM depends on build-platform ARG TARGETPLATFORM"),
        (
            "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04 AS\n",
            "unexpected text after the image: 'AS'",
        ),
        (
            "FROM a:b:c\n",
            "invalid image reference 'a:b:c': path component 'a:b' may only hold "
            "lowercase letters and digits joined by '.', '_', '__' or '-'",
        ),
        (
            "FROM nvidia/cuda:%s\n" % ("x" * 129),
            "invalid image reference 'nvidia/cuda:%s': a tag is "
            "1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'" % ("x" * 129),
        ),
    ],
)
def test_unresolvable_from_gives_skip_reason(text: str, reason: str) -> None:
    assert parse_dockerfile(text).bases[0].skip_reason == reason


def test_odd_input_never_crashes() -> None:
    for text in [
        "",
        "\n\n",
        "# only a comment\n",
        "FROM",
        "ARG\nFROM $",
        "FROM \\",
        "\x00\xff",
    ]:
        parse_dockerfile(text)
    with pytest.raises(DockerfileError, match="unterminated heredoc EOF"):  # refused, not a crash
        parse_dockerfile("RUN <<EOF\n")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match=r"nope/Dockerfile: cannot read Dockerfile: No such file"):
        read_dockerfile(tmp_path / "nope" / "Dockerfile")


# Docker's (BuildKit's) expansion rules for FROM, as tables: text, --build-arg values, and the
# image it names (or the skip code and reason). Each row is what `docker build` does.
@pytest.mark.parametrize(
    ("text", "build_args", "image"),
    [
        # Global ARG defaults use the global ARGs before them, in order.
        ("ARG A=1\nARG B=${A}.2\nFROM x:${B}\n", {}, "x:1.2"),
        ("ARG V=1\nARG V=${V}.5\nFROM x:${V}\n", {}, "x:1.5"),
        ("ARG V=1\nARG V\nFROM x:$V\n", {}, "x:1"),  # a re-declaration without default keeps the value
        ("ARG B=${A}x\nARG A=1\nFROM ${B}\n", {}, None),  # A is declared after B: see the skip table
        # --build-arg replaces a declared ARG, feeds later defaults, is not expanded itself.
        ("ARG CUDA=12.6.3\nARG TAG=${CUDA}-base\nFROM x:${TAG}\n", {"CUDA": "12.9.1"}, "x:12.9.1-base"),
        ("ARG A=1\nARG B=${A}\nFROM x:$B\n", {"B": "7"}, "x:7"),
        ("FROM x:${NOPE:-1}\n", {"NOPE": "9"}, "x:1"),  # undeclared: the build-arg does not apply
        ("ARG T\nFROM ${T}\n", {"T": "nvidia/cuda:13.0.2-base-ubuntu24.04"}, "nvidia/cuda:13.0.2-base-ubuntu24.04"),
        # ${V:-w}: w when V is unset or empty; ${V-w}: w only when unset.
        ("ARG V\nFROM ${V:-a}b\n", {}, "ab"),
        ("ARG V=\nFROM ${V:-a}b\n", {}, "ab"),
        ("ARG V=c\nFROM ${V:-a}b\n", {}, "cb"),
        ("ARG V\nFROM ${V-a}b\n", {}, "ab"),
        ("ARG V=\nFROM ${V-a}b\n", {}, "b"),
        # ${V:+w}: w when V is set and not empty; ${V+w}: w when set.
        ("ARG V\nFROM ${V:+a}b\n", {}, "b"),
        ("ARG V=\nFROM ${V:+a}b\n", {}, "b"),
        ("ARG V=c\nFROM ${V:+a}b\n", {}, "ab"),
        ("ARG V=\nFROM ${V+a}b\n", {}, "ab"),
        # The word may hold variables, and an out-of-scope or undeclared ARG is unset.
        ("ARG M=reg.io\nFROM ${M:+${M}/}app\n", {}, "reg.io/app"),
        ("ARG M\nFROM ${M:+${M}/}app\n", {"M": "127.0.0.1:5000"}, "127.0.0.1:5000/app"),
        ("ARG T=1\nFROM x:${T:-${U:-2}}\n", {}, "x:1"),
        ("FROM a\nARG S=9\nFROM x:${S:-3}\n", {}, "x:3"),
        ("FROM x:${UNDECLARED:-4}\n", {}, "x:4"),
        # Quotes are removed; the escape character keeps a '$' literal; '$$' is a shell parameter
        # that is never set, so it expands to nothing (as BuildKit does).
        ('ARG C=1\nFROM "x:${C}"\n', {}, "x:1"),
        ("FROM 'x:$C'\n", {}, "x:$C"),
        ("FROM x:\\$C\n", {}, "x:$C"),
        ("# escape=`\nFROM x:`$C\n", {}, "x:$C"),
        ("FROM x:1$$\n", {}, "x:1"),
        ('ARG B="nvidia/cuda:12.6.3-base-ubuntu22.04"\nFROM $B\n', {}, "nvidia/cuda:12.6.3-base-ubuntu22.04"),
        # Trimming and replacement, as BuildKit implements them.
        ("ARG V=12.6.3\nFROM x:${V%.*}\n", {}, "x:12.6"),
        ("ARG V=12.6.3\nFROM x:${V%%.*}\n", {}, "x:12"),
        ("ARG V=12.6.3\nFROM x:${V#*.}\n", {}, "x:6.3"),
        ("ARG V=12.6.3\nFROM x:${V##*.}\n", {}, "x:3"),
        ("ARG V=12.6.3\nFROM x:${V/./-}\n", {}, "x:12-6.3"),
        ("ARG V=12.6.3\nFROM x:${V//./-}\n", {}, "x:12-6-3"),
        # The build-platform ARGs: host-dependent unless given or declared with a default.
        ("FROM ${TARGETARCH}/x\n", {"TARGETARCH": "amd64"}, "amd64/x"),
        ("ARG TARGETARCH=arm64\nFROM ${TARGETARCH}/x\n", {}, "arm64/x"),
        # A byte-order mark, CRLF and trailing carriage returns are not content.
        ("\ufeffFROM x:1\r\n", {}, "x:1"),
        ("FROM x:1\r\r\n", {}, "x:1"),
    ],
)
def test_from_expands_as_docker_does(text: str, build_args: dict[str, str], image: str | None) -> None:
    base = parse_dockerfile(text, build_args=build_args).bases[-1]
    assert base.image == image
    if image is not None and "$" not in image:
        assert base.skip is None and base.reference is not None


@pytest.mark.parametrize(
    ("text", "build_args", "skip", "reason"),
    [
        ("FROM ${TARGETPLATFORM}/img\n", {}, "unresolved-arg", "FROM depends on build-platform ARG TARGETPLATFORM"),
        (
            "ARG TARGETARCH\nFROM x:${TARGETARCH}\n",
            {},
            "unresolved-arg",
            "FROM depends on build-platform ARG TARGETARCH",
        ),
        ("ARG CUDA\nFROM x:${CUDA}\n", {}, "unresolved-arg", "FROM uses unset ARG CUDA (no default, no --build-arg)"),
        (
            "ARG TAG=${CUDA}-base\nFROM x:${TAG}\n",
            {},
            "unresolved-arg",
            "FROM uses ARG CUDA, which is not declared before the first FROM",
        ),
        (
            "ARG B=${A}x\nARG A=1\nFROM ${B}\n",
            {},
            "unresolved-arg",
            "FROM uses ARG A before its declaration at line 2 gives it a value",
        ),
        ("ARG V\nFROM x:${V:?set_V}\n", {}, "unresolved-arg", "FROM x:${V:?set_V}: V: set_V"),
        # FROM is split on blanks before expansion, as BuildKit does: the message is two fields.
        ("ARG V\nFROM x:${V:?set V}\n", {}, "malformed-from", "unexpected text after the image: 'V}'"),
        ("ARG V=\nFROM x:${V:?}\n", {}, "unresolved-arg", "FROM x:${V:?}: V: is not allowed to be empty"),
        ("FROM x:${V\n", {}, "malformed-from", "FROM x:${V: syntax error: missing '}'"),
        ("FROM x:${}\n", {}, "malformed-from", "FROM x:${}: syntax error: bad substitution"),
        ("FROM x:${V:x}\n", {}, "malformed-from", "FROM x:${V:x}: unsupported modifier (:x) in substitution"),
        (
            'FROM "x:1\n',
            {},
            "malformed-from",
            'FROM "x:1: unexpected end of statement while looking for matching double-quote',
        ),
        (
            "ARG A=${B\nFROM x:$A\n",
            {},
            "unresolved-arg",
            "an ARG this FROM uses cannot be expanded: line 1: syntax error: missing '}'",
        ),
        ("FROM\n", {}, "empty-from", "FROM names no image"),
        ("ARG E=\nFROM ${E}\n", {}, "empty-from", "FROM ${E} expands to nothing"),
        ("FROM x AS\n", {}, "malformed-from", "unexpected text after the image: 'AS'"),
        ("FROM x y z w\n", {}, "malformed-from", "unexpected text after the image: 'y z w'"),
        (
            "FROM x AS 1st\n",
            {},
            "malformed-from",
            "invalid name for build stage: '1st', name can't start with a number or contain symbols",
        ),
        ("FROM --pull=always x\n", {}, "malformed-from", "unknown flag: pull"),
        ("FROM --platform x\n", {}, "malformed-from", "missing a value on flag: platform"),
        # BuildKit's fields are split on ASCII blanks only: U+00A0 belongs to the word.
        ("FROM x\u00a0AS y\n", {}, "malformed-from", "unexpected text after the image: 'y'"),
        ("FROM scratch\n", {}, "scratch", "scratch: no base image"),
        (
            "FROM Scratch\n",  # BuildKit compares "scratch" exactly
            {},
            "invalid-reference",
            "invalid image reference 'Scratch': repository name must be lowercase",
        ),
        ("FROM a AS base\nFROM BASE\n", {}, "stage-reference", "refers to the earlier build stage 'BASE'"),
        (
            "FROM NVIDIA/CUDA:12.6.0-base-ubuntu22.04\n",
            {},
            "invalid-reference",
            "invalid image reference 'NVIDIA/CUDA:12.6.0-base-ubuntu22.04': repository name must be lowercase",
        ),
        (
            "ARG U=2\nFROM x:${U}\n",
            {"U": "${T}"},
            "invalid-reference",
            "invalid image reference 'x:${T}': a tag is 1-128 characters of letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'",
        ),
    ],
)
def test_unresolvable_from_gets_a_skip_code(text: str, build_args: dict[str, str], skip: str, reason: str) -> None:
    base = parse_dockerfile(text, build_args=build_args).bases[-1]
    assert (base.skip, base.skip_reason) == (skip, reason)
    assert base.reference is None


def test_skip_codes_are_the_documented_set() -> None:
    assert SKIP_CODES == (
        "scratch",
        "stage-reference",
        "unresolved-arg",
        "invalid-reference",
        "empty-from",
        "malformed-from",
    )


def test_nested_args_resolve_through_build_args() -> None:
    parsed = read_dockerfile(
        FIXTURES / "nested_arg.Dockerfile", {"REGISTRY": "127.0.0.1:5000", "CUDA": "12.9.1", "OTHER": "x"}
    )
    base = parsed.bases[0]
    assert base.image == "127.0.0.1:5000/nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    assert base.reference is not None and base.reference.registry == "127.0.0.1:5000"
    assert base.variables == ("BASE_IMAGE",)
    assert parsed.arg_values()["BASE_TAG"] == "12.9.1-runtime-ubuntu22.04"


def test_alt_and_default_fixtures_take_the_mirror_when_given() -> None:
    alt = read_dockerfile(FIXTURES / "alt_value.Dockerfile", {"MIRROR": "127.0.0.1:5000"}).bases[0]
    assert alt.image == "127.0.0.1:5000/nvidia/cuda:12.9.1-base-ubuntu24.04"
    empty = read_dockerfile(FIXTURES / "default_empty.Dockerfile", {"REGISTRY_PREFIX": "127.0.0.1:5000/"}).bases[0]
    assert empty.image == "127.0.0.1:5000/nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"


def test_digest_pinned_from_has_tag_and_digest() -> None:
    for name in ("digest.Dockerfile", "digest_arg.Dockerfile"):
        ref = read_dockerfile(FIXTURES / name).bases[0].reference
        assert ref is not None and ref.tag is not None and ref.digest is not None
    pinned = read_dockerfile(FIXTURES / "digest_arg.Dockerfile").bases[0].reference
    assert pinned is not None and (pinned.tag, pinned.digest) == ("12.9.1-runtime-ubuntu22.04", D64)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "Dockerfile"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_dockerfile(fifo)
            outcome.append(None)
        except BaseException as exc:  # reported to the main thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader so the test process can finish
        with open(fifo, "wb"):
            pass
        pytest.fail("read_dockerfile blocked on a FIFO")
    assert isinstance(outcome[0], DockerfileError)
    assert str(outcome[0]) == f"{fifo}: cannot read Dockerfile: it is a FIFO (named pipe), not a regular file"


def test_a_directory_or_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError) as info:
        read_dockerfile(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read Dockerfile: it is a directory, not a regular file"
    with pytest.raises(
        DockerfileError, match=r"^/dev/null: cannot read Dockerfile: it is a device, not a regular file$"
    ):
        read_dockerfile(Path("/dev/null"))


def test_files_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n" + b"#" * MAX_DOCKERFILE_BYTES)
    size = path.stat().st_size
    with pytest.raises(DockerfileError) as info:
        read_dockerfile(path)
    assert str(info.value) == (
        f"{path}: Dockerfile is {size} bytes, over the {MAX_DOCKERFILE_BYTES}-byte limit; check that this is "
        "the Dockerfile you mean (no real Dockerfile is this large)"
    )
    assert MAX_DOCKERFILE_BYTES == 1024 * 1024
    assert read_dockerfile(path, max_bytes=size).bases[0].image == "nvidia/cuda:12.6.3-base-ubuntu22.04"
    with pytest.raises(DockerfileError, match="over the 10-byte limit"):
        read_dockerfile(path, max_bytes=10)
