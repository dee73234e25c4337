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
            # ${CUDA:-12.4.1} with CUDA unset: the word is what names the image, so it is edited.
            "arg_default_op.Dockerfile",
            0,
            "nvidia/cuda:12.4.2-base-ubuntu22.04",
            [
                (
                    "FROM nvidia/cuda:${CUDA:-12.4.1}-base-ubuntu22.04\n",
                    "FROM nvidia/cuda:${CUDA:-12.4.2}-base-ubuntu22.04\n",
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
            "'nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU}' (ARGs CUDA_VERSION, UBUNTU); change the FROM "
            "line by hand",
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


D_OLD = "sha256:" + "a" * 64
D_NEW = "sha256:" + "b" * 64
D64 = "sha256:" + "0123456789abcdef" * 4


def rewrite(name: str, new: str, stage: int = 0, build_args: dict[str, str] | None = None, **kw: object) -> str:
    parsed = read_dockerfile(FIXTURES / name, build_args, label=name)
    return rewrite_base(parsed, parsed.bases[stage], parse_reference(new), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("new", "minor", "patch"),
    [
        ("12.9.1", "12.9", "1"),
        ("12.10.0", "12.10", "0"),
        ("13.0.2", "13.0", "2"),
        ("12.6.4", "12.6", "4"),
        ("12.8.3", "12.8", "3"),
    ],
)
def test_each_arg_of_a_template_gets_its_part(new: str, minor: str, patch: str) -> None:
    before = (FIXTURES / "multi_arg.Dockerfile").read_text()
    after = rewrite("multi_arg.Dockerfile", f"nvidia/cuda:{new}-runtime-ubuntu22.04")
    expected = [
        ("ARG CUDA_MINOR=12.6\n", f"ARG CUDA_MINOR={minor}\n"),
        ("ARG CUDA_PATCH=3\n", f"ARG CUDA_PATCH={patch}\n"),
    ]
    assert changed_lines(before, after) == [(a, b) for a, b in expected if a != b]
    assert parse_dockerfile(after).bases[0].image == f"nvidia/cuda:{new}-runtime-ubuntu22.04"


@pytest.mark.parametrize(
    ("text", "new", "message"),
    [
        (
            # Two digits-only ARGs side by side: 345 splits as 3|45 or 34|5, both of the old shape.
            "ARG A=1\nARG B=2\nFROM x:${A}${B}\n",
            "x:345",
            "Dockerfile:3: 'x:345' can be written through the template 'x:${A}${B}' in more than one way "
            "(ARGs A, B: A=3 and B=45 or A=34 and B=5); set the ARGs by hand",
        ),
        (
            # No split keeps the shape of both old values.
            "ARG A=a\nARG B=b\nFROM x:${A}-${B}\n",
            "x:c-d-e",
            "Dockerfile:3: 'x:c-d-e' can be written through the template 'x:${A}-${B}' in more than one way "
            "(ARGs A, B: A=c and B=d-e or A=c-d and B=e); set the ARGs by hand",
        ),
    ],
)
def test_ambiguous_templates_are_refused_naming_the_args(text: str, new: str, message: str) -> None:
    parsed = parse_dockerfile(text)
    with pytest.raises(DockerfileError) as info:
        rewrite_base(parsed, parsed.bases[0], parse_reference(new))
    assert str(info.value) == message


def test_appending_a_digest_changes_only_the_arg_that_ends_the_tag() -> None:
    # Every solution changes some value's shape (the digest is new), but only one changes one ARG.
    text = "ARG A=u\nARG B=ntu22.04\nFROM nvidia/cuda:12.6.3-runtime-ub${A}${B}\n"
    parsed = parse_dockerfile(text)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference(f"nvidia/cuda:12.6.3-runtime-ubuntu24.04@{D_NEW}"))
    assert changed_lines(text, after) == [("ARG B=ntu22.04\n", f"ARG B=ntu24.04@{D_NEW}\n")]


def test_too_many_ways_is_refused() -> None:
    text = "".join(f"ARG V{i}=1\n" for i in range(8)) + "FROM x:" + "".join(f"${{V{i}}}" for i in range(8)) + "\n"
    parsed = parse_dockerfile(text)
    with pytest.raises(DockerfileError, match="in too many ways to choose one; change the FROM line by hand"):
        rewrite_base(parsed, parsed.bases[0], parse_reference("x:" + "2" * 40))


def test_fewest_changes_wins_among_solutions_of_the_same_shape() -> None:
    text = "ARG A=12\nARG B=6\nFROM x:${A}${B}\n"
    parsed = parse_dockerfile(text)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("x:129"))
    assert changed_lines(text, after) == [("ARG B=6\n", "ARG B=9\n")]


@pytest.mark.parametrize(
    ("new", "changes"),
    [
        ("docker.io/nvidia/cuda:12.9.1-runtime-ubuntu22.04", [("ARG CUDA=12.6.3\n", "ARG CUDA=12.9.1\n")]),
        ("docker.io/nvidia/cuda:12.6.3-devel-ubuntu22.04", [("ARG FLAVOR=runtime\n", "ARG FLAVOR=devel\n")]),
        (
            "docker.io/nvidia/cuda:13.0.2-runtime-ubuntu24.04",
            [("ARG CUDA=12.6.3\n", "ARG CUDA=13.0.2\n"), ("ARG OS=ubuntu22.04\n", "ARG OS=ubuntu24.04\n")],
        ),
    ],
)
def test_nested_args_change_the_innermost_default(new: str, changes: list[tuple[str, str]]) -> None:
    before = (FIXTURES / "nested_arg.Dockerfile").read_text()
    after = rewrite("nested_arg.Dockerfile", new)
    assert changed_lines(before, after) == changes
    assert parse_dockerfile(after).bases[0].image == new


def test_template_text_inside_an_arg_default_is_edited_there() -> None:
    text = "ARG CUDA=12.6.3\nARG IMG=nvidia/cuda:${CUDA}-base-ubuntu22.04\nFROM ${IMG}\n"
    parsed = parse_dockerfile(text)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.6.3-base-ubuntu24.04"))
    assert changed_lines(text, after) == [
        (
            "ARG IMG=nvidia/cuda:${CUDA}-base-ubuntu22.04\n",
            "ARG IMG=nvidia/cuda:${CUDA}-base-ubuntu24.04\n",
        )
    ]


@pytest.mark.parametrize(
    ("text", "new", "changes"),
    [
        # the ARG holds major.minor, the FROM line the patch: a new minor changes both
        (
            "ARG CUDA=12.6\nFROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04\n",
            "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
            [
                ("ARG CUDA=12.6\n", "ARG CUDA=12.9\n"),
                (
                    "FROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04\n",
                    "FROM nvidia/cuda:${CUDA}.1-runtime-ubuntu22.04\n",
                ),
            ],
        ),
        # a new patch of the same minor is the FROM line's text alone
        (
            "ARG CUDA=12.6\nFROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04\n",
            "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
            [("FROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04\n", "FROM nvidia/cuda:${CUDA}.3-runtime-ubuntu22.04\n")],
        ),
        # the version ARG and the flavor/OS text of the ARG default that uses it
        (
            "ARG CUDA=12.6.3\nARG IMG=nvidia/cuda:${CUDA}-base-ubuntu22.04\nFROM ${IMG}\n",
            "nvidia/cuda:12.9.1-devel-ubuntu24.04",
            [
                ("ARG CUDA=12.6.3\n", "ARG CUDA=12.9.1\n"),
                ("ARG IMG=nvidia/cuda:${CUDA}-base-ubuntu22.04\n", "ARG IMG=nvidia/cuda:${CUDA}-devel-ubuntu24.04\n"),
            ],
        ),
    ],
)
def test_an_arg_and_the_template_text_beside_it_change_together(
    text: str, new: str, changes: list[tuple[str, str]]
) -> None:
    """Regression: neither the ARG alone nor the text alone spells 12.9.1, and the rewrite was
    refused ("change the FROM line by hand"); both change, each keeping its shape."""
    parsed = parse_dockerfile(text)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference(new))
    assert changed_lines(text, after) == changes
    assert parse_dockerfile(after).bases[0].image == new


def test_an_arg_and_text_change_that_would_reshape_either_is_refused() -> None:
    text = "ARG CUDA=12.6\nFROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04\n"
    parsed = parse_dockerfile(text)
    with pytest.raises(DockerfileError, match="cannot be written through the template"):
        rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.9.1-runtime-ubi9"))


def test_template_text_beside_an_arg_is_edited_in_place() -> None:
    text = "ARG REGISTRY=127.0.0.1:5000\nFROM ${REGISTRY}/nvidia/cuda:12.6.3-base-ubuntu22.04 AS base\n"
    parsed = parse_dockerfile(text)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("127.0.0.1:5000/nvidia/cuda:12.9.1-base-ubuntu22.04"))
    assert changed_lines(text, after) == [
        (
            "FROM ${REGISTRY}/nvidia/cuda:12.6.3-base-ubuntu22.04 AS base\n",
            "FROM ${REGISTRY}/nvidia/cuda:12.9.1-base-ubuntu22.04 AS base\n",
        )
    ]


@pytest.mark.parametrize(
    ("name", "stage", "build_args", "new", "changes"),
    [
        (
            "out_of_scope_default.Dockerfile",
            1,
            {},
            "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
            [
                (
                    "FROM nvidia/cuda:${RUNTIME_CUDA:-12.6.3}-runtime-ubuntu22.04\n",
                    "FROM nvidia/cuda:${RUNTIME_CUDA:-12.9.1}-runtime-ubuntu22.04\n",
                )
            ],
        ),
        (
            "alt_value.Dockerfile",
            0,
            {},
            "nvidia/cuda:13.0.2-base-ubuntu24.04",
            [("ARG CUDA_TAG=12.9.1-base-ubuntu24.04\n", "ARG CUDA_TAG=13.0.2-base-ubuntu24.04\n")],
        ),
        (
            "alt_value.Dockerfile",
            0,
            {"MIRROR": "127.0.0.1:5000"},
            "127.0.0.1:5000/nvidia/cuda:13.0.2-base-ubuntu24.04",
            [("ARG CUDA_TAG=12.9.1-base-ubuntu24.04\n", "ARG CUDA_TAG=13.0.2-base-ubuntu24.04\n")],
        ),
        (
            "default_empty.Dockerfile",
            0,
            {"REGISTRY_PREFIX": "127.0.0.1:5000/"},
            "127.0.0.1:5000/nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04",
            [("ARG CUDA=12.8.1\n", "ARG CUDA=12.9.1\n")],
        ),
        (
            "quoted_escaped.Dockerfile",
            0,
            {},
            "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
            [("ARG CUDA=12.6.3\n", "ARG CUDA=12.9.1\n")],
        ),
    ],
)
def test_rewrite_through_default_and_alternative_words(
    name: str, stage: int, build_args: dict[str, str], new: str, changes: list[tuple[str, str]]
) -> None:
    before = (FIXTURES / name).read_text()
    after = rewrite(name, new, stage, build_args)
    assert changed_lines(before, after) == changes
    assert parse_dockerfile(after, build_args=build_args).bases[stage].image == new


def test_digest_pinned_from_gets_the_new_tag_and_digest() -> None:
    target = parse_reference("nvidia/cuda:12.6.3-runtime-ubuntu22.04").with_tag(
        "12.9.1-runtime-ubuntu22.04", digest=D_NEW
    )
    before = (FIXTURES / "digest.Dockerfile").read_text()
    after = rewrite("digest.Dockerfile", str(target))
    assert changed_lines(before, after) == [
        (
            f"FROM nvidia/cuda:12.6.3-runtime-ubuntu22.04@{D_OLD}\n",
            f"FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04@{D_NEW}\n",
        )
    ]
    reparsed = parse_dockerfile(after).bases[0].reference
    assert reparsed == target


def test_digest_pinned_through_args_changes_both_args() -> None:
    before = (FIXTURES / "digest_arg.Dockerfile").read_text()
    after = rewrite("digest_arg.Dockerfile", f"nvidia/cuda:13.0.2-runtime-ubuntu22.04@{D_NEW}")
    assert changed_lines(before, after) == [
        ("ARG CUDA_TAG=12.9.1-runtime-ubuntu22.04\n", "ARG CUDA_TAG=13.0.2-runtime-ubuntu22.04\n"),
        (f"ARG CUDA_DIGEST={D64}\n", f"ARG CUDA_DIGEST={D_NEW}\n"),
    ]


@pytest.mark.parametrize("name", ["digest.Dockerfile", "digest_arg.Dockerfile"])
def test_dropping_a_digest_pin_is_refused_unless_asked(name: str) -> None:
    parsed = read_dockerfile(FIXTURES / name, label=name)
    base = parsed.bases[0]
    assert base.reference is not None and base.reference.digest is not None
    with pytest.raises(DockerfileError) as info:
        rewrite_base(parsed, base, parse_reference("nvidia/cuda:12.9.1-runtime-ubuntu22.04"))
    assert str(info.value) == (
        f"{name}:{base.line}: the FROM is pinned by digest ({base.reference.digest}) and the target "
        "nvidia/cuda:12.9.1-runtime-ubuntu22.04 has none; rewriting it would drop the pin. Resolve the target's "
        "digest from the registry and pin it (tag@sha256:...), or allow dropping the pin explicitly"
    )
    unpinned = parse_reference("nvidia/cuda:12.9.1-runtime-ubuntu22.04")
    if name == "digest.Dockerfile":
        after = rewrite_base(parsed, base, unpinned, allow_unpin=True)
        assert parse_dockerfile(after).bases[0].image == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    else:  # '@${CUDA_DIGEST}' is template text: no value of the ARGs drops it
        with pytest.raises(DockerfileError, match="cannot be written through the template"):
            rewrite_base(parsed, base, unpinned, allow_unpin=True)


def test_an_arg_shared_with_another_from_is_refused() -> None:
    with pytest.raises(DockerfileError) as info:
        rewrite("shared_arg.Dockerfile", "nvidia/cuda:12.9.1-devel-ubuntu22.04")
    assert str(info.value) == (
        "shared_arg.Dockerfile:2: ARG CUDA also feeds shared_arg.Dockerfile:4 (FROM myorg/runtime:${CUDA}), "
        "which would change from 'myorg/runtime:12.6.3' to 'myorg/runtime:12.9.1'. Plan that FROM too, or split "
        "the ARG so this FROM gets its own (split_arg / --split-arg)"
    )


def test_a_shared_arg_may_move_a_from_planned_to_the_same_value() -> None:
    before = (FIXTURES / "shared_arg.Dockerfile").read_text()
    after = rewrite(
        "shared_arg.Dockerfile",
        "nvidia/cuda:12.9.1-devel-ubuntu22.04",
        planned={1: parse_reference("myorg/runtime:12.9.1")},
    )
    assert changed_lines(before, after) == [("ARG CUDA=12.6.3\n", "ARG CUDA=12.9.1\n")]
    with pytest.raises(DockerfileError, match=r"also feeds shared_arg\.Dockerfile:4"):
        rewrite(
            "shared_arg.Dockerfile",
            "nvidia/cuda:12.9.1-devel-ubuntu22.04",
            planned={1: parse_reference("myorg/runtime:13.0.0")},
        )


def test_split_arg_gives_this_from_its_own_arg() -> None:
    before = (FIXTURES / "shared_arg.Dockerfile").read_text()
    after = rewrite("shared_arg.Dockerfile", "nvidia/cuda:12.9.1-devel-ubuntu22.04", split_arg=True)
    assert after == before.replace("ARG CUDA=12.6.3\n", "ARG CUDA=12.6.3\nARG CUDA_BUILD=12.9.1\n").replace(
        "FROM nvidia/cuda:${CUDA}-devel", "FROM nvidia/cuda:${CUDA_BUILD}-devel"
    )
    reparsed = parse_dockerfile(after)
    assert [b.image for b in reparsed.bases] == ["nvidia/cuda:12.9.1-devel-ubuntu22.04", "myorg/runtime:12.6.3"]


def test_split_arg_keeps_crlf_and_refuses_what_it_cannot_split() -> None:
    text = "ARG CUDA=12.6.3\r\nFROM nvidia/cuda:${CUDA}-devel-ubuntu22.04\r\nFROM myorg/runtime:${CUDA}\r\n"
    parsed = parse_dockerfile(text)
    after = rewrite_base(
        parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.9.1-devel-ubuntu22.04"), split_arg=True
    )
    assert after == (
        "ARG CUDA=12.6.3\r\nARG CUDA_STAGE0=12.9.1\r\nFROM nvidia/cuda:${CUDA_STAGE0}-devel-ubuntu22.04\r\n"
        "FROM myorg/runtime:${CUDA}\r\n"
    )
    nested = "ARG CUDA=12.6.3\nARG IMG=nvidia/cuda:${CUDA}-devel-ubuntu22.04\nFROM ${IMG}\nFROM myorg/runtime:${CUDA}\n"
    parsed = parse_dockerfile(nested)
    with pytest.raises(DockerfileError) as info:
        rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.9.1-devel-ubuntu22.04"), split_arg=True)
    assert str(info.value) == (
        "Dockerfile:3: cannot give this FROM its own ARG CUDA: the FROM reaches it through another ARG's "
        "default; change it by hand"
    )


def test_stages_of_the_same_image_move_together() -> None:
    text = (
        "ARG CUDA=12.6.3\nFROM nvidia/cuda:${CUDA}-runtime-ubuntu22.04 AS a\n"
        "FROM nvidia/cuda:${CUDA}-runtime-ubuntu22.04 AS b\n"
    )
    parsed = parse_dockerfile(text)
    after = rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.9.1-runtime-ubuntu22.04"))
    assert changed_lines(text, after) == [("ARG CUDA=12.6.3\n", "ARG CUDA=12.9.1\n")]
    # Another image of the same ARG (devel vs runtime) is a different FROM: refused unless planned.
    text = text.replace("runtime-ubuntu22.04 AS a", "devel-ubuntu22.04 AS a")
    parsed = parse_dockerfile(text)
    with pytest.raises(DockerfileError, match=r"ARG CUDA also feeds Dockerfile:3 \(FROM nvidia/cuda:\$\{CUDA\}-run"):
        rewrite_base(parsed, parsed.bases[0], parse_reference("nvidia/cuda:12.9.1-devel-ubuntu22.04"))
    after = rewrite_base(
        parsed,
        parsed.bases[0],
        parse_reference("nvidia/cuda:12.9.1-devel-ubuntu22.04"),
        planned={1: parse_reference("nvidia/cuda:12.9.1-runtime-ubuntu22.04")},
    )
    assert [b.image for b in parse_dockerfile(after).bases] == [
        "nvidia/cuda:12.9.1-devel-ubuntu22.04",
        "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
    ]


@pytest.mark.parametrize(
    ("text", "new", "message"),
    [
        (
            "ARG CUDA=12.6.3\nARG IMG=nvidia/cuda:${CUDA}-base-ubuntu22.04\nFROM ${IMG}\n",
            "nvidia/cuda:12.9.1-devel-ubi9",
            "Dockerfile:3: 'nvidia/cuda:12.9.1-devel-ubi9' cannot be written through the template '${IMG}' "
            "(ARGs IMG); change the FROM line by hand",
        ),
        (
            "ARG CUDA=12.6.\\\n3\nFROM nvidia/cuda:${CUDA}-base-ubuntu22.04\n",
            "nvidia/cuda:12.9.1-base-ubuntu22.04",
            "Dockerfile:3: ARG CUDA at Dockerfile:1 has a default that cannot be edited in place (split across "
            "lines, escaped or in several quoted pieces); change it by hand",
        ),
        (
            "FROM nvidia/cuda:12.6.3-base-\\\nubuntu22.04\n",
            "nvidia/cuda:12.9.1-base-ubuntu22.04",
            "Dockerfile:1: the text to change ('nvidia/cuda:12.6.3-base-ubuntu22.04', in the FROM line) is split "
            "across lines; change the FROM line by hand",
        ),
        (
            "ARG V=12.6.3-base-ubuntu22.04\nFROM nvidia/cuda:${V%%-*}-base-ubuntu22.04\n",
            "nvidia/cuda:12.9.1-base-ubuntu22.04",
            "Dockerfile:2: the text to change ('12.6.3', in the FROM line) is computed by ${V%...}; change the FROM "
            "line by hand",
        ),
    ],
)
def test_what_cannot_be_edited_in_place_is_refused(text: str, new: str, message: str) -> None:
    parsed = parse_dockerfile(text)
    with pytest.raises(DockerfileError) as info:
        rewrite_base(parsed, parsed.bases[0], parse_reference(new))
    assert str(info.value) == message


def test_an_arg_and_text_change_that_would_move_another_from_is_refused_as_before() -> None:
    """The ARG is shared: changing it with this FROM's text would move the other FROM to a tag no
    one planned (12.9.0); the refusal is the template's, not advice to plan a planned FROM."""
    text = (
        "ARG CUDA=12.6\nFROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04 AS a\nRUN true\n"
        "FROM nvidia/cuda:${CUDA}.0-runtime-ubuntu22.04 AS b\n"
    )
    parsed = parse_dockerfile(text)
    target = parse_reference("nvidia/cuda:12.9.1-runtime-ubuntu22.04")
    with pytest.raises(DockerfileError) as info:
        rewrite_base(parsed, parsed.bases[0], target, planned={0: target, 1: target})
    assert "cannot be written through the template" in str(info.value) and "change the FROM line by hand" in str(
        info.value
    )
