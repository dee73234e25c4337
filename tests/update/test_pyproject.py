"""uv ``pyproject.toml`` projects (``[[tool.uv.index]]`` named after its CUDA variant with
``explicit = true``, ``[tool.uv.sources]`` mapping torch/torchvision to it, ``[project]
dependencies`` pins) rewritten with tomlkit: only the planned values change, every other byte
(comments, quoting, layout) stays; an unchanged project is byte-identical."""

from __future__ import annotations

import pytest

from tasks.update.pyproject import edit_pyproject, read_pyproject
from tasks.update.requirements import CurrentPins, RequirementChanges, RequirementsError
from tests.conftest import REPO_ROOT

PLAN = RequirementChanges("cu126", None, "2.13.0", "0.28.0", "cupy-cuda12x", "14.2.0", "1.26.0")
UV = """[project]
name = "heimdall-training"   # the service
requires-python = ">=3.11"
dependencies = [
    "torch==2.5.1",      # from the PyTorch index
    'torchvision==0.20.1',
    "cupy-cuda12x>=13.0,<13.4",
    "onnxruntime-gpu==1.20.1 ; sys_platform == \\"linux\\"",
    "fastapi>=0.115",
]

[project.optional-dependencies]
export = ["onnx==1.17.0", "onnxruntime-gpu==1.20.1"]

[tool.uv.sources]
torch = [{ index = "pytorch-cu124" }]
torchvision = { index = "pytorch-cu124" , marker = "sys_platform == 'linux'"}

[[tool.uv.index]]
name = "pytorch-cu124"  # PyTorch's CUDA wheels
url = "https://download.pytorch.org/whl/cu124"
explicit = true
"""


def test_the_uv_index_its_sources_and_the_pins_move_together() -> None:
    edit = edit_pyproject(UV, "pyproject.toml", PLAN)
    assert edit.text == (
        UV.replace('"torch==2.5.1"', '"torch==2.13.0"')
        .replace("'torchvision==0.20.1'", "'torchvision==0.28.0'")  # a literal string stays literal
        .replace("<13.4", "<14.3")
        .replace("onnxruntime-gpu==1.20.1", "onnxruntime-gpu==1.26.0")
        .replace("pytorch-cu124", "pytorch-cu126")
        .replace("whl/cu124", "whl/cu126")
    )
    assert edit.notes == (
        "pyproject.toml: project.dependencies: 'cupy-cuda12x>=13.0,<13.4' -> 'cupy-cuda12x>=13.0,<14.3': the range "
        "moved only as far as needed to admit 14.2.0",
    )


def test_what_the_project_pins_and_which_variant_torch_comes_from() -> None:
    found = read_pyproject(UV)
    assert found == CurrentPins(
        "cu124",
        {"torch": "2.5.1", "torchvision": "0.20.1", "onnxruntime-gpu": "1.20.1", "onnx": "1.17.0"},
        {"cupy-cuda12x": ">=13.0,<13.4", "fastapi": ">=0.115"},
    )


def test_nothing_planned_is_byte_identical_and_crlf_stays() -> None:
    assert edit_pyproject(UV, "pyproject.toml", RequirementChanges()).text == UV
    crlf = UV.replace("\n", "\r\n")
    assert edit_pyproject(crlf, "pyproject.toml", PLAN).text == edit_pyproject(UV, "p", PLAN).text.replace("\n", "\r\n")


def test_an_index_not_named_after_its_variant_keeps_its_name() -> None:
    text = (
        '[project]\nname = "x"\ndependencies = ["torch==2.5.1"]\n\n[tool.uv.sources]\ntorch = { index = "pytorch" }\n\n'
        '[[tool.uv.index]]\nname = "pytorch"\nurl = "https://download.pytorch.org/whl/cu124"\nexplicit = true\n'
    )
    assert edit_pyproject(text, "pyproject.toml", PLAN).text == text.replace("2.5.1", "2.13.0").replace(
        "cu124", "cu126"
    )


def test_the_legacy_uv_index_settings_move_too() -> None:
    text = '[tool.uv]\nextra-index-url = ["https://download.pytorch.org/whl/cu124", "https://pypi.nvidia.com"]\n'
    assert edit_pyproject(text, "pyproject.toml", PLAN).text == text.replace("cu124", "cu126")
    assert read_pyproject(text).index_variant == "cu124"


def test_a_rename_onto_an_index_that_exists_is_refused() -> None:
    text = (
        '[[tool.uv.index]]\nname = "pytorch-cu124"\nurl = "https://download.pytorch.org/whl/cu124"\n\n'
        '[[tool.uv.index]]\nname = "pytorch-cu126"\nurl = "https://download.pytorch.org/whl/cu126"\n'
    )
    with pytest.raises(
        RequirementsError, match="pytorch-cu124 would be renamed pytorch-cu126, which is already declared"
    ):
        edit_pyproject(text, "pyproject.toml", PLAN)


def test_invalid_toml_is_an_error_naming_the_file() -> None:
    with pytest.raises(RequirementsError, match=r"^services/pyproject.toml: not valid TOML"):
        read_pyproject("[project\n", "services/pyproject.toml")


def test_this_repositorys_own_project_file_is_left_alone() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert edit_pyproject(text, "pyproject.toml", RequirementChanges(variant="cu126")).text == text
