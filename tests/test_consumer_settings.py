"""`consumers:` in the policy file: each names where its onnxruntime pin is (or the version), errors
name the file, the line and the key; pins read from requirements files and Dockerfiles, and the
coupled bump rewrites exactly that pin."""

from __future__ import annotations

from pathlib import Path

import pytest

from baseimage.settings import cache_dir, load_settings
from tasks.errors import ConfigError
from tasks.research.consumers import ConsumerBump
from tasks.update.consumer_pins import find_pin, read_consumers, rewrite_pin

HEAD = "images:\n  - name: training\n    dockerfile: d/Dockerfile\n    track: cuda\n"


def policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config" / "policy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEAD + body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("consumers:\n  - name: inference\n", r"policy.yaml:6: consumers\[0\]: give exactly one of requirements"),
        (
            "consumers:\n  - name: inference\n    requirements: r.txt\n    onnxruntime: '1.20.1'\n",
            r"policy.yaml:6: consumers\[0\]: .*got requirements, onnxruntime",
        ),
        ("consumers:\n  - name: Inference\n    onnxruntime: '1.20.1'\n", r"policy.yaml:6: consumers\[0\]\.name"),
        ("consumers:\n  - name: inference\n    onnxruntime: latest\n", r"policy.yaml:7: consumers\[0\]\.onnxruntime"),
        (
            "consumers:\n  - name: inference\n    image: x\n    onnxruntime: '1.2'\n",
            r":7: consumers\[0\]\.image: unknown key",
        ),
        (
            "consumers:\n  - {name: a, onnxruntime: '1.20.1'}\n  - {name: a, onnxruntime: '1.17.3'}\n",
            r"policy.yaml:6: consumers: consumer names must be unique: a",
        ),
        ("policy:\n  bump_consumers: maybe\n", r"policy.yaml:6: policy\.bump_consumers"),
    ],
)
def test_bad_consumers_name_file_line_and_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(policy(tmp_path, body))


def test_pins_are_read_from_each_kind_of_source(tmp_path: Path) -> None:
    root = tmp_path
    (root / "svc").mkdir()
    (root / "svc" / "requirements.txt").write_text(
        "# onnxruntime==0.1 in a comment is not a pin\nnumpy<2\nonnxruntime==1.17.3 # pinned\n"
    )
    (root / "svc" / "Dockerfile").write_text(
        "FROM python:3.11\n# RUN pip install onnxruntime-gpu==0.0.1\nRUN apt-get update && \\\n"
        "    pip install --no-cache-dir \\\n      onnxruntime-gpu==1.20.1 numpy\n"
    )
    path = policy(
        root,
        "repository: ..\nconsumers:\n  - name: inference\n    requirements: svc/requirements.txt\n"
        "  - name: edge\n    dockerfile: svc/Dockerfile\n  - name: partner\n    onnxruntime: '1.16.3'\n",
    )
    found = read_consumers(load_settings(path))
    assert [(c.name, c.package, c.version, c.where, c.dockerfile) for c in found] == [
        ("inference", "onnxruntime", "1.17.3", "svc/requirements.txt:3", False),
        ("edge", "onnxruntime-gpu", "1.20.1", "svc/Dockerfile:5", True),
        ("partner", "onnxruntime", "1.16.3", f"{path}:12: consumers[2].onnxruntime", False),
    ]


def test_a_missing_file_or_pin_names_the_policy_line_and_key(tmp_path: Path) -> None:
    path = policy(tmp_path, "repository: ..\nconsumers:\n  - name: inference\n    requirements: svc/requirements.txt\n")
    with pytest.raises(
        ConfigError, match=r"policy.yaml:8: consumers\[0\]\.requirements: cannot read .*svc/requirements.txt"
    ):
        read_consumers(load_settings(path))
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "requirements.txt").write_text("onnxruntime>=1.17\n")
    with pytest.raises(
        ConfigError, match=r"policy.yaml:8: consumers\[0\]\.requirements: svc/requirements.txt pins neither"
    ):
        read_consumers(load_settings(path))


def test_this_repository_has_an_inference_consumer() -> None:
    (consumer,) = read_consumers(load_settings())
    assert (consumer.name, consumer.package, consumer.file) == (
        "inference",
        "onnxruntime",
        "services/inference/requirements.txt",
    )


@pytest.mark.parametrize(
    ("text", "dockerfile"),
    [
        ("numpy\r\nonnxruntime==1.17.3  # keep\r\n", False),
        ("FROM x\nRUN pip install \\\n    onnxruntime==1.17.3 \\\n    numpy\n", True),
    ],
)
def test_the_bump_rewrites_only_the_pin(text: str, dockerfile: bool) -> None:
    bump = ConsumerBump("inference", "f", "onnxruntime", "1.17.3", "1.18.1", dockerfile)
    new = rewrite_pin(text, "f", bump, dockerfile)
    assert new == text.replace("1.17.3", "1.18.1")
    pin = find_pin(new, dockerfile)
    assert pin is not None and pin.version == "1.18.1"


def test_a_stale_bump_is_refused(tmp_path: Path) -> None:
    from tasks.errors import PlanMismatchError

    bump = ConsumerBump("inference", "svc/requirements.txt", "onnxruntime", "1.17.3", "1.18.1")
    with pytest.raises(
        PlanMismatchError,
        match=r"svc/requirements.txt: the plan bumps onnxruntime==1.17.3 .* has onnxruntime==1.20.1 at line 1",
    ):
        rewrite_pin("onnxruntime==1.20.1\n", "svc/requirements.txt", bump)


def test_cache_dir() -> None:
    assert cache_dir({"BASEIMAGE_CACHE_DIR": "/c"}) == Path("/c")
    assert cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/baseimage")
    assert cache_dir({"HOME": "/h"}) == Path("/h/.cache/baseimage")
