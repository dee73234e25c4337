"""Requirements files rewritten the way pip reads them: every index option form, continuation
lines, comments, CRLF, ranges moved only as far as needed (and said so), hashes of a changed pin
dropped (and said so), lines the plan does not touch byte for byte; the result re-read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.update.requirements import (
    RequirementChanges,
    RequirementsError,
    edit_requirements,
    read_requirements,
    rewrite_requirements,
)

PLAN = RequirementChanges("cu126", None, "2.13.0", "0.28.0", "cupy-cuda12x", "14.2.0", "1.26.0")
MAJOR = RequirementChanges("cu130", None, "2.13.0", "0.28.0", "cupy-cuda13x", "14.2.0", "1.27.0")


@pytest.mark.parametrize(
    ("line", "moved"),
    [
        (
            "--extra-index-url https://download.pytorch.org/whl/cu124",
            "--extra-index-url https://download.pytorch.org/whl/cu126",
        ),
        (
            "--extra-index-url=https://download.pytorch.org/whl/cu124",
            "--extra-index-url=https://download.pytorch.org/whl/cu126",
        ),
        ("--index-url https://download.pytorch.org/whl/cu124/", "--index-url https://download.pytorch.org/whl/cu126/"),
        ("-i https://download.pytorch.org/whl/cu124", "-i https://download.pytorch.org/whl/cu126"),
        ("-ihttps://download.pytorch.org/whl/cu124", "-ihttps://download.pytorch.org/whl/cu126"),
        (
            "-i   https://mirror.corp/pytorch-cu124/simple  # our mirror",
            "-i   https://mirror.corp/pytorch-cu126/simple  # our mirror",
        ),
        ("--extra-index-url https://pypi.nvidia.com", "--extra-index-url https://pypi.nvidia.com"),
    ],
)
def test_every_index_option_form_moves_to_the_planned_variant(line: str, moved: str) -> None:
    text = f"# stack\n{line}\ntorch==2.5.1\n"
    assert rewrite_requirements(text, PLAN) == f"# stack\n{moved}\ntorch==2.13.0\n"
    if "cu124" in line:
        assert read_requirements(text).index_variant == "cu124"


def test_pins_ranges_renames_and_everything_else_byte_for_byte() -> None:
    text = (
        "# ML stack\r\n"
        "--extra-index-url https://download.pytorch.org/whl/cu124\r\n"
        "torch==2.5.1+cu124\r\n"
        "torchvision == 0.20.1+cu124   # paired with torch\r\n"
        'cupy-cuda12x >= 13.0, <13.4 ; python_version >= "3.9"\r\n'
        "onnxruntime-gpu[cuda]==1.20.1\r\n"
        "numpy>=1.26,<2.2\r\n"
        "onnx==1.17.0\r\n"
    )
    edit = edit_requirements(text, "requirements/ml.txt", MAJOR)
    assert edit.text == (
        "# ML stack\r\n"
        "--extra-index-url https://download.pytorch.org/whl/cu130\r\n"
        "torch==2.13.0+cu130\r\n"
        "torchvision == 0.28.0+cu130   # paired with torch\r\n"
        'cupy-cuda13x >= 13.0, <14.3 ; python_version >= "3.9"\r\n'
        "onnxruntime-gpu[cuda]==1.27.0\r\n"
        "numpy>=1.26,<2.2\r\n"
        "onnx==1.17.0\r\n"
    )
    assert edit.notes == (
        "requirements/ml.txt:5: cupy-cuda12x>= 13.0, <13.4 -> cupy-cuda13x>= 13.0, <14.3: the range moved only "
        "as far as needed to admit 14.2.0 (the plan's choice)",
    )


def test_a_range_that_already_admits_the_choice_is_kept_and_said_so() -> None:
    edit = edit_requirements("cupy-cuda12x>=13.0\n", "ml.txt", PLAN)
    assert edit.text == "cupy-cuda12x>=13.0\n"
    assert edit.notes == ("ml.txt:1: cupy-cuda12x>=13.0 already admits 14.2.0 (the plan's choice): kept",)


HASHED = (
    "--extra-index-url https://download.pytorch.org/whl/cu124\n"
    "torch==2.5.1+cu124 \\\n"
    "    --hash=sha256:aaaa \\\n"
    "    --hash=sha256:bbbb\n"
    "numpy==1.26.4 \\\n"
    "    --hash=sha256:cccc\n"
)


def test_the_hashes_of_a_changed_pin_are_removed_and_said_so_without_an_index() -> None:
    edit = edit_requirements(HASHED, "ml.txt", PLAN)
    assert edit.text == (
        "--extra-index-url https://download.pytorch.org/whl/cu126\n"
        "torch==2.13.0+cu126\n"
        "numpy==1.26.4 \\\n"
        "    --hash=sha256:cccc\n"
    )
    (note,) = edit.notes
    assert note.startswith("ml.txt:2: torch==2.13.0+cu126: the old --hash values were removed: no package index")
    assert "regenerate them" in note


def test_a_hash_on_the_same_line_goes_with_its_whitespace_and_the_comment_stays() -> None:
    text = "onnxruntime-gpu==1.20.1 --hash=sha256:cccc  # GPU build\nonnx==1.17.0\n"
    assert rewrite_requirements(text, PLAN) == "onnxruntime-gpu==1.26.0  # GPU build\nonnx==1.17.0\n"


def test_a_comment_line_ends_a_continuation_as_pip_reads_it() -> None:
    text = "torch==2.5.1 \\\n# a comment, not a continuation \\\nnumpy==1.26.4\n"
    assert read_requirements(text).pins == {"torch": "2.5.1", "numpy": "1.26.4"}
    assert rewrite_requirements(text, PLAN) == "torch==2.13.0 \\\n# a comment, not a continuation \\\nnumpy==1.26.4\n"


def test_a_version_split_across_a_continuation_is_refused_naming_the_line() -> None:
    with pytest.raises(RequirementsError, match=r"ml.txt:2: the version specifier is split across lines"):
        edit_requirements("# x\ntorch==2.5.\\\n1\n", "ml.txt", PLAN)


def test_a_package_installed_from_a_url_is_said_not_guessed() -> None:
    text = "torch @ https://download.pytorch.org/whl/cu124/torch-2.5.1%2Bcu124-cp311-cp311-linux_x86_64.whl\n"
    edit = edit_requirements(text, "ml.txt", PLAN)
    assert edit.text == text
    assert edit.notes == ("ml.txt:1: torch is installed from a URL here; move it to 2.13.0 by hand",)


def test_includes_and_options_are_read_not_taken_for_pins() -> None:
    text = "-r base.txt\n-c constraints.txt\n--requirement=more.txt\n-e ./lib\n--pre\ntorch>=2.4,<2.9\n"
    pins = read_requirements(text)
    assert pins.pins == {}
    assert pins.ranges == {"torch": "<2.9,>=2.4"}
    assert rewrite_requirements(text, RequirementChanges()) == text


_LINE = st.sampled_from(
    [
        "torch==2.5.1+cu124",
        "torchvision==0.20.1 \\\n    --hash=sha256:ab",
        "cupy-cuda12x>=13.0,<13.4",
        "onnxruntime-gpu==1.20.1  # gpu",
        "--extra-index-url https://download.pytorch.org/whl/cu124",
        "-i https://pypi.org/simple",
        "# comment \\",
        "",
        "   ",
        "numpy>=1.26,<2.2",
        "requests[socks]==2.32.3 ; python_version >= '3.9'",
        "-r other.txt",
        "\u2028",
        "fastapi==0.115.6\r",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_only_the_lines_the_plan_names_change(lines: list[str], ending: str) -> None:
    text = ending.join(lines) + ending
    assert rewrite_requirements(text, RequirementChanges()) == text
    new = rewrite_requirements(text, PLAN)
    untouched = ("numpy", "requests", "-r", "-i https://pypi", "fastapi", "#")
    for line in lines:
        if line.lstrip().startswith(untouched):
            assert line in new
    after = read_requirements(new)
    for name in ("torch", "torchvision", "onnxruntime-gpu"):
        if name in after.pins:
            assert after.pins[name].split("+")[0] in ("2.13.0", "0.28.0", "1.26.0")
