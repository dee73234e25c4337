"""Which files scan/review read (Dockerfiles and Containerfiles), and the JSON `skip` code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.dockerfile.parser import parse_dockerfile
from tasks.scan import Lookup, ScanRow, discover, is_dockerfile_name

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"


@pytest.mark.parametrize(
    ("name", "managed"),
    [
        ("Dockerfile", True),
        ("dockerfile", True),
        ("Dockerfile.ngc", True),
        ("Dockerfile.cuda126", True),
        ("Dockerfile-dev", True),
        ("Dockerfile_gpu", True),
        ("train.Dockerfile", True),
        ("train.dockerfile", True),
        ("Containerfile", True),
        ("containerfile", True),
        ("Containerfile.cuda", True),
        ("app.containerfile", True),
        ("app.Containerfile", True),
        # Backups, editor leftovers and ignore files are not build files.
        ("Dockerfile.bak", False),
        ("Dockerfile.cuda126.bak", False),
        ("Containerfile.bak", False),
        ("app.containerfile.BAK", False),
        ("Dockerfile~", False),
        ("Dockerfile.orig", False),
        ("Dockerfile.swp", False),
        ("Dockerfile.dockerignore", False),
        ("Containerfile.containerignore", False),
        (".dockerignore", False),
        # Not what Docker or Podman tools read.
        ("DOCKERFILE", False),
        ("CONTAINERFILE", False),
        ("Dockerfiles", False),
        ("Dockerfile.", False),
        ("my-Dockerfile", False),
        ("notes.containerfile.md", False),
        ("README.md", False),
    ],
)
def test_build_file_names(name: str, managed: bool) -> None:
    assert is_dockerfile_name(name) is managed


def test_discover_finds_containerfiles_beside_dockerfiles(tmp_path: Path) -> None:
    for rel in ["svc/Dockerfile", "svc/Containerfile", "svc/app.containerfile", "svc/Containerfile.bak", "x/notes"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n")
    os.mkfifo(tmp_path / "x" / "Dockerfile")  # a pipe with a build file's name is not read
    (tmp_path / "x" / "Containerfile").mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path])]
    assert found == ["svc/Containerfile", "svc/Dockerfile", "svc/app.containerfile"]


def test_discover_of_the_fixtures_includes_the_containerfiles() -> None:
    names = {p.name for p in discover([FIXTURES])}
    assert {"Containerfile", "app.containerfile"} <= names
    assert len(names) == len(list(FIXTURES.iterdir()))


def _row(text: str, status: str) -> ScanRow:
    return ScanRow(parse_dockerfile(text).bases[-1], Lookup(status))


@pytest.mark.parametrize(
    ("text", "status", "skip"),
    [
        ("FROM scratch\n", "skipped", "scratch"),
        ("FROM a AS b\nFROM b\n", "skipped", "stage-reference"),
        ("ARG CUDA\nFROM nvidia/cuda:${CUDA}-base-ubuntu22.04\n", "skipped", "unresolved-arg"),
        ("FROM NVIDIA/CUDA:12.6.3-base-ubuntu22.04\n", "skipped", "invalid-reference"),
        ("FROM\n", "skipped", "empty-from"),
        ("FROM a b\n", "skipped", "malformed-from"),
        ("FROM nvidia/cuda:9.9.9-base-ubuntu22.04\n", "not found", "not-found"),
        ("FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n", "unreachable", "unreachable"),
        ("FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n", "ok", None),
        ("FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n", "skipped", None),  # lookups off: nothing skipped it
        ("FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n", "auth error", None),  # registry_status says it
    ],
)
def test_json_rows_carry_a_skip_code(text: str, status: str, skip: str | None) -> None:
    row = _row(text, status).to_json()
    assert row["skip"] == skip
    assert row["registry_status"] == status
    assert "skip_reason" in row
