"""Applying plans to fixture git repositories: only the intended bytes change, one commit on the
plan's branch, idempotent, refused on a dirty tree, dry run changes nothing."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from tasks.errors import DirtyTreeError
from tasks.research.facts import load_facts
from tasks.research.report_model import ReviewReport
from tasks.research.stack import StackRequest, choose_stack
from tasks.update.apply import apply_plan, backup_name
from tasks.update.pip_lines import dockerfile_pins
from tasks.update.plan import ImageChange, MigrationPlan
from tasks.update.requirements import (
    RequirementChanges,
    read_requirements,
    rewrite_requirements,
)
from tests.conftest import REPO_ROOT
from tests.support.repo import commit_all, copy_managed

TODAY = date(2026, 11, 28)
ML = "dockerfiles/training/requirements/ml.txt"


def run(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_managed(tmp_path / "repo", ("dockerfiles", "docs"))
    (root / "dockerfiles" / "arg").mkdir()
    (root / "dockerfiles" / "arg" / "Dockerfile").write_text(
        "# escape=\\\nARG CUDA_VERSION=12.6.0\r\nFROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu22.04 AS base\r\nRUN true\r\n"
    )
    (root / "dockerfiles" / "legacy").mkdir()
    (root / "dockerfiles" / "legacy" / "Dockerfile").write_text("FROM nvidia/cuda:12.1.0-cudnn8-runtime-ubuntu22.04\n")
    return commit_all(root)


def changed(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def show(repo: Path, ref: str, path: str) -> str:
    return run(repo, "show", f"{ref}:{path}")


def planned(cuda: str) -> RequirementChanges:
    """What the planner writes into ml.txt for a move to `cuda` (torch answers from the facts)."""
    facts = load_facts()
    torch: dict[str, list[str]] = {}
    vision: dict[str, list[str]] = {}
    for release in facts.torch_releases:
        for variant in release.cuda:
            torch.setdefault(variant, []).append(release.torch)
            vision.setdefault(variant, []).append(release.torchvision)
    pins = read_requirements((REPO_ROOT / ML).read_text())
    return choose_stack([StackRequest("training", cuda, "3.11", None, torch, vision)], pins, facts).changes()


# Corrected: this plan was hand-written as torch 2.8.0+cu129 / onnxruntime-gpu 1.23.2, the planner's old
# (wrong) choice for 12.9.1; it is now the planner's own: torch 2.13.0 from cu126 (newest on any
# CUDA 12.x variant up to cu129), onnxruntime-gpu 1.26.0 (newest CUDA 12 build).
MINOR = MigrationPlan(
    (
        ImageChange(
            "training",
            "dockerfiles/training/Dockerfile",
            "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
            "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
            ML,
            planned("12.9.1"),
        ),
    ),
    ("12.6.0 is EOL",),
)


def test_cuda_minor_bump(repo: Path) -> None:
    result = apply_plan(repo, MINOR, today=TODAY)
    assert result.branch == "baseimage/cuda-12.9.1" and result.commit
    assert run(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main", "back where it started"
    assert run(repo, "status", "--porcelain") == ""
    branch = result.branch
    assert changed(
        show(repo, "main", "dockerfiles/training/Dockerfile"), show(repo, branch, "dockerfiles/training/Dockerfile")
    ) == [("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n", "FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04\n")]
    assert show(repo, branch, "dockerfiles/training/Dockerfile.cuda126.bak") == show(
        repo, "main", "dockerfiles/training/Dockerfile"
    )
    assert changed(show(repo, "main", ML), show(repo, branch, ML)) == [
        ("torch==2.5.1+cu126\n", "torch==2.13.0+cu126\n"),
        ("torchvision==0.20.1+cu126\n", "torchvision==0.28.0+cu126\n"),
        ("cupy-cuda12x==13.3.0\n", "cupy-cuda12x==14.2.0\n"),
        ("onnxruntime-gpu==1.20.1\n", "onnxruntime-gpu==1.26.0\n"),
    ]
    log = run(repo, "log", "--format=%s%n%b", "-1", branch)
    assert log.startswith("baseimage: migrate to cuda-12.9.1\n")
    assert "- training: nvidia/cuda:12.6.0-runtime-ubuntu22.04 -> nvidia/cuda:12.9.1-runtime-ubuntu22.04" in log
    assert "- 12.6.0 is EOL" in log
    assert run(repo, "rev-list", "--count", f"main..{branch}").strip() == "1"
    changelog = show(repo, branch, "CHANGELOG.md")
    assert "## [Unreleased]\n### Changed (2026-11-28, baseimage/cuda-12.9.1)\n- training: base image" in changelog
    assert "### 2026-11-28 - baseimage/cuda-12.9.1\n- **From**: `nvidia/cuda:12.6.0-runtime-ubuntu22.04`" in show(
        repo, branch, "docs/base-image-policy.md"
    )
    doc = show(repo, branch, "docs/base-image-policy.md")
    # The document in its own format: Current Configuration names the new image, the component
    # matrix has the new versions (its Notes kept), the changelog entry is the policy's.
    assert "**Base Image**: `nvidia/cuda:12.9.1-runtime-ubuntu22.04`" in doc
    assert "- **CUDA Version**: 12.9.1\n" in doc and "- **PyTorch Version**: 2.13.0 (cu126)\n" in doc
    assert "| CUDA Base Image | 12.9.1 | - | Current |" in doc
    assert "| PyTorch | 2.13.0 | 12.6 | Minimum version |" in doc
    assert "| ONNX Runtime | 1.26.0 | 12.x | onnxruntime-gpu |" in doc
    assert "- **PyTorch**: 2.5.1 (cu126) → 2.13.0 (cu126)\n- **Reason**: 12.6.0 is EOL\n" in doc
    untouched = run(repo, "diff", "--name-only", "main", branch).split()
    assert sorted(untouched) == sorted(
        [
            "CHANGELOG.md",
            "docs/base-image-policy.md",
            "dockerfiles/training/Dockerfile",
            "dockerfiles/training/Dockerfile.cuda126.bak",
            ML,
        ]
    )


def test_apply_twice_makes_no_new_commit(repo: Path) -> None:
    """A second run finds the branch holding the change: no new commit, and the reviewer is still
    shown the change (this test used to expect an empty diff, which is what a reviewer saw)."""
    first = apply_plan(repo, MINOR, today=TODAY)
    second = apply_plan(repo, MINOR, today=TODAY)
    assert second.already_applied and second.commit == first.commit
    assert second.diff == first.diff and "+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04" in second.diff
    assert run(repo, "rev-parse", first.branch).strip() == first.commit


def test_dirty_managed_file_is_refused(repo: Path) -> None:
    (repo / ML).write_text((repo / ML).read_text() + "requests==2.0\n")
    with pytest.raises(DirtyTreeError) as info:
        apply_plan(repo, MINOR, today=TODAY)
    assert str(info.value) == (
        f"{repo}: uncommitted changes in managed files: {ML}; commit or stash them first, "
        "so the migration commit holds only the migration"
    )
    assert "baseimage/cuda-12.9.1" not in run(repo, "branch")


def test_dry_run_prints_the_diff_and_changes_nothing(repo: Path) -> None:
    head = run(repo, "rev-parse", "HEAD")
    result = apply_plan(repo, MINOR, dry_run=True, today=TODAY)
    assert "-FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n+FROM nvidia/cuda:12.9.1-runtime-ubuntu22.04\n" in result.diff
    assert "+++ b/dockerfiles/training/Dockerfile.cuda126.bak" in result.diff
    assert result.commit is None and run(repo, "rev-parse", "HEAD") == head
    assert run(repo, "status", "--porcelain") == "" and "baseimage/" not in run(repo, "branch")


def test_cudnn_variant_tag(repo: Path) -> None:
    plan = MigrationPlan(
        (
            ImageChange(
                "legacy",
                "dockerfiles/legacy/Dockerfile",
                "nvidia/cuda:12.1.0-cudnn8-runtime-ubuntu22.04",
                "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04",
            ),
        )
    )
    result = apply_plan(repo, plan, today=TODAY)
    assert (
        show(repo, result.branch, "dockerfiles/legacy/Dockerfile")
        == "FROM nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04\n"
    )
    assert (
        show(repo, result.branch, "dockerfiles/legacy/Dockerfile.cuda121.bak")
        == "FROM nvidia/cuda:12.1.0-cudnn8-runtime-ubuntu22.04\n"
    )


def test_arg_based_tag_keeps_crlf_and_escape(repo: Path) -> None:
    plan = MigrationPlan(
        (
            ImageChange(
                "arg",
                "dockerfiles/arg/Dockerfile",
                "nvidia/cuda:12.6.0-cudnn-runtime-ubuntu22.04",
                "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04",
            ),
        )
    )
    result = apply_plan(repo, plan, today=TODAY)
    after = subprocess.run(
        ["git", "-C", str(repo), "show", f"{result.branch}:dockerfiles/arg/Dockerfile"], capture_output=True, check=True
    ).stdout
    assert (
        after
        == b"# escape=\\\nARG CUDA_VERSION=12.6.3\r\nFROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu22.04 AS base\r\nRUN true\r\n"
    )


def test_major_upgrade_renames_cupy(repo: Path) -> None:
    # Corrected: this kept the CUDA-12 onnxruntime-gpu 1.20.1 pin silently on CUDA 13 (onnxruntime_gpu None);
    # the planner moves it to the newest CUDA-13 build and says why.
    plan = MigrationPlan(
        (
            ImageChange(
                "training",
                "dockerfiles/training/Dockerfile",
                "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
                "nvidia/cuda:13.0.2-runtime-ubuntu22.04",
                ML,
                planned("13.0.2"),
            ),
        )
    )
    result = apply_plan(repo, plan, today=TODAY)
    assert result.branch == "baseimage/cuda-13.0.2"
    assert changed(show(repo, "main", ML), show(repo, result.branch, ML)) == [
        (
            "--extra-index-url https://download.pytorch.org/whl/cu126\n",
            "--extra-index-url https://download.pytorch.org/whl/cu130\n",
        ),
        ("torch==2.5.1+cu126\n", "torch==2.13.0+cu130\n"),
        ("torchvision==0.20.1+cu126\n", "torchvision==0.28.0+cu130\n"),
        ("cupy-cuda12x==13.3.0\n", "cupy-cuda13x==14.2.0\n"),
        ("onnxruntime-gpu==1.20.1\n", "onnxruntime-gpu==1.31.1\n"),
    ]


def test_ngc_tag_bump(repo: Path) -> None:
    plan = MigrationPlan(
        (
            ImageChange(
                "training-ngc",
                "dockerfiles/training/Dockerfile.ngc",
                "nvcr.io/nvidia/pytorch:25.04-py3",
                "nvcr.io/nvidia/pytorch:26.10-py3",
            ),
        )
    )
    result = apply_plan(repo, plan, today=TODAY)
    assert result.branch == "baseimage/ngc-26.10"
    assert changed(
        show(repo, "main", "dockerfiles/training/Dockerfile.ngc"),
        show(repo, result.branch, "dockerfiles/training/Dockerfile.ngc"),
    ) == [("FROM nvcr.io/nvidia/pytorch:25.04-py3\n", "FROM nvcr.io/nvidia/pytorch:26.10-py3\n")]
    assert "dockerfiles/training/Dockerfile.ngc.ngc2504.bak" in run(repo, "ls-tree", "-r", "--name-only", result.branch)


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("12.6.0-runtime-ubuntu22.04", "Dockerfile.cuda126.bak"),
        ("12.1.0-cudnn8-runtime-ubuntu22.04", "Dockerfile.cuda121.bak"),
        ("25.04-py3", "Dockerfile.ngc2504.bak"),
        ("latest", "Dockerfile.previous.bak"),
    ],
)
def test_backup_names(tag: str, name: str) -> None:
    assert backup_name(Path("x/Dockerfile"), tag) == Path("x") / name


def test_a_file_named_after_its_tag_is_named_once_unless_its_sibling_takes_that_name() -> None:
    alone = backup_name(Path("x/Dockerfile.cuda126"), "12.6.0-runtime-ubuntu22.04")
    assert alone == Path("x/Dockerfile.cuda126.bak")
    # x/Dockerfile exists: its own backup for 12.6 is x/Dockerfile.cuda126.bak
    beside = backup_name(Path("x/Dockerfile.cuda126"), "12.6.0-runtime-ubuntu22.04", lambda rel: rel == "x/Dockerfile")
    assert beside == Path("x/Dockerfile.cuda126.cuda126.bak")


def test_requirements_rewrite_leaves_unplanned_lines() -> None:
    text = "# comment\r\n--index-url https://mirror.local/whl/cu126\r\ntorch==2.5.1\r\nnumpy==2.0\r\n"
    out = rewrite_requirements(text, RequirementChanges(variant="cu128", torch="2.7.1"))
    assert out == "# comment\r\n--index-url https://mirror.local/whl/cu128\r\ntorch==2.7.1\r\nnumpy==2.0\r\n"
    assert rewrite_requirements(text, RequirementChanges()) == text


def test_plan_from_a_review_report_regenerates_the_matrix(repo: Path) -> None:
    from tasks.update.plans import from_report

    plan_json = {
        "kind": "cuda",
        "action": "migrate",
        "changes": planned("12.9.1").to_json(),
        "matrix": [
            {
                "cuda": "12.9.1",
                "tag": "12.9.1-runtime-ubuntu22.04",
                "status": "supported",
                "estimated_deletion": None,
                "min_driver": "575.57.08",
                "fleet_ok": True,
                "driver_path": "minor-version compatibility",
                "torch_variant": "cu126",
                "torch": "2.13.0",
                "torchvision": "0.28.0",
                "cupy": "cupy-cuda12x==14.2.0",
                "onnxruntime_gpu": "1.26.0",
                "ubuntu_end_of_support": "2027-05-31",
            }
        ],
    }
    report = {
        "images": [
            {
                "image": "training",
                "file": "dockerfiles/training/Dockerfile",
                "current": "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
                "target": "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
                "recommended": True,
                "reasons": ["12.6.0 is EOL"],
                "plan": plan_json,
            },
            {
                "image": "ngc",
                "file": "dockerfiles/training/Dockerfile.ngc",
                "current": "nvcr.io/nvidia/pytorch:25.04-py3",
                "target": "nvcr.io/nvidia/pytorch:26.10-py3",
                "recommended": False,
                "reasons": [],
                "plan": {"kind": "ngc"},
            },
        ]
    }
    plan = from_report(ReviewReport.from_json(report), {"training": ML})
    assert plan is not None and [c.image for c in plan.changes] == ["training"], "only recommended images move"
    assert plan.changes[0].changes == planned("12.9.1") and plan.reasons == ("training: 12.6.0 is EOL",)
    result = apply_plan(repo, plan, today=TODAY)
    doc = show(repo, result.branch, "docs/base-image-policy.md")
    # The per-release matrix lives in the review's report; the document's matrix is its components.
    assert "| training | 12.9.1 | supported |" not in doc
    assert "| CUDA Base Image | 12.9.1 | - | Current |" in doc


@pytest.mark.parametrize(
    ("text", "variant", "pins", "ranges"),
    [
        (
            "--extra-index-url https://download.pytorch.org/whl/cu126\ntorch==2.5.1+cu126  # note\nnumpy>=1.26,<2.2\n",
            "cu126",
            {"torch": "2.5.1+cu126"},
            {"numpy": "<2.2,>=1.26"},
        ),
        (
            "--index-url=https://mirror.local/whl/cu128\r\nTorchVision==0.22.1\r\n",
            "cu128",
            {"torchvision": "0.22.1"},
            {},
        ),
        (
            "cupy-cuda12x[ctk]==14.2.0\n-r other.txt\ntorch>=2.4,<2.9\n",
            None,
            {"cupy-cuda12x": "14.2.0"},
            {"torch": "<2.9,>=2.4"},
        ),
        ("# only a comment\n\n", None, {}, {}),
    ],
)
def test_read_requirements(text: str, variant: str | None, pins: dict[str, str], ranges: dict[str, str]) -> None:
    found = read_requirements(text)
    assert (found.index_variant, found.pins, found.ranges) == (variant, pins, ranges)


@pytest.mark.parametrize(
    ("text", "pins"),
    [
        (
            (REPO_ROOT / "dockerfiles" / "training" / "Dockerfile.ngc").read_text(),
            {"cupy-cuda12x": "13.4.1", "onnx": "1.17.0", "onnxruntime-gpu": "1.20.1"},
        ),
        (
            "FROM x\nRUN apt-get install -y a=1 && python3 -m pip install \\\n    'cupy-cuda12x==13.3.0' torch==2.5.1 ; echo b==2\n",
            {"cupy-cuda12x": "13.3.0", "torch": "2.5.1"},
        ),
        ("FROM x\nRUN echo torch==2.0\nCOPY a==b /c\n", {}),
    ],
)
def test_dockerfile_pip_pins(text: str, pins: dict[str, str]) -> None:
    assert dockerfile_pins(text).pins == pins
