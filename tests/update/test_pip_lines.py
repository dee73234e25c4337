"""``RUN pip install`` lines of Dockerfiles, NGC and CUDA alike, read and rewritten by exact
edits: index options in every form, pins in quotes and continuation lines, ``python -m pip``,
``pip3``, ``uv pip``, exec form and heredocs, and the ARG/ENV values they use (the edit goes
where the characters come from); refusals name the line; no-op rewrites are byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.update.pip_lines import dockerfile_pins, read_run_pins
from tasks.update.pip_rewrite import rewrite_pip_lines
from tasks.update.requirements import CurrentPins, RequirementChanges, RequirementsError
from tests.conftest import REPO_ROOT

PLAN = RequirementChanges("cu126", None, "2.13.0", "0.28.0", "cupy-cuda12x", "14.2.0", "1.26.0")
FROM = "FROM nvidia/cuda:12.6.0-runtime-ubuntu22.04\n"


@pytest.mark.parametrize(
    ("body", "variant", "pins"),
    [
        ("RUN pip install torch==2.5.1\n", None, {"torch": "2.5.1"}),
        (
            "RUN pip3 install 'torch==2.5.1' \"torchvision==0.20.1\"\n",
            None,
            {"torch": "2.5.1", "torchvision": "0.20.1"},
        ),
        ("RUN python3.11 -m pip install --no-cache-dir torch==2.5.1\n", None, {"torch": "2.5.1"}),
        ("RUN /opt/venv/bin/pip install -U torch==2.5.1\n", None, {"torch": "2.5.1"}),
        ("RUN uv pip install --system torch==2.5.1\n", None, {"torch": "2.5.1"}),
        ("RUN pip --disable-pip-version-check install torch==2.5.1\n", None, {"torch": "2.5.1"}),
        ("RUN pip install -i https://download.pytorch.org/whl/cu124 torch==2.5.1\n", "cu124", {"torch": "2.5.1"}),
        ("RUN pip install --index-url=https://download.pytorch.org/whl/cu121 torch\n", "cu121", {}),
        (
            "RUN pip install --extra-index-url \\\n    https://download.pytorch.org/whl/cu124 \\\n    torch==2.5.1+cu124\n",
            "cu124",
            {"torch": "2.5.1+cu124"},
        ),
        ("RUN apt-get update && pip install onnxruntime-gpu==1.20.1 || true\n", None, {"onnxruntime-gpu": "1.20.1"}),
        ("RUN --mount=type=cache,target=/root/.cache/pip pip install torch==2.5.1\n", None, {"torch": "2.5.1"}),
        ('RUN ["pip", "install", "onnxruntime-gpu==1.20.1"]\n', None, {"onnxruntime-gpu": "1.20.1"}),
        (
            "RUN <<EOF\nset -e\npip install --index-url https://download.pytorch.org/whl/cu124 \\\n  torch==2.5.1\nEOF\n",
            "cu124",
            {"torch": "2.5.1"},
        ),
        (
            "ENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu124\nRUN pip install torch==2.5.1\n",
            "cu124",
            {"torch": "2.5.1"},
        ),
        (
            "RUN PIP_INDEX_URL=https://download.pytorch.org/whl/cu118 pip install torch==2.5.1\n",
            "cu118",
            {"torch": "2.5.1"},
        ),
        (
            "ARG TORCH_CUDA=cu124\nRUN pip install --index-url https://download.pytorch.org/whl/${TORCH_CUDA} torch\n",
            "cu124",
            {},
        ),
        ("ARG V=2.5.1\nRUN pip install torch==$V\n", None, {"torch": "2.5.1"}),
        ("RUN echo pip install torch==9 && apt-get install -y python3-pip\n", None, {}),
        ("RUN pip install -r requirements.txt -c constraints.txt\n", None, {}),
        ("RUN pip download torch==2.5.1\n", None, {}),
        ("# RUN pip install torch==9\nRUN true\n", None, {}),
    ],
)
def test_what_the_pip_lines_ask_for(body: str, variant: str | None, pins: dict[str, str]) -> None:
    found = read_run_pins(FROM + body)
    assert (found.index_variant, found.pins) == (variant, pins)


def test_a_global_arg_reaches_a_stage_only_when_declared_there_and_build_args_win() -> None:
    text = (
        "ARG TORCH_CUDA=cu118\n"
        + FROM
        + "ARG TORCH_CUDA\nRUN pip install -i https://download.pytorch.org/whl/${TORCH_CUDA} torch\n"
    )
    assert read_run_pins(text).index_variant == "cu118"
    assert read_run_pins(text, {"TORCH_CUDA": "cu124"}).index_variant == "cu124"
    undeclared = (
        "ARG TORCH_CUDA=cu118\n" + FROM + "RUN pip install -i https://download.pytorch.org/whl/${TORCH_CUDA} torch\n"
    )
    assert read_run_pins(undeclared).index_variant is None


def test_ngc_dockerfile_of_this_repository() -> None:
    text = (REPO_ROOT / "dockerfiles/training/Dockerfile.ngc").read_text()
    assert dockerfile_pins(text) == CurrentPins(
        None, {"cupy-cuda12x": "13.4.1", "onnx": "1.17.0", "onnxruntime-gpu": "1.20.1"}
    )
    plan = RequirementChanges(cupy_package="cupy-cuda13x", cupy_version="14.2.0", onnxruntime_gpu="1.27.0")
    new = rewrite_pip_lines(text, "Dockerfile.ngc", plan).text
    assert new == text.replace('"cupy-cuda12x==13.4.1"', '"cupy-cuda13x==14.2.0"').replace(
        '"onnxruntime-gpu==1.20.1"', '"onnxruntime-gpu==1.27.0"'
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "RUN python3.11 -m pip install \\\n"
            '        --index-url "https://download.pytorch.org/whl/cu124" \\\n'
            "        \"torch==2.5.1\" 'torchvision==0.20.1' \\\n"
            " && pip3 install cupy-cuda12x==13.3.0 onnx==1.17.0\n",
            "RUN python3.11 -m pip install \\\n"
            '        --index-url "https://download.pytorch.org/whl/cu126" \\\n'
            "        \"torch==2.13.0\" 'torchvision==0.28.0' \\\n"
            " && pip3 install cupy-cuda12x==14.2.0 onnx==1.17.0\n",
        ),
        (  # the variant from an ARG default, versions written in the line
            "ARG TORCH_CUDA=cu124\n"
            "RUN pip install --extra-index-url=https://download.pytorch.org/whl/${TORCH_CUDA} torch==2.5.1+${TORCH_CUDA}\n",
            "ARG TORCH_CUDA=cu126\n"
            "RUN pip install --extra-index-url=https://download.pytorch.org/whl/${TORCH_CUDA} torch==2.13.0+${TORCH_CUDA}\n",
        ),
        (  # versions from ARG/ENV defaults, quoted
            'ARG TORCH_VERSION="2.5.1"\nENV ORT=1.20.1\nRUN pip install "torch==${TORCH_VERSION}" onnxruntime-gpu==$ORT\n',
            'ARG TORCH_VERSION="2.13.0"\nENV ORT=1.26.0\nRUN pip install "torch==${TORCH_VERSION}" onnxruntime-gpu==$ORT\n',
        ),
        (  # an index variable in ENV that expands an ARG
            "ARG CU=cu124\nENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/${CU}\nRUN pip install torch==2.5.1\n",
            "ARG CU=cu126\nENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/${CU}\nRUN pip install torch==2.13.0\n",
        ),
        (  # ranges move only as far as needed; exec form; CRLF
            'RUN pip install "cupy-cuda12x>=13.0,<13.4"\r\nRUN ["pip", "install", "onnxruntime-gpu==1.20.1"]\r\n',
            'RUN pip install "cupy-cuda12x>=13.0,<14.3"\r\nRUN ["pip", "install", "onnxruntime-gpu==1.26.0"]\r\n',
        ),
        (  # a heredoc script
            "RUN <<EOF\npip install -i https://download.pytorch.org/whl/cu124 torch==2.5.1\nEOF\nRUN true\n",
            "RUN <<EOF\npip install -i https://download.pytorch.org/whl/cu126 torch==2.13.0\nEOF\nRUN true\n",
        ),
    ],
)
def test_rewrites_edit_exactly_where_each_value_comes_from(body: str, expected: str) -> None:
    assert rewrite_pip_lines(FROM + body, "Dockerfile", PLAN).text == FROM + expected


def test_a_cupy_package_renames_across_cuda_majors() -> None:
    plan = RequirementChanges(cupy_package="cupy-cuda13x", cupy_version="14.2.0")
    body = "RUN pip install cupy-cuda12x 'cupy-cuda12x[all]==13.3.0'\n"
    new = rewrite_pip_lines(FROM + body, "Dockerfile", plan).text
    assert new == FROM + "RUN pip install cupy-cuda13x 'cupy-cuda13x[all]==14.2.0'\n"


def test_an_arg_set_by_build_args_is_changed_where_the_build_is_invoked() -> None:
    text = (
        FROM + "ARG TORCH_CUDA=cu118\nRUN pip install -i https://download.pytorch.org/whl/${TORCH_CUDA} torch==2.5.1\n"
    )
    edit = rewrite_pip_lines(text, "Dockerfile", PLAN, {"TORCH_CUDA": "cu124"})
    assert edit.build_args == {"TORCH_CUDA": "cu126"}
    assert edit.text == text.replace("torch==2.5.1", "torch==2.13.0"), (
        "the Dockerfile's own default is not the one used"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # the ARG that names the variant also feeds the FROM
            "ARG CU=4\nFROM nvidia/cuda:12.${CU}.1-runtime-ubuntu22.04\nARG CU\n"
            "RUN pip install -i https://download.pytorch.org/whl/cu12${CU} torch==2.5.1\n",
            "also feeds a FROM",
        ),
        (  # the change spans the line's text and an ARG
            FROM + "ARG A=2.5\nRUN pip install torch==${A}.1\n",
            r"Dockerfile:3: in 'torch==2.5.1' the part to change",
        ),
        (  # escaped characters are not edited in place
            FROM + "RUN pip install onnxruntime-gpu==1.26.\\1\n",
            r"Dockerfile:2: the text to change \('1'\) is written with escape characters",
        ),
    ],
)
def test_what_cannot_be_edited_in_one_place_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(RequirementsError, match=message):
        rewrite_pip_lines(text, "Dockerfile", PLAN.__class__(**{**PLAN.to_json(), "onnxruntime_gpu": "1.26.2"}))


FIXTURES = sorted((REPO_ROOT / "tests" / "fixtures" / "dockerfiles").iterdir()) + sorted(
    (REPO_ROOT / "dockerfiles" / "training").glob("Dockerfile*")
)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_dockerfile_is_left_byte_identical_without_a_change(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    assert rewrite_pip_lines(text, path.name, RequirementChanges()).text == text
    try:
        new = rewrite_pip_lines(text, path.name, PLAN).text
    except RequirementsError:
        return  # refused with a message: never a half-written file
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert all("pip" in a or a.lstrip().startswith(("ARG", "ENV")) for a, _b in changed)


_PIN = st.sampled_from(["torch==2.5.1", "'torchvision==0.20.1'", '"onnxruntime-gpu==1.20.1"', "numpy==1.26.4", "x"])
_OPT = st.sampled_from(["", "--no-cache-dir ", "-i https://download.pytorch.org/whl/cu124 ", "-U "])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_OPT, st.lists(_PIN, min_size=1, max_size=4)), min_size=1, max_size=3))
def test_rewrites_read_back_as_planned(commands: list[tuple[str, list[str]]]) -> None:
    body = " \\\n && ".join(f"pip install {opt}{' '.join(pins)}" for opt, pins in commands)
    text = FROM + f"RUN {body}\n"
    new = rewrite_pip_lines(text, "Dockerfile", PLAN).text
    after = read_run_pins(new)
    before = read_run_pins(text)
    for name, version in before.pins.items():
        wanted = {"torch": "2.13.0", "torchvision": "0.28.0", "onnxruntime-gpu": "1.26.0"}.get(name, version)
        assert after.pins[name] == wanted
    assert after.index_variant == ("cu126" if before.index_variant else None)
    assert new.count("\n") == text.count("\n")


def test_sudo_and_env_options_before_pip() -> None:
    text = FROM + "RUN sudo -H pip install torch==2.5.1 && env -i PATH=/usr/bin pip3 install onnxruntime-gpu==1.20.1\n"
    assert read_run_pins(text).pins == {"torch": "2.5.1", "onnxruntime-gpu": "1.20.1"}


def test_a_refusal_never_shows_the_credentials_of_an_index_url() -> None:
    text = FROM + "ARG CU=2\nRUN pip install -i https://deploy:s3cr3t-t0ken@mirror.corp/whl/cu1${CU}4 torch==2.5.1\n"
    with pytest.raises(RequirementsError, match="spans several ARG/ENV values") as info:  # cu124 -> cu130
        rewrite_pip_lines(text, "Dockerfile", RequirementChanges(variant="cu130"))
    assert "s3cr3t-t0ken" not in str(info.value) and "https://***@mirror.corp" in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # a stage built FROM an earlier one inherits its ENV (not its ARGs), as BuildKit does
            " AS base\nENV TORCH_CUDA=cu124\nFROM base\nRUN pip install --index-url "
            "https://download.pytorch.org/whl/${TORCH_CUDA} torch==2.5.1\n",
            " AS base\nENV TORCH_CUDA=cu126\nFROM base\nRUN pip install --index-url "
            "https://download.pytorch.org/whl/${TORCH_CUDA} torch==2.13.0\n",
        ),
        (  # through two stages, the stage name in another case, an index variable set in the first
            " AS Base\nENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu124\n"
            "FROM base AS deps\nRUN true\nFROM --platform=linux/amd64 deps\nRUN pip install torch==2.5.1\n",
            " AS Base\nENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu126\n"
            "FROM base AS deps\nRUN true\nFROM --platform=linux/amd64 deps\nRUN pip install torch==2.13.0\n",
        ),
    ],
)
def test_env_of_a_parent_stage_is_followed(body: str, expected: str) -> None:
    text = FROM.rstrip("\n") + body
    assert read_run_pins(text).index_variant == "cu124"
    assert rewrite_pip_lines(text, "Dockerfile", PLAN).text == FROM.rstrip("\n") + expected


def test_an_arg_of_a_parent_stage_does_not_reach_the_next() -> None:
    text = (
        FROM.rstrip("\n")
        + " AS base\nARG CU=cu124\nFROM base\nRUN pip install -i https://download.pytorch.org/whl/${CU} torch==2.5.1\n"
    )
    assert read_run_pins(text).index_variant is None


@pytest.mark.parametrize("command", ["export", "declare -x"])
def test_an_index_variable_exported_in_the_run_is_read_and_moved(command: str) -> None:
    body = f"RUN {command} PIP_INDEX_URL=https://download.pytorch.org/whl/cu124 && pip install torch==2.5.1\n"
    assert read_run_pins(FROM + body).index_variant == "cu124"
    assert rewrite_pip_lines(FROM + body, "Dockerfile", PLAN).text == FROM + body.replace("cu124", "cu126").replace(
        "2.5.1", "2.13.0"
    )
