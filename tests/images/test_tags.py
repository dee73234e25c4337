"""CUDA and NGC tag models: parsing, ordering and the same-track predicate, by tables."""

from __future__ import annotations

import pytest

from tasks.errors import TagError
from tasks.images.tags import CudaTag, NgcTag, extra_family, newest_on_track


@pytest.mark.parametrize(
    ("tag", "version", "extra", "flavor", "os", "os_version"),
    [
        ("12.6.0-runtime-ubuntu22.04", (12, 6, 0), None, "runtime", "ubuntu", "22.04"),
        ("12.6.3-base-ubuntu24.04", (12, 6, 3), None, "base", "ubuntu", "24.04"),
        ("12.2.2-cudnn8-devel-ubuntu22.04", (12, 2, 2), "cudnn8", "devel", "ubuntu", "22.04"),
        ("12.3.2-cudnn9-runtime-ubuntu22.04", (12, 3, 2), "cudnn9", "runtime", "ubuntu", "22.04"),
        ("12.4.1-cudnn-runtime-ubuntu22.04", (12, 4, 1), "cudnn", "runtime", "ubuntu", "22.04"),
        ("13.0.0-tensorrt-devel-ubuntu24.04", (13, 0, 0), "tensorrt", "devel", "ubuntu", "24.04"),
        ("11.8.0-cudnn8-runtime-ubuntu20.04", (11, 8, 0), "cudnn8", "runtime", "ubuntu", "20.04"),
        ("12.9.1-devel-ubi9", (12, 9, 1), None, "devel", "ubi", "9"),
        ("12.8.1-base-rockylinux9", (12, 8, 1), None, "base", "rockylinux", "9"),
        ("12.6.3-runtime-amzn2023", (12, 6, 3), None, "runtime", "amzn", "2023"),
        ("13.0.0-base-opensuse15", (13, 0, 0), None, "base", "opensuse", "15"),
        ("12.10.11-runtime-ubuntu22.04", (12, 10, 11), None, "runtime", "ubuntu", "22.04"),
    ],
)
def test_cuda_tags_parse(
    tag: str,
    version: tuple[int, int, int],
    extra: str | None,
    flavor: str,
    os: str,
    os_version: str,
) -> None:
    parsed = CudaTag.parse(tag)
    assert (parsed.version, parsed.extra, parsed.flavor, parsed.os, parsed.os_version) == (
        version,
        extra,
        flavor,
        os,
        os_version,
    )
    assert str(parsed) == tag


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("latest", "'latest' is not a CUDA image tag: expected"),
        (
            "12.6-runtime-ubuntu22.04",
            "'12.6-runtime-ubuntu22.04' is not a CUDA image tag: expected",
        ),
        ("12.6.0-runtime", "'12.6.0-runtime' is not a CUDA image tag: expected"),
        ("12.6.0-slim-ubuntu22.04", "'12.6.0-slim-ubuntu22.04' is not a CUDA image tag: expected"),
        (
            "12.6.0-cudnn-base-ubuntu22.04",
            "'12.6.0-cudnn-base-ubuntu22.04' is not a CUDA image tag: cudnn exists only for runtime/devel",
        ),
        (
            "12.6.0-runtime-windows2022",
            "'12.6.0-runtime-windows2022' is not a CUDA image tag: expected",
        ),
    ],
)
def test_cuda_tag_errors(tag: str, message: str) -> None:
    with pytest.raises(TagError) as info:
        CudaTag.parse(tag)
    assert str(info.value).startswith(message)
    assert CudaTag.try_parse(tag) is None


def test_cuda_ordering_is_numeric_not_lexical() -> None:
    tags = [
        "12.10.0-runtime-ubuntu22.04",
        "12.6.3-runtime-ubuntu22.04",
        "12.6.10-runtime-ubuntu22.04",
        "12.9.1-runtime-ubuntu22.04",
        "11.8.0-runtime-ubuntu22.04",
        "13.0.0-runtime-ubuntu22.04",
    ]
    ordered = [str(t) for t in sorted(CudaTag.parse(t) for t in tags)]
    assert ordered == [
        "11.8.0-runtime-ubuntu22.04",
        "12.6.3-runtime-ubuntu22.04",
        "12.6.10-runtime-ubuntu22.04",
        "12.9.1-runtime-ubuntu22.04",
        "12.10.0-runtime-ubuntu22.04",
        "13.0.0-runtime-ubuntu22.04",
    ]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("12.6.0-runtime-ubuntu22.04", "12.6.3-runtime-ubuntu22.04", True),
        ("12.6.0-runtime-ubuntu22.04", "13.0.0-runtime-ubuntu22.04", True),
        ("12.6.0-runtime-ubuntu22.04", "12.6.3-devel-ubuntu22.04", False),
        ("12.6.0-runtime-ubuntu22.04", "12.6.3-runtime-ubuntu24.04", False),
        ("12.6.0-runtime-ubuntu22.04", "12.6.3-cudnn-runtime-ubuntu22.04", False),
        ("12.2.2-cudnn8-runtime-ubuntu22.04", "12.3.2-cudnn9-runtime-ubuntu22.04", True),
        ("12.3.2-cudnn9-runtime-ubuntu22.04", "12.6.3-cudnn-runtime-ubuntu22.04", True),
        ("12.1.0-cudnn8-devel-ubuntu22.04", "12.9.1-cudnn-devel-ubuntu22.04", True),
        ("13.0.0-tensorrt-devel-ubuntu24.04", "13.0.0-cudnn-devel-ubuntu24.04", False),
        ("12.6.3-runtime-ubi9", "12.6.3-runtime-ubuntu22.04", False),
    ],
)
def test_same_track(a: str, b: str, same: bool) -> None:
    assert CudaTag.parse(a).same_track(CudaTag.parse(b)) is same
    assert CudaTag.parse(b).same_track(CudaTag.parse(a)) is same


@pytest.mark.parametrize(
    ("extra", "family"),
    [
        (None, None),
        ("cudnn8", "cudnn"),
        ("cudnn9", "cudnn"),
        ("cudnn", "cudnn"),
        ("tensorrt", "tensorrt"),
    ],
)
def test_extra_family(extra: str | None, family: str | None) -> None:
    assert extra_family(extra) == family


def test_newest_on_track_crosses_cudnn_renames() -> None:
    current = CudaTag.parse("12.1.0-cudnn8-runtime-ubuntu22.04")
    candidates = [
        CudaTag.parse(t)
        for t in [
            "12.2.2-cudnn8-runtime-ubuntu22.04",
            "12.3.2-cudnn9-runtime-ubuntu22.04",
            "12.6.3-cudnn-runtime-ubuntu22.04",
            "12.9.1-cudnn-devel-ubuntu22.04",
            "12.9.1-cudnn-runtime-ubuntu24.04",
            "12.8.1-runtime-ubuntu22.04",
        ]
    ]
    assert str(newest_on_track(current, candidates)) == "12.6.3-cudnn-runtime-ubuntu22.04"
    assert newest_on_track(current, []) is None


@pytest.mark.parametrize(
    ("tag", "year", "month", "py", "variant", "release"),
    [
        ("25.04-py3", 2025, 4, 3, None, "25.04"),
        ("24.10-py3", 2024, 10, 3, None, "24.10"),
        ("25.04-py3-igpu", 2025, 4, 3, "igpu", "25.04"),
        ("26.08-py3", 2026, 8, 3, None, "26.08"),
    ],
)
def test_ngc_tags_parse(tag: str, year: int, month: int, py: int, variant: str | None, release: str) -> None:
    parsed = NgcTag.parse(tag)
    assert (parsed.year, parsed.month, parsed.python_major, parsed.variant) == (
        year,
        month,
        py,
        variant,
    )
    assert parsed.release == release
    assert str(parsed) == tag


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("25.13-py3", "'25.13-py3' is not an NGC tag: month 13 is not 01-12"),
        ("25.00-py3", "'25.00-py3' is not an NGC tag: month 00 is not 01-12"),
        (
            "2025.04-py3",
            "'2025.04-py3' is not an NGC tag: expected 'YY.MM-py3' or 'YY.MM-py3-igpu', e.g. '25.04-py3'",
        ),
        (
            "25.04",
            "'25.04' is not an NGC tag: expected 'YY.MM-py3' or 'YY.MM-py3-igpu', e.g. '25.04-py3'",
        ),
        (
            "25.04-py3-jetson",
            "'25.04-py3-jetson' is not an NGC tag: expected 'YY.MM-py3' or 'YY.MM-py3-igpu', e.g. '25.04-py3'",
        ),
    ],
)
def test_ngc_tag_errors(tag: str, message: str) -> None:
    with pytest.raises(TagError) as info:
        NgcTag.parse(tag)
    assert str(info.value) == message


def test_ngc_ordering_and_track() -> None:
    tags = [NgcTag.parse(t) for t in ["25.04-py3", "24.12-py3", "26.01-py3", "25.10-py3-igpu", "25.10-py3"]]
    assert [str(t) for t in sorted(tags)] == [
        "24.12-py3",
        "25.04-py3",
        "25.10-py3",
        "25.10-py3-igpu",
        "26.01-py3",
    ]
    current = NgcTag.parse("25.04-py3")
    assert str(newest_on_track(current, tags)) == "26.01-py3"
    assert str(newest_on_track(NgcTag.parse("25.04-py3-igpu"), tags)) == "25.10-py3-igpu"


@pytest.mark.parametrize(
    "tag",
    [
        "\u0661\u0662.\u0669.\u0661-runtime-ubuntu22.04",  # Arabic-Indic digits
        "12.9.1-runtime-ubuntu\u0662\u0662.04",
        "\uff11\uff12.9.1-runtime-ubuntu22.04",  # full-width digits
        "12.9.1-runtime-ubuntu22.04\n",  # a trailing newline
        "12.9.1-runtime-ubuntu22.04 ",
        "012.9.1-runtime-ubuntu22.04",  # leading zeros would not print back as written
        "12.09.1-runtime-ubuntu22.04",
        "12.9.1-cudnn\u0669-runtime-ubuntu22.04",
        "12.9.1-runtime-ubuntu" + "2" * 120,  # longer than Docker's 128-character tag limit
    ],
)
def test_cuda_tags_are_ascii_and_whole(tag: str) -> None:
    with pytest.raises(TagError):
        CudaTag.parse(tag)


@pytest.mark.parametrize(
    "tag",
    ["\u0662\u0665.\u0660\u0664-py3", "25.04-py\u0663", "25.04-py3\n", "25.04-py3-igpu\n", "\uff12\uff15.04-py3"],
)
def test_ngc_tags_are_ascii_and_whole(tag: str) -> None:
    with pytest.raises(TagError):
        NgcTag.parse(tag)


def test_every_real_nvidia_tag_parses_and_prints_back() -> None:
    from tests.conftest import REPO_ROOT

    listing = REPO_ROOT.parent / "shared" / "reference" / "nvidia-cuda" / "supported-tags.txt"
    if not listing.exists():
        pytest.skip("the shared NVIDIA tag list is not on this machine")
    tags = [line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(tags) > 100
    for tag in tags:
        assert str(CudaTag.parse(tag)) == tag
