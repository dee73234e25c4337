"""The policy document as users write it (the seed policy, unmarked): a migration updates Current
Configuration, the component matrix and the changelog in its own format (golden file), the
review places its findings under a findings heading, and a section it cannot find is a warning,
never an error. Markers still work for those who use them."""

from __future__ import annotations

import os

import pytest

from tasks.update.policy_doc import (
    Component,
    Moved,
    migration_doc,
    sections,
    set_changelog_status,
    update_findings,
    update_matrix,
)
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "policy-doc"
SEED = (FIXTURES / "seed.md").read_text()
MOVES = [
    Moved(
        "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
        "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
        {"torch": "2.5.1+cu126", "torchvision": "0.20.1+cu126", "cupy-cuda12x": "13.3.0"},
        {"torch": "2.13.0+cu126", "torchvision": "0.28.0+cu126", "cupy-cuda12x": "14.2.0", "onnxruntime-gpu": "1.26.0"},
        "cu126",
        "cu126",
        "services/training/Dockerfile",
    ),
    Moved(
        "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
        "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
        {},
        {},
        dockerfile="services/training/Dockerfile.cuda126",
    ),
]


def golden(name: str, text: str) -> None:
    path = FIXTURES / name
    if os.environ.get("BASEIMAGE_REGENERATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs (BASEIMAGE_REGENERATE_GOLDEN=1 rewrites it after a review)"


def test_the_seed_policy_sections_are_found_by_their_headings() -> None:
    found = sections(SEED)
    assert set(found) == {"configuration", "matrix", "changelog"}
    assert not any(s.marked for s in found.values())
    assert SEED[found["matrix"].body_start :].startswith("\n| Component | Version | CUDA Support | Notes |")


def test_a_migration_updates_the_seed_document_in_its_own_format() -> None:
    update = migration_doc(
        SEED, "docs/base-image-policy.md", "baseimage/cuda-12.9.1", "12.6.0 is EOL", MOVES, "2026-12-01"
    )
    assert update.warnings == []
    golden("seed-migrated.md", update.text)
    text = update.text
    assert "**Base Image**: `nvidia/cuda:12.9.1-runtime-ubuntu22.04`" in text
    assert "   - Base: `nvidia/cuda:12.6.3-runtime-ubuntu22.04`" in text, "the variant moved to its own target"
    assert "| PyTorch | 2.13.0 | 12.6 | Minimum version |" in text, "Notes are kept"
    assert "| ONNX Runtime | 1.26.0 | 12.x | onnxruntime-gpu |" in text, "a missing component row is added"
    assert text.count("| Component | Version | CUDA Support | Notes |") == 1, "no per-release dump"
    assert "- **PyTorch**: 2.5.1 (cu126) → 2.13.0 (cu126)\n- **Reason**: 12.6.0 is EOL\n" in text
    deployed = set_changelog_status(
        text, " - baseimage/cuda-12.9.1", "deployed to production 2026-12-03 (approved by bob)"
    )
    assert "- **Status**: deployed to production 2026-12-03 (approved by bob)" in deployed
    assert "- **Status**: ✅ Completed" in deployed, "earlier entries keep their status"
    assert (
        migration_doc(text, "d", "baseimage/cuda-12.9.1", "x", MOVES[:1], "2026-12-01").text.count(
            "### 2026-12-01 - baseimage/cuda-12.9.1"
        )
        == 1
    ), "the entry is added once"


def test_a_missing_section_is_a_warning_that_says_what_to_add() -> None:
    update = update_findings(SEED, "findings table", "docs/base-image-policy.md")
    assert update.text == SEED, "nothing changes, nothing fails"
    assert update.warnings == [
        "docs/base-image-policy.md: no findings section found; add a '## Review Findings' section (or "
        "<!-- baseimage:findings:start --> ... :end --> markers) for baseimage to keep it current"
    ]
    bare = "# Policy\n\nNothing here.\n"
    assert migration_doc(bare, "p.md", "b", "r", MOVES, "2026-12-01").warnings == [
        "p.md: no configuration section found; add a '## Current Configuration' section naming the base image "
        "(**Base Image**: `...`) for baseimage to keep it current",
        "p.md: no matrix section found; add a '## Version Compatibility Matrix' section with a Component | Version "
        "| CUDA Support | Notes table for baseimage to keep it current",
        "p.md: no changelog section found; add a '## Changelog' section for baseimage to keep it current",
    ]


def test_findings_under_a_heading_get_markers_so_the_next_review_replaces_them() -> None:
    doc = "# P\n\n## Quarterly Review Findings\n\nOur notes stay.\n\n## Changelog\n"
    first = update_findings(doc, "first findings", "p.md").text
    assert "## Quarterly Review Findings\n\n<!-- baseimage:findings:start -->" in first and "Our notes stay." in first
    second = update_findings(first, "second findings", "p.md").text
    assert "second findings" in second and "first findings" not in second and "Our notes stay." in second
    assert second.count("<!-- baseimage:findings:start -->") == 1


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (  # markers: the whole table is regenerated
            "## Matrix\n<!-- baseimage:matrix:start -->\nold\n<!-- baseimage:matrix:end -->\n",
            "| PyTorch | 2.13.0 | 12.6 |  |",
        ),
        (  # a table with more columns: only Version and CUDA Support change
            "## Version Compatibility Matrix\n\n| Component | Version | CUDA Support | Owner | Notes |\n|---|---|---|---|---|\n"
            "| PyTorch | 2.5.0+ | 12.6 | ml-team | keep |\n",
            "| PyTorch | 2.13.0 | 12.6 | ml-team | keep |",
        ),
    ],
)
def test_the_matrix_is_updated_in_the_documents_own_table(doc: str, expected: str) -> None:
    update = update_matrix(doc, [Component("PyTorch", "2.13.0", "12.6")], "p.md")
    assert expected in update.text and update.warnings == []


def test_ranges_reach_the_matrix_as_the_files_now_say_them() -> None:
    """A requirements file with ranges (`cupy-cuda12x>=13,<14`, `onnxruntime-gpu~=1.20.0`): the
    matrix rows took only exact pins, so CuPy and ONNX Runtime kept their old versions."""
    doc = (
        "## Version Compatibility Matrix\n\n| Component | Version | CUDA Support | Notes |\n|---|---|---|---|\n"
        "| PyTorch | 2.5.1 | 12.6 | |\n| CuPy | 13.x | 12.x | |\n| ONNX Runtime | 1.20 | 12.x | |\n"
    )
    moved = Moved(
        "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
        "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
        {"torch": "2.5.1"},
        {"torch": "2.13.0"},
        "cu126",
        "cu126",
        "Dockerfile",
        ranges_after={"cupy-cuda12x": ">=13,<15", "onnxruntime-gpu": "~=1.26.0"},
    )
    text = migration_doc(doc, "p.md", "baseimage/cuda-12.9.1", "requested", [moved], "2026-12-01").text
    assert "| CuPy | >=13,<15 | 12.x |" in text
    assert "| ONNX Runtime | ~=1.26.0 | 12.x |" in text
    assert "| PyTorch | 2.13.0 | 12.6 |" in text


def test_a_table_that_already_says_it_is_left_byte_for_byte() -> None:
    """`docs check` on a document that is current: the user's `cu126`, their alignment and empty
    cells stay (they were rewritten to `12.6` and `|  |`, so a CI gate on docs check never passed)."""
    doc = (
        "## Version Compatibility Matrix\n\n| Component   | Version | CUDA Support | Notes |\n|---|---|---|---|\n"
        "| PyTorch     | 2.13.0  | cu126        | |\n| CuPy | 14.2.0 | 12.x | wheels |\n"
    )
    rows = [Component("PyTorch", "2.13.0", "12.6"), Component("CuPy", "14.2.0", "12.x", "cupy-cuda12x")]
    assert update_matrix(doc, rows, "p.md").text == doc
    moved = update_matrix(doc, [Component("PyTorch", "2.14.0", "12.6")], "p.md").text
    assert "| PyTorch | 2.14.0 | cu126 |  |\n| CuPy | 14.2.0 | 12.x | wheels |\n" in moved, moved
