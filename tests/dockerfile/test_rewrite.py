"""Exact-substring rewriting: only the intended bytes change; no change is byte-identical."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tasks.dockerfile.parser import parse_dockerfile, read_dockerfile
from tasks.dockerfile.rewrite import rewrite_base
from tasks.errors import DockerfileError
from tasks.images.reference import parse_reference

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(a) == len(b), "a rewrite never adds or removes lines"
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_rewrite_to_same_image_is_byte_identical(name: str) -> None:
    parsed = read_dockerfile(FIXTURES / name)
    raw = (FIXTURES / name).read_bytes()
    assert parsed.text.encode("utf-8", "surrogateescape") == raw
    for base in parsed.bases:
        if base.reference is not None:
            assert rewrite_base(parsed, base, base.reference) == parsed.text


@pytest.mark.parametrize(
    ("name", "stage", "new", "expected_changes"),
    [
        (
            "simple.Dockerfile",
            0,
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
            [
                (
                    "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n",
                    "FROM nvidia/cuda:12.6.3-runtime-ubuntu22.04\n",
                )
            ],
        ),
        (
            "arg_tag.Dockerfile",
            0,
            "nvidia/cuda:12.8.1-runtime-ubuntu22.04",
            [("ARG CUDA_VERSION=12.6.0\n", "ARG CUDA_VERSION=12.8.1\n")],
        ),
        (
            "arg_full.Dockerfile",
            0,
            "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04",
            [
                (
                    'ARG BASE_IMAGE="nvidia/cuda:12.6.0-cudnn-runtime-ubuntu22.04"\n',
                    'ARG BASE_IMAGE="nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04"\n',
                )
            ],
        ),
        (
            "multistage.Dockerfile",
            1,
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
            [
                (
                    "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04 AS runtime\n",
                    "FROM nvidia/cuda:12.6.3-runtime-ubuntu22.04 AS runtime\n",
                )
            ],
        ),
        (
            "continuation.Dockerfile",
            0,
            "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04",
            [
                (
                    "    nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \\\n",
                    "    nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04 \\\n",
                )
            ],
        ),
        (
            "crlf.Dockerfile",
            0,
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
            [("ARG CUDA_VERSION=12.6.0\r\n", "ARG CUDA_VERSION=12.6.3\r\n")],
        ),
        (
            "escape_backtick.Dockerfile",
            0,
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
            [("ARG CUDA=12.6.0\n", "ARG CUDA=12.6.3\n")],
        ),
        (
            "digest.Dockerfile",
            0,
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04@sha256:" + "b" * 64,
            [
                (
                    "FROM nvidia/cuda:12.6.3-runtime-ubuntu22.04@sha256:" + "a" * 64 + "\n",
                    "FROM nvidia/cuda:12.6.3-runtime-ubuntu22.04@sha256:" + "b" * 64 + "\n",
                )
            ],
        ),
        (
            "platform.Dockerfile",
            1,
            "nvcr.io/nvidia/pytorch:25.10-py3",
            [
                (
                    "FROM --platform=linux/amd64 nvcr.io/nvidia/pytorch:25.04-py3\n",
                    "FROM --platform=linux/amd64 nvcr.io/nvidia/pytorch:25.10-py3\n",
                )
            ],
        ),
        (
            "registry_port.Dockerfile",
            0,
            "127.0.0.1:5000/nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04",
            [
                (
                    "FROM 127.0.0.1:5000/nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04\n",
                    "FROM 127.0.0.1:5000/nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04\n",
                )
            ],
        ),
    ],
)
def test_rewrite_changes_only_the_reference(
    name: str, stage: int, new: str, expected_changes: list[tuple[str, str]]
) -> None:
    parsed = read_dockerfile(FIXTURES / name)
    after = rewrite_base(parsed, parsed.bases[stage], parse_reference(new))
    assert changed_lines(parsed.text, after) == expected_changes
    assert parse_dockerfile(after).bases[stage].image == new.removeprefix("docker.io/")


def test_arg_template_with_two_variables_changes_only_the_one_that_differs() -> None:
    parsed = read_dockerfile(FIXTURES / "arg_tag.Dockerfile")
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.6.3-runtime-ubuntu24.04"))
    assert changed_lines(parsed.text, after) == [
        ("ARG CUDA_VERSION=12.6.0\n", "ARG CUDA_VERSION=12.6.3\n"),
        ("ARG UBUNTU=22.04\n", "ARG UBUNTU=24.04\n"),
    ]


@pytest.mark.parametrize(
    ("name", "build_args", "new", "message"),
    [
        (
            "arg_default_op.Dockerfile",
            {},
            "nvidia/cuda:12.4.2-base-ubuntu22.04",
            "arg_default_op.Dockerfile:2: 'nvidia/cuda:12.4.2-base-ubuntu22.04' cannot be written through "
            "the template 'nvidia/cuda:${CUDA:-12.4.1}-base-ubuntu22.04'; change the FROM line by hand",
        ),
        (
            "build_arg.Dockerfile",
            {"CUDA_VERSION": "12.6.0"},
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
            "build_arg.Dockerfile:2: ARG CUDA_VERSION is set by --build-arg; change it where the build is "
            "invoked, not in the Dockerfile",
        ),
        (
            "arg_tag.Dockerfile",
            {},
            "nvidia/cuda:12.6.3-devel-ubi9",
            "arg_tag.Dockerfile:4: 'nvidia/cuda:12.6.3-devel-ubi9' cannot be written through the template "
            "'nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU}'; change the FROM line by hand",
        ),
        (
            "simple.Dockerfile",
            {},
            "docker.io/library/ubuntu:24.04",
            "simple.Dockerfile:1: refusing to change repository docker.io/nvidia/cuda to "
            "docker.io/library/ubuntu; only the tag or digest of a base image is rewritten",
        ),
        (
            "scratch.Dockerfile",
            {},
            "ubuntu:24.04",
            "scratch.Dockerfile:1: cannot rewrite a skipped FROM (scratch: no base image)",
        ),
    ],
)
def test_rewrite_refusals_are_clear(name: str, build_args: dict[str, str], new: str, message: str) -> None:
    parsed = read_dockerfile(FIXTURES / name, build_args, label=name)
    with pytest.raises(DockerfileError) as info:
        rewrite_base(parsed, parsed.bases[0], parse_reference(new))
    assert str(info.value) == message


def test_non_utf8_bytes_survive_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"# caf\xe9 latin-1 comment\r\nFROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\r\n")
    parsed = read_dockerfile(path)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.6.3-runtime-ubuntu22.04"))
    assert after.encode("utf-8", "surrogateescape") == (
        b"# caf\xe9 latin-1 comment\r\nFROM nvidia/cuda:12.6.3-runtime-ubuntu22.04\r\n"
    )


def test_unified_diff_is_one_line() -> None:
    parsed = read_dockerfile(FIXTURES / "multistage.Dockerfile")
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.6.3-devel-ubuntu22.04"))
    diff = [
        line
        for line in difflib.unified_diff(parsed.text.splitlines(), after.splitlines(), lineterm="")
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        "-FROM nvidia/cuda:12.6.0-devel-ubuntu22.04 AS build",
        "+FROM nvidia/cuda:12.6.3-devel-ubuntu22.04 AS build",
    ]
