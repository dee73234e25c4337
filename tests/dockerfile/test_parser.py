"""FROM extraction over the fixture Dockerfiles: one row per FROM, exact skip reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.dockerfile.parser import parse_dockerfile, read_dockerfile
from tasks.errors import DockerfileError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"
DIGEST = "sha256:" + "a" * 64

# file -> [(line, image as resolved, alias, platform, skip_reason)]
EXPECTED = {
    "simple.Dockerfile": [(1, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", None, None, None)],
    "arg_tag.Dockerfile": [(4, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", None, None, None)],
    "arg_full.Dockerfile": [(2, "nvidia/cuda:12.6.0-cudnn-runtime-ubuntu22.04", None, None, None)],
    "arg_default_op.Dockerfile": [(2, "nvidia/cuda:12.4.1-base-ubuntu22.04", None, None, None)],
    "multistage.Dockerfile": [
        (1, "nvidia/cuda:12.6.0-devel-ubuntu22.04", "build", None, None),
        (4, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", "runtime", None, None),
        (7, "build", "test", None, "refers to the earlier build stage 'build'"),
    ],
    "platform.Dockerfile": [
        (1, None, "tools", "$BUILDPLATFORM", None),  # golang:1.22 resolves; platform kept as text
        (2, "nvcr.io/nvidia/pytorch:25.04-py3", None, "linux/amd64", None),
    ],
    "digest.Dockerfile": [(1, f"nvidia/cuda:12.6.3-runtime-ubuntu22.04@{DIGEST}", None, None, None)],
    "scratch.Dockerfile": [(1, "scratch", None, None, "scratch: no base image")],
    "escape_backtick.Dockerfile": [(3, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", "base", None, None)],
    "continuation.Dockerfile": [(1, "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "base", None, None)],
    "crlf.Dockerfile": [(2, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", None, None, None)],
    "unset_arg.Dockerfile": [(2, None, None, None, "FROM uses unset ARG CUDA (no default, no --build-arg)")],
    "undeclared_arg.Dockerfile": [
        (1, None, None, None, "FROM uses ARG IMAGE, which is not declared before the first FROM")
    ],
    "invalid_ref.Dockerfile": [
        (
            1,
            "NVIDIA/CUDA:12.6.0-runtime-ubuntu22.04",
            None,
            None,
            "invalid image reference 'NVIDIA/CUDA:12.6.0-runtime-ubuntu22.04': repository name must be lowercase",
        ),
    ],
    "registry_port.Dockerfile": [(1, "127.0.0.1:5000/nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04", None, None, None)],
    "heredoc.Dockerfile": [
        (1, "nvidia/cuda:12.6.3-base-ubuntu24.04", None, None, None),
        (7, "nvidia/cuda:12.6.3-runtime-ubuntu24.04", None, None, None),
    ],
    "comments_in_continuation.Dockerfile": [(1, "nvidia/cuda:12.9.1-devel-ubi9", None, None, None)],
    "lowercase.Dockerfile": [
        (1, "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", "Builder", None, None),
        (2, "builder", None, None, "refers to the earlier build stage 'builder'"),
    ],
    "ngc_igpu.Dockerfile": [(1, "nvcr.io/nvidia/pytorch:25.04-py3-igpu", None, None, None)],
    "arg_in_stage.Dockerfile": [
        (1, "nvidia/cuda:12.6.0-base-ubuntu22.04", None, None, None),
        (
            3,
            None,
            None,
            None,
            "FROM uses ARG STAGE_IMAGE, which is not declared before the first FROM",
        ),
    ],
    "build_arg.Dockerfile": [(2, "nvidia/cuda:12.1.0-runtime-ubuntu22.04", None, None, None)],
    "empty_from.Dockerfile": [
        (1, None, None, None, "FROM names no image"),
        (2, None, None, None, "unexpected text after the image: 'extra words'"),
    ],
}


def test_every_fixture_has_expectations() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extracts_every_from(name: str) -> None:
    parsed = read_dockerfile(FIXTURES / name, label=f"fixtures/{name}")
    got = [(b.line, b.image, b.alias, b.platform, b.skip_reason) for b in parsed.bases]
    expected = EXPECTED[name]
    if name == "platform.Dockerfile":
        expected = [(1, "golang:1.22", "tools", "$BUILDPLATFORM", None), expected[1]]
    assert got == expected
    assert all(b.file == f"fixtures/{name}" for b in parsed.bases)


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
        "RUN <<EOF\n",
    ]:
        parse_dockerfile(text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match=r"nope/Dockerfile: cannot read Dockerfile: No such file"):
        read_dockerfile(tmp_path / "nope" / "Dockerfile")
