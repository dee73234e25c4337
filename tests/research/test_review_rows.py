"""Every managed image appears in the review: a FROM that cannot be resolved is an error row and
the review is incomplete (exit 3). No registry is asked for any of these."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.http import HttpTransport
from tasks.registry.session import RegistrySession
from tasks.research.assembly import assemble
from tasks.research.facts import load_facts
from tasks.research.review import ImageReview, ReviewOptions, ReviewSources, review_dockerfile
from tasks.research.sources.pytorch_index import PyTorchIndex

FACTS = load_facts()


def reviews(
    tmp_path: Path, text: str | None, *, managed: bool = True, build_args: dict[str, str] | None = None
) -> list[ImageReview]:
    path = tmp_path / "Dockerfile"
    if text is not None:
        path.write_text(text)
    return review_dockerfile(
        "img",
        path,
        "dockerfiles/img/Dockerfile",
        build_args or {},
        RegistrySession(transport=HttpTransport()),
        FACTS,
        ReviewSources("offline", "none", {}, "none"),
        PyTorchIndex("http://127.0.0.1:9/whl", HttpTransport()),
        ReviewOptions("3.11", 535, False, None),
        managed=managed,
    )


def rows(tmp_path: Path, text: str | None, *, managed: bool = True, build_args: dict[str, str] | None = None) -> list:  # type: ignore[type-arg]
    return [r.to_json() for r in reviews(tmp_path, text, managed=managed, build_args=build_args)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "FROM nvidia/CUDA:12.6.0-runtime-ubuntu22.04\n",
            "dockerfiles/img/Dockerfile:1: FROM nvidia/CUDA:12.6.0-runtime-ubuntu22.04 cannot be resolved: "
            "invalid image reference 'nvidia/CUDA:12.6.0-runtime-ubuntu22.04': repository name must be lowercase",
        ),
        (
            "ARG BASE\nFROM ${BASE}\n",
            "dockerfiles/img/Dockerfile:2: FROM ${BASE} cannot be resolved: FROM uses unset ARG BASE "
            "(no default, no --build-arg)",
        ),
        (
            "FROM $IMAGE\n",
            "dockerfiles/img/Dockerfile:1: FROM $IMAGE cannot be resolved: FROM uses ARG IMAGE, which is not "
            "declared before the first FROM",
        ),
        (
            "FROM python:3.11-slim\nFROM scratch\n",
            "dockerfiles/img/Dockerfile: no FROM names an nvidia/cuda or NGC PyTorch image; check images[].dockerfile",
        ),
        (None, "Dockerfile: cannot read Dockerfile: No such file or directory"),
    ],
)
def test_unresolvable_from_is_an_error_row(tmp_path: Path, text: str | None, error: str) -> None:
    """Regression: such images disappeared from the review, which still said "complete"."""
    (review,) = reviews(tmp_path, text)
    row = review.to_json()
    assert row["status"] == "error" and row["action"] == "error" and not row["recommended"]
    assert row["errors"][0].endswith(error) if text is None else row["errors"] == [error]
    assembled = assemble([review], {}, {}, "test", 535, "2026-12-01", FACTS)
    report = assembled.to_json()
    assert report["complete"] is False, "the review is incomplete: exit 3"
    from tasks.research.report import findings_markdown

    headline = findings_markdown(assembled).splitlines()[0]
    assert headline == "Review of 2026-12-01 (test): **incomplete: no action found among what was reviewed**.", (
        "never 'no action needed' for a review that could not see every image"
    )


def test_ad_hoc_dockerfiles_without_cuda_bases_add_no_row(tmp_path: Path) -> None:
    assert rows(tmp_path, "FROM python:3.11-slim\n", managed=False) == []
    (row,) = rows(tmp_path, "ARG BASE\nFROM ${BASE}\n", managed=False)
    assert row["status"] == "error", "an unresolvable FROM is reported wherever it is"


def test_stages_and_scratch_are_not_rows(tmp_path: Path) -> None:
    found = rows(tmp_path, "ARG BASE\nFROM ${BASE} AS build\nFROM build\nFROM scratch\n", build_args={"BASE": "Bad/X"})
    assert [r["line"] for r in found] == [2], "only the unresolvable image, not the stage or scratch"


def test_a_row_without_a_plan_keeps_the_banner_it_saw() -> None:
    """Regression: the banner was seen, planning then failed (an index error); the row's reasons
    lost the banner when they became derived from the plan."""
    seen = ImageReview("training", "D", 1, "nvidia/cuda:11.8.0-runtime-ubuntu22.04", deprecation_banner=["DEPRECATED"])
    seen.errors.append("PyTorch index unreachable")
    assert seen.to_json()["reasons"] == ["start-up logs show NVIDIA's deprecation banner"]
    review = assemble([seen], {}, {}, "test", 535, "2026-12-01", FACTS)
    assert not review.complete and review.to_json()["images"][0]["reasons"] == seen.reasons
