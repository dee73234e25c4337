"""Image reference grammar: table tests, Docker Hub defaults and exact error messages."""

from __future__ import annotations

import pytest

from tasks.errors import ImageReferenceError
from tasks.images.reference import ImageReference, parse_reference

D64 = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "familiar"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None, None, "ubuntu"),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, "ubuntu:22.04"),
        (
            "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
            "docker.io",
            "nvidia/cuda",
            "12.6.0-runtime-ubuntu22.04",
            None,
            "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
        ),
        (
            "docker.io/nvidia/cuda:12.6.3-base-ubi9",
            "docker.io",
            "nvidia/cuda",
            "12.6.3-base-ubi9",
            None,
            "nvidia/cuda:12.6.3-base-ubi9",
        ),
        (
            "index.docker.io/library/python:3.11",
            "docker.io",
            "library/python",
            "3.11",
            None,
            "python:3.11",
        ),
        (
            "registry-1.docker.io/nvidia/cuda:13.0.0-base-ubuntu24.04",
            "docker.io",
            "nvidia/cuda",
            "13.0.0-base-ubuntu24.04",
            None,
            "nvidia/cuda:13.0.0-base-ubuntu24.04",
        ),
        (
            "nvcr.io/nvidia/pytorch:25.04-py3",
            "nvcr.io",
            "nvidia/pytorch",
            "25.04-py3",
            None,
            "nvcr.io/nvidia/pytorch:25.04-py3",
        ),
        ("localhost/app", "localhost", "app", None, None, "localhost/app"),
        (
            "localhost:5000/team/app:v1",
            "localhost:5000",
            "team/app",
            "v1",
            None,
            "localhost:5000/team/app:v1",
        ),
        (
            "127.0.0.1:5000/nvidia/cuda:12.1.0-runtime-ubuntu22.04",
            "127.0.0.1:5000",
            "nvidia/cuda",
            "12.1.0-runtime-ubuntu22.04",
            None,
            "127.0.0.1:5000/nvidia/cuda:12.1.0-runtime-ubuntu22.04",
        ),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None, "[::1]:5000/app:1"),
        (f"nvidia/cuda@{D64}", "docker.io", "nvidia/cuda", None, D64, f"nvidia/cuda@{D64}"),
        (
            f"nvidia/cuda:12.6.3-runtime-ubuntu22.04@{D64}",
            "docker.io",
            "nvidia/cuda",
            "12.6.3-runtime-ubuntu22.04",
            D64,
            f"nvidia/cuda:12.6.3-runtime-ubuntu22.04@{D64}",
        ),
        (
            "ghcr.io/org/sub/group/image:tag_1.2-x",
            "ghcr.io",
            "org/sub/group/image",
            "tag_1.2-x",
            None,
            "ghcr.io/org/sub/group/image:tag_1.2-x",
        ),
        (
            "my-registry.example.com:443/a__b/c.d-e:T",
            "my-registry.example.com:443",
            "a__b/c.d-e",
            "T",
            None,
            "my-registry.example.com:443/a__b/c.d-e:T",
        ),
        ("Example.COM/app:1", "Example.COM", "app", "1", None, "Example.COM/app:1"),
        # The familiar form must name the same repository when parsed back.
        ("library/a/a", "docker.io", "library/a/a", None, None, "library/a/a"),
        ("docker.io/library/a", "docker.io", "library/a", None, None, "a"),
        ("docker.io/a.b/c", "docker.io", "a.b/c", None, None, "docker.io/a.b/c"),
        ("docker.io/localhost/x", "docker.io", "localhost/x", None, None, "docker.io/localhost/x"),
        ("a.b", "docker.io", "library/a.b", None, None, "a.b"),
        ("UPPER/app", "UPPER", "app", None, None, "UPPER/app"),  # an upper-case first part is a host
        ("localhost:5000", "docker.io", "library/localhost", "5000", None, "localhost:5000"),
        ("a" * 237, "docker.io", "library/" + "a" * 237, None, None, "a" * 237),  # 255 in full
        (
            "ubuntu@sha512:" + "0123456789abcdef" * 8,
            "docker.io",
            "library/ubuntu",
            None,
            "sha512:" + "0123456789abcdef" * 8,
            "ubuntu@sha512:" + "0123456789abcdef" * 8,
        ),
        (
            "ubuntu@sha384:" + "0123456789abcdef" * 6,
            "docker.io",
            "library/ubuntu",
            None,
            "sha384:" + "0123456789abcdef" * 6,
            "ubuntu@sha384:" + "0123456789abcdef" * 6,
        ),
    ],
)
def test_valid_references(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, familiar: str
) -> None:
    ref = parse_reference(text)
    assert ref == ImageReference(registry, repository, tag, digest)
    assert str(ref) == familiar
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid image reference '': empty or surrounded by whitespace"),
        (" ubuntu", "invalid image reference ' ubuntu': empty or surrounded by whitespace"),
        ("Ubuntu", "invalid image reference 'Ubuntu': repository name must be lowercase"),
        ("nvidia//cuda", "invalid image reference 'nvidia//cuda': empty path component"),
        (
            "nvidia/cuda:",
            "invalid image reference 'nvidia/cuda:': a tag is 1-128 characters of letters, "
            "digits, '_', '.' and '-', not starting with '.' or '-'",
        ),
        (
            "nvidia/cuda:-bad",
            "invalid image reference 'nvidia/cuda:-bad': a tag is 1-128 characters of "
            "letters, digits, '_', '.' and '-', not starting with '.' or '-'",
        ),
        (
            "nvidia/cuda@sha256:abc",
            "invalid image reference 'nvidia/cuda@sha256:abc': digest 'sha256:abc' "
            "is not 'algorithm:hex' with at least 32 hex digits",
        ),
        (
            "nvidia/cuda@sha256:" + "A" * 64,
            "invalid image reference 'nvidia/cuda@sha256:"
            + "A" * 64
            + "': a sha256 digest has exactly 64 lowercase hex digits",
        ),
        (
            "nvidia/cu__-da",
            "invalid image reference 'nvidia/cu__-da': path component 'cu__-da' may only "
            "hold lowercase letters and digits joined by '.', '_', '__' or '-'",
        ),
        (
            "-bad.io/app",
            "invalid image reference '-bad.io/app': '-bad.io' is not a valid registry host",
        ),
        (
            "reg.io:port/app",
            "invalid image reference 'reg.io:port/app': 'reg.io:port' is not a valid registry host",
        ),
        (":tag", "invalid image reference ':tag': repository name is empty"),
        (
            "a/" * 130 + "b",
            "invalid image reference '" + "a/" * 130 + "b': repository name is longer than 255 characters",
        ),
        (
            "$(rm -rf /)",
            "invalid image reference '$(rm -rf /)': character ' ' at position 4 is not allowed "
            "(references are printable ASCII without spaces)",
        ),
        (
            "$(rm)",
            "invalid image reference '$(rm)': path component '$(rm)' may only hold "
            "lowercase letters and digits joined by '.', '_', '__' or '-'",
        ),
        # ASCII only, no control characters or line breaks anywhere (Docker's grammar is ASCII).
        (
            "nvidia/cuda:\u0661\u0662.\u0669.\u0661-runtime-ubuntu22.04",
            "invalid image reference 'nvidia/cuda:\u0661\u0662.\u0669.\u0661-runtime-ubuntu22.04': character "
            "'\u0661' at position 12 is not allowed (references are printable ASCII without spaces)",
        ),
        (
            "ubuntu:caf\u00e9",
            "invalid image reference 'ubuntu:caf\u00e9': character '\u00e9' at position 10 is not allowed "
            "(references are printable ASCII without spaces)",
        ),
        (
            "nvidia/cu\nda:12",
            "invalid image reference 'nvidia/cu\\nda:12': character '\\n' at position 9 is not allowed "
            "(references are printable ASCII without spaces)",
        ),
        (
            "ubuntu:22.04\x00",
            "invalid image reference 'ubuntu:22.04\\x00': character '\\x00' at position 12 is not allowed "
            "(references are printable ASCII without spaces)",
        ),
        ("ubuntu:22.04\n", "invalid image reference 'ubuntu:22.04\\n': empty or surrounded by whitespace"),
        # Digests: sha256, sha384 and sha512 (go-digest's algorithms), lowercase hex, exact length.
        (
            "ubuntu@md5:" + "a" * 32,
            "invalid image reference 'ubuntu@md5:" + "a" * 32 + "': digest algorithm 'md5' is not supported "
            "(Docker accepts sha256, sha384, sha512)",
        ),
        (
            "ubuntu@sha512:" + "a" * 64,
            "invalid image reference 'ubuntu@sha512:" + "a" * 64 + "': a sha512 digest has exactly 128 "
            "lowercase hex digits",
        ),
        (
            "ubuntu@sha256:" + "a" * 65,
            "invalid image reference 'ubuntu@sha256:" + "a" * 65 + "': a sha256 digest has exactly 64 "
            "lowercase hex digits",
        ),
        (
            "ubuntu@sha256:" + "a" * 64 + "@sha256:" + "a" * 64,
            "invalid image reference 'ubuntu@sha256:"
            + "a" * 64
            + "@sha256:"
            + "a" * 64
            + "': digest 'sha256:"
            + "a" * 64
            + "@sha256:"
            + "a" * 64
            + "' is not 'algorithm:hex' with at least 32 hex digits",
        ),
        (
            "a" * 64,
            "invalid image reference '" + "a" * 64 + "': a 64-character hex string is an image ID, not a "
            "repository name",
        ),
        # The 255-character limit counts the canonical name (docker.io/library/... included).
        (
            "a" * 240,
            "invalid image reference '" + "a" * 240 + "': repository name is longer than 255 characters",
        ),
        (
            "[::ffff:1.2.3.4]:5000/app",
            "invalid image reference '[::ffff:1.2.3.4]:5000/app': '[::ffff:1.2.3.4]:5000' is not a valid registry host",
        ),
    ],
)
def test_invalid_references_are_rejected_with_exact_messages(text: str, message: str) -> None:
    with pytest.raises(ImageReferenceError) as info:
        parse_reference(text)
    assert str(info.value) == message


def test_with_tag_drops_the_digest_and_validates() -> None:
    ref = parse_reference(f"nvidia/cuda:12.6.0-runtime-ubuntu22.04@{D64}")
    assert str(ref.with_tag("12.6.3-runtime-ubuntu22.04")) == "nvidia/cuda:12.6.3-runtime-ubuntu22.04"
    with pytest.raises(ImageReferenceError, match="invalid tag 'bad tag'"):
        ref.with_tag("bad tag")


@pytest.mark.parametrize(
    "tag", ["12.9.1\n", "\u0661\u0662.\u0669.\u0661", "caf\u00e9", "x" * 129, "", "-x", ".x", "a\x00"]
)
def test_with_tag_refuses_what_docker_refuses(tag: str) -> None:
    with pytest.raises(ImageReferenceError) as info:
        parse_reference("nvidia/cuda").with_tag(tag)
    assert str(info.value) == (
        f"invalid tag {tag!r}: a tag is 1-128 characters of letters, digits, '_', '.' and '-', "
        "not starting with '.' or '-'"
    )


def test_with_tag_can_pin_a_digest() -> None:
    ref = parse_reference("nvidia/cuda:12.6.3-runtime-ubuntu22.04")
    pinned = ref.with_tag("12.9.1-runtime-ubuntu22.04", digest=D64)
    assert str(pinned) == f"nvidia/cuda:12.9.1-runtime-ubuntu22.04@{D64}"
    assert parse_reference(str(pinned)) == pinned
    with pytest.raises(ImageReferenceError) as info:
        ref.with_tag("12.9.1-runtime-ubuntu22.04", digest="sha256:" + "A" * 64)
    assert str(info.value) == (
        "invalid digest 'sha256:" + "A" * 64 + "': a sha256 digest has exactly 64 lowercase hex digits"
    )


def test_reference_property_prefers_digest() -> None:
    assert parse_reference("ubuntu").reference == "latest"
    assert parse_reference("ubuntu:22.04").reference == "22.04"
    assert parse_reference(f"ubuntu:22.04@{D64}").reference == D64
