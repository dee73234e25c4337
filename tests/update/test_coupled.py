"""The coupled rewrite on a repository shaped like the user's (tests/fixtures/heimdall): the plan
made from every file that declares the stack (the requirements include and the uv
pyproject.toml included) is written to each of them, the Dockerfile's pip line and the ARG it
uses too; files the plan does not touch stay byte-identical; notes say what a reviewer must know;
credentials in index URLs never reach a diff, note or commit message."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from baseimage.settings import load_settings
from tasks.errors import ConfigError
from tasks.research.answers import managed_bases
from tasks.research.facts import load_facts
from tasks.research.report_model import ReviewReport
from tasks.update.apply import apply_plan, planned_files
from tasks.update.coupled import file_reader, read_stack
from tasks.update.plan import ImageChange, MigrationPlan
from tasks.update.plans import Rules, from_target
from tasks.update.requirements import RequirementChanges, RequirementsError
from tests.conftest import REPO_ROOT
from tests.research.test_plans import answers
from tests.support.repo import commit_all

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "heimdall"
TODAY = date(2026, 11, 28)
FACTS = load_facts()
UNTOUCHED = (
    "requirements/ml.txt",
    "services/training/Dockerfile.ngc",
    "services/training/Dockerfile.cuda126",
    "docker-compose.yml",
    "config/policy.yaml",
)


@pytest.fixture
def heimdall(tmp_path: Path) -> Path:
    return commit_all(Path(shutil.copytree(FIXTURE, tmp_path / "heimdall")))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def plan_for(repo: Path, version: str = "12.9.1") -> MigrationPlan:
    """The plan `migrate --to` makes for the repository (the registry and index from the facts)."""
    settings = load_settings(repo / "config" / "policy.yaml")
    plan = from_target(version, managed_bases(settings.images, settings.path), answers(), FACTS, Rules(535))
    projects = {i.name: str(i.pyproject) for i in settings.images if i.pyproject}
    return MigrationPlan(
        tuple(
            ImageChange(
                c.image,
                c.dockerfile,
                c.current,
                c.target,
                c.requirements,
                c.changes,
                c.dockerfile_pins,
                pyproject=projects.get(c.image),
            )
            for c in plan.changes
        ),
        plan.reasons,
    )


def test_the_plan_reads_every_file_that_declares_the_stack(heimdall: Path) -> None:
    stack = read_stack(file_reader(heimdall), "requirements/ml.txt", "pyproject.toml")
    assert stack.files == ("requirements/ml.txt", "requirements/gpu.txt", "pyproject.toml")
    assert stack.pins.index_variant == "cu124"  # the uv index torch comes from
    assert stack.pins.pins == {
        "onnxruntime-gpu": "1.20.1",
        "onnx": "1.17.0",
        "torch": "2.5.1",
        "torchvision": "0.20.1",
    }
    assert stack.pins.ranges == {
        "cupy-cuda12x": "<13.4,>=13.0",
        "numpy": "<2.2,>=1.26",
        "fastapi": ">=0.115",
        "pytest": ">=8",
    }
    assert ("requirements/gpu.txt", "onnxruntime-gpu", "1.20.1") in stack.pinned(), "includes are audited too"
    (change,) = plan_for(heimdall).changes  # the NGC image and the 12.6-pinned one do not move on --to
    assert change.changes == RequirementChanges("cu126", None, "2.13.0", "0.28.0", "cupy-cuda12x", "14.2.0", "1.26.0")
    assert change.dockerfile_pins == RequirementChanges("cu126", None, "2.13.0", "0.28.0")


def test_every_declaration_moves_and_nothing_else_does(heimdall: Path) -> None:
    notes: list[str] = []
    files = planned_files(heimdall, plan_for(heimdall), TODAY, notes=notes)
    assert sorted(files) == [
        "CHANGELOG.md",
        "docs/base-image-policy.md",
        "pyproject.toml",
        "requirements/gpu.txt",
        "services/training/Dockerfile",
        "services/training/Dockerfile.cuda126.bak",
    ]
    assert not set(UNTOUCHED) & set(files), "byte-identical: not written at all"

    def changed(rel: str) -> list[tuple[str, str]]:
        old, new = files[rel]
        assert old is not None and old.count("\n") == new.count("\n")
        return [(a, b) for a, b in zip(old.splitlines(), new.splitlines(), strict=True) if a != b]

    assert changed("services/training/Dockerfile") == [
        ("ARG CUDA_VERSION=12.6.0", "ARG CUDA_VERSION=12.9.1"),  # the FROM, through its ARG
        ("ARG TORCH_CUDA=cu124", "ARG TORCH_CUDA=cu126"),  # the wheel variant the index URL uses
        ('        "torch==2.5.1" "torchvision==0.20.1" \\', '        "torch==2.13.0" "torchvision==0.28.0" \\'),
    ]
    assert changed("requirements/gpu.txt") == [
        ("cupy-cuda12x>=13.0,<13.4", "cupy-cuda12x>=13.0,<14.3"),
        ("onnxruntime-gpu==1.20.1", "onnxruntime-gpu==1.26.0"),
    ]
    assert changed("pyproject.toml") == [
        ('    "torch==2.5.1",', '    "torch==2.13.0",'),
        ('    "torchvision==0.20.1",', '    "torchvision==0.28.0",'),
        ('    "cupy-cuda12x>=13.0,<13.4",', '    "cupy-cuda12x>=13.0,<14.3",'),
        ('    "onnxruntime-gpu==1.20.1",', '    "onnxruntime-gpu==1.26.0",'),
        ('torch = [{ index = "pytorch-cu124" }]', 'torch = [{ index = "pytorch-cu126" }]'),
        ('torchvision = [{ index = "pytorch-cu124" }]', 'torchvision = [{ index = "pytorch-cu126" }]'),
        ('name = "pytorch-cu124"', 'name = "pytorch-cu126"'),
        ('url = "https://download.pytorch.org/whl/cu124"', 'url = "https://download.pytorch.org/whl/cu126"'),
    ]
    range_note = (
        "requirements/gpu.txt:2: cupy-cuda12x>=13.0,<13.4 -> cupy-cuda12x>=13.0,<14.3: the range moved only as far "
        "as needed to admit 14.2.0 (the plan's choice)"
    )
    assert range_note in notes
    assert f"- {range_note}\n" in files["CHANGELOG.md"][1], "the changelog says so"
    doc = files["docs/base-image-policy.md"][1]
    assert "- **PyTorch**: 2.5.1 (cu124) → 2.13.0 (cu126)" in doc, "the document reads the pins where they are"


def test_applied_once_with_the_notes_in_the_commit_and_the_checkout_untouched(heimdall: Path) -> None:
    before = {p: (heimdall / p).read_bytes() for p in (*UNTOUCHED, "pyproject.toml", "requirements/gpu.txt")}
    plan = plan_for(heimdall)
    result = apply_plan(heimdall, plan, today=TODAY)
    assert result.commit and git(heimdall, "status", "--porcelain") == ""
    assert {p: (heimdall / p).read_bytes() for p in before} == before
    for rel in UNTOUCHED:
        assert git(heimdall, "diff", "--quiet", "main", result.branch, "--", rel) == ""
    message = git(heimdall, "log", "-1", "--format=%B", result.branch)
    assert "\nNotes:\n- requirements/gpu.txt:2: cupy-cuda12x>=13.0,<13.4 -> cupy-cuda12x>=13.0,<14.3" in message
    again = apply_plan(heimdall, plan, today=TODAY)
    assert again.already_applied and again.commit == result.commit


def test_an_ngc_images_pip_line_takes_the_plans_pins(heimdall: Path) -> None:
    plan = MigrationPlan(
        (
            ImageChange(
                "training-ngc",
                "services/training/Dockerfile.ngc",
                "nvcr.io/nvidia/pytorch:25.04-py3",
                "nvcr.io/nvidia/pytorch:25.11-py3",
                dockerfile_pins=RequirementChanges(None, None, None, None, "cupy-cuda13x", "14.2.0", "1.27.0"),
            ),
        )
    )
    files = planned_files(heimdall, plan, TODAY)
    old, new = files["services/training/Dockerfile.ngc"]
    assert old is not None
    assert new == old.replace("nvidia/pytorch:25.04-py3", "nvidia/pytorch:25.11-py3").replace(
        "'cupy-cuda12x==13.4.1'", "'cupy-cuda13x==14.2.0'"
    ).replace("onnxruntime-gpu==1.20.1", "onnxruntime-gpu==1.27.0")


def test_a_pip_line_arg_set_by_build_args_is_changed_in_the_policy_file(heimdall: Path) -> None:
    config = heimdall / "config" / "policy.yaml"
    config.write_text(
        config.read_text().replace(
            '    python: "3.11"\n', '    python: "3.11"\n    build_args: {TORCH_CUDA: cu124}\n', 1
        )
    )
    git(heimdall, "commit", "-qam", "the build sets TORCH_CUDA")
    plan = plan_for(heimdall)
    plan = MigrationPlan(
        tuple(ImageChange(**{**c.__dict__, "build_args": (("TORCH_CUDA", "cu124"),)}) for c in plan.changes),
        plan.reasons,
        config="config/policy.yaml",
    )
    args: dict[str, dict[str, str]] = {}
    files = planned_files(heimdall, plan, TODAY, build_args=args)
    assert "build_args: {TORCH_CUDA: cu126}" in files["config/policy.yaml"][1]
    assert "ARG TORCH_CUDA=cu124" in files["services/training/Dockerfile"][1], "the default is not what builds use"
    assert args["services/training/Dockerfile"]["TORCH_CUDA"] == "cu126"


def test_credentials_in_an_index_url_stay_in_the_file_and_out_of_every_text(heimdall: Path) -> None:
    gpu = heimdall / "requirements" / "gpu.txt"
    secret_url = "https://deploy:s3cr3t-t0ken@pypi.corp.example/whl/cu124"
    gpu.write_text(
        f"--extra-index-url {secret_url}\n" + gpu.read_text().replace("==1.20.1", "==1.20.1 --hash=sha256:ab")
    )
    git(heimdall, "commit", "-qam", "private index")
    result = apply_plan(heimdall, plan_for(heimdall), dry_run=True, today=TODAY)
    assert "s3cr3t-t0ken" not in result.diff and "https://***@pypi.corp.example/whl/cu126" in result.diff
    assert result.notes and all("s3cr3t-t0ken" not in n for n in result.notes)
    applied = apply_plan(heimdall, plan_for(heimdall), today=TODAY)
    assert "s3cr3t-t0ken" not in git(heimdall, "log", "-1", "--format=%B", applied.branch)
    assert f"--extra-index-url {secret_url.replace('cu124', 'cu126')}\n" in git(
        heimdall, "show", f"{applied.branch}:requirements/gpu.txt"
    ), "the user's file keeps what they wrote"


def test_includes_are_followed_where_pip_finds_them_and_said_when_not(tmp_path: Path) -> None:
    (tmp_path / "req").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "req" / "ml.txt").write_text(
        "-r ../shared/torch.txt\n-c constraints.txt\n-r /tmp/requirements/in-image.txt\n"
        "-r https://example.invalid/r.txt\n-r ../../outside.txt\n-r missing.txt\n-r ml.txt\n"
    )
    (tmp_path / "shared" / "torch.txt").write_text("--extra-index-url https://download.pytorch.org/whl/cu124\ntorch\n")
    (tmp_path / "req" / "constraints.txt").write_text("torch==2.5.1+cu124\n")
    stack = read_stack(file_reader(tmp_path), "req/ml.txt")
    assert stack.requirements == ("req/ml.txt", "shared/torch.txt", "req/constraints.txt")
    assert stack.pins.pins == {"torch": "2.5.1+cu124"} and stack.pins.index_variant == "cu124"
    assert stack.notes == (
        "req/ml.txt:3: the requirement file '/tmp/requirements/in-image.txt' is not a file in the repository: not followed",
        "req/ml.txt:4: the requirement file 'https://example.invalid/r.txt' is not a file in the repository: not followed",
        "req/ml.txt:5: the requirement file '../../outside.txt' is not a file in the repository: not followed",
        "req/ml.txt:6: includes req/missing.txt, which does not exist: not read",
    )
    plan = MigrationPlan(
        (
            ImageChange(
                "t",
                "Dockerfile",
                "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
                "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
                "req/ml.txt",
                RequirementChanges("cu126", torch="2.13.0"),
            ),
        )
    )
    (tmp_path / "Dockerfile").write_text("FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    files = planned_files(tmp_path, plan, TODAY)
    assert files["req/constraints.txt"][1] == "torch==2.13.0+cu126\n", "the pin where it is declared"
    assert files["shared/torch.txt"][1] == "--extra-index-url https://download.pytorch.org/whl/cu126\ntorch\n"
    assert "req/ml.txt" not in files


def test_a_pyproject_beside_the_requirements_is_found_and_a_named_one_must_exist(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\n")
    shutil.copy(FIXTURE / "pyproject.toml", tmp_path / "pyproject.toml")
    assert read_stack(file_reader(tmp_path), "requirements.txt").pyproject == "pyproject.toml"
    assert read_stack(file_reader(tmp_path), "pyproject.toml").files == ("pyproject.toml",), (
        "a pyproject as the stack file"
    )
    assert read_stack(file_reader(tmp_path), "pyproject.toml", "pyproject.toml").files == ("pyproject.toml",)
    with pytest.raises(RequirementsError, match=r"^tools/pyproject\.toml: pyproject\.toml is missing"):
        read_stack(file_reader(tmp_path), "requirements.txt", "tools/pyproject.toml")
    (tmp_path / "latin1.txt").write_bytes(b"torch==2.5.1 # caf\xe9\n")
    with pytest.raises(RequirementsError, match=r"latin1.txt: not UTF-8 \(byte 18"):
        read_stack(file_reader(tmp_path), "latin1.txt")


def test_images_pyproject_is_a_setting(tmp_path: Path) -> None:
    settings = load_settings(FIXTURE / "config" / "policy.yaml")
    assert [str(i.pyproject) if i.pyproject else None for i in settings.images] == ["pyproject.toml", None, None]
    bad = tmp_path / "policy.yaml"
    bad.write_text("images: [{name: t, dockerfile: D, track: cuda, pyproject: [1]}]\n")
    with pytest.raises(ConfigError, match=r"images\[0\]\.pyproject"):
        load_settings(bad)


def test_an_image_whose_only_stack_file_is_its_pyproject(heimdall: Path) -> None:
    config = heimdall / "config" / "policy.yaml"
    config.write_text(config.read_text().replace("    requirements: requirements/ml.txt\n", "", 1))
    git(heimdall, "commit", "-qam", "uv only")
    (change,) = plan_for(heimdall).changes
    assert change.requirements == "pyproject.toml" and change.changes.torch == "2.13.0"
    files = planned_files(heimdall, plan_for(heimdall), TODAY)
    assert "pyproject.toml" in files and "requirements/gpu.txt" not in files
    assert 'url = "https://download.pytorch.org/whl/cu126"' in files["pyproject.toml"][1]


def test_a_pip_line_that_installs_the_requirements_takes_their_index_variant(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\nARG TORCH_CUDA=cu124\n"
        "RUN pip install --extra-index-url https://download.pytorch.org/whl/${TORCH_CUDA} -r /tmp/ml.txt\n"
    )
    (tmp_path / "ml.txt").write_text("torch==2.5.1+cu124\n")
    plan = MigrationPlan(
        (
            ImageChange(
                "t",
                "Dockerfile",
                "nvidia/cuda:12.6.0-runtime-ubuntu22.04",
                "nvidia/cuda:12.9.1-runtime-ubuntu22.04",
                "ml.txt",
                RequirementChanges("cu126", torch="2.13.0"),
                # what the planner decided for the pip line alone (no torch pin there): ignored for the variant
                RequirementChanges("cu129"),
            ),
        )
    )
    files = planned_files(tmp_path, plan, TODAY)
    assert "ARG TORCH_CUDA=cu126\n" in files["Dockerfile"][1], "the index serves the requirements' torch"
    assert files["ml.txt"][1] == "torch==2.13.0+cu126\n"


def test_this_repositorys_ngc_dockerfile_takes_the_reviews_pip_line_decisions(tmp_path: Path) -> None:
    from tasks.update.plans import from_report
    from tests.support.repo import copy_managed

    repo = commit_all(copy_managed(tmp_path / "repo", ("dockerfiles", "docs")))
    image = {
        "image": "training-ngc",
        "file": "dockerfiles/training/Dockerfile.ngc",
        "current": "nvcr.io/nvidia/pytorch:25.04-py3",
        "target": "nvcr.io/nvidia/pytorch:25.11-py3",
        "recommended": True,
        "reasons": ["25.04 is EOL"],
        "plan": {
            "action": "migrate",
            "changes": {},
            "dockerfile_changes": {
                "cupy_version": "13.6.0",
                "cupy_package": "cupy-cuda12x",
                "onnxruntime_gpu": "1.26.0",
            },
        },
    }
    plan = from_report(ReviewReport.from_json({"images": [image]}), {"training-ngc": None})
    assert plan is not None
    result = apply_plan(repo, plan, today=TODAY)
    after = git(repo, "show", f"{result.branch}:dockerfiles/training/Dockerfile.ngc")
    assert 'RUN pip install "cupy-cuda12x==13.6.0" "onnx==1.17.0" "onnxruntime-gpu==1.26.0"\n' in after
    assert "FROM nvcr.io/nvidia/pytorch:25.11-py3\n" in after
