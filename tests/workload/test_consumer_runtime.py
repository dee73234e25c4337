"""The workload exports at a given opset (BASEIMAGE_ONNX_OPSET) and a second ONNX Runtime version,
in its own virtual environment, loads that model and reproduces torch's outputs; a model stamped
above what that runtime supports fails naming both; a version pip cannot install is skipped.

The second runtime comes from this machine's own package index (a file:// index in pip's
configuration), never the network; its environment is built once per test session (about 5-15 s
on the 2-core CI machine) and reused by every test here, as a real run reuses its cache."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.consumer_check import Reference, check_consumers, check_model, runtime_env
from tasks.workload.onnx_check import ExportOpsetError, export
from tasks.workload.run import WorkloadConfig, opset_from, run
from tests.conftest import IN_CI, REPO_ROOT

OPSET = 19


def _local_index() -> tuple[str, str] | None:
    """(file:// index URL, an onnxruntime version in it other than the one installed here)."""
    import onnxruntime

    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    urls = [*re.findall(r"file://[^\s'\"]+", done.stdout), os.environ.get("BASEIMAGE_TEST_ORT_INDEX", "")]
    for url in filter(None, urls):
        page = Path(url.removeprefix("file://")) / "onnxruntime" / "index.html"
        if not page.is_file():
            continue
        versions = set(re.findall(r"onnxruntime-([0-9]+\.[0-9]+\.[0-9]+)-cp3", page.read_text()))
        others = sorted(versions - {onnxruntime.__version__}, key=lambda v: tuple(map(int, v.split("."))))
        if others:
            return url, others[-1]
    return None


@pytest.fixture(scope="session")
def second_runtime(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """(index URL, version, cache dir) with that version's environment built once."""
    found = _local_index()
    if found is None:
        message = "no local package index with another onnxruntime version (pip config file:// index)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    url, version = found
    cache = tmp_path_factory.mktemp("cache") / "onnxruntime"  # as under BASEIMAGE_CACHE_DIR
    runtime_env(version, cache, index_url=url)
    return url, version, cache


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("workload")
    result = run(
        WorkloadConfig(steps=4, train_samples=64, test_samples=32, device="cpu", out_dir=out, onnx_opset=OPSET)
    )
    return out / "model.onnx", result


def test_the_workload_exports_at_the_opset_asked_for(exported: tuple[Path, dict[str, Any]]) -> None:
    _model, result = exported
    onnx = result["onnx"]
    assert result["ok"], result["checks"]
    assert (onnx["opset"], onnx["ir_version"], onnx["opset_requested"], onnx["exporter"]) == (19, 9, 19, "torchscript")
    reference = onnx["reference"]
    assert reference["count"] == 8 and len(reference["logits"]) == 8 and len(reference["logits"][0]) == 10


def test_a_second_runtime_loads_the_model_in_its_own_environment(
    exported: tuple[Path, dict[str, Any]], second_runtime: tuple[str, str, Path]
) -> None:
    model, result = exported
    url, version, cache = second_runtime
    reference = Reference.from_workload(result["onnx"]["reference"])
    checked = check_model(model, reference, "inference", version, cache, index_url=url)
    assert checked.status == "passed", checked.message
    assert checked.version == version and checked.consumer == "inference"
    assert checked.message.startswith(f"inference: onnxruntime {version} (CPU) loads the model (opset 19, IR 9)")
    assert checked.max_abs_diff is not None and checked.max_abs_diff <= 1e-3
    assert checked.providers and "CPUExecutionProvider" in checked.providers
    assert checked.to_json()["providers"] == list(checked.providers)
    probe = subprocess.run(
        [
            str(cache / f"onnxruntime-{version}-py{sys.version_info.major}{sys.version_info.minor}" / "bin" / "python"),
            "-I",
            "-c",
            "import onnxruntime; print(onnxruntime.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert probe.stdout.strip() == version, "the check ran in an environment holding that version, not this one"


def test_the_environment_is_reused(second_runtime: tuple[str, str, Path]) -> None:
    _url, version, cache = second_runtime
    before = {p.name for p in cache.iterdir()}
    python = runtime_env(version, cache, index_url="file:///nonexistent-index-so-a-reinstall-would-fail")
    assert python.exists() and {p.name for p in cache.iterdir()} == before


def test_a_model_above_the_runtime_fails_naming_both(
    exported: tuple[Path, dict[str, Any]], second_runtime: tuple[str, str, Path], tmp_path: Path
) -> None:
    import onnx

    model, result = exported
    url, version, cache = second_runtime
    proto = onnx.load(str(model))
    proto.opset_import[0].version = 99  # stamped above any release (a newer exporter's model)
    high = tmp_path / "high.onnx"
    onnx.save(proto, str(high))
    checked = check_model(
        high, Reference.from_workload(result["onnx"]["reference"]), "inference", version, cache, index_url=url
    )
    assert checked.status == "failed"
    assert f"inference: onnxruntime {version} cannot load the model (opset 99, IR 9): it supports opset up to" in (
        checked.message
    )
    assert "Current official support for domain ai.onnx is till opset" in checked.message


def test_a_version_that_cannot_be_installed_is_skipped(
    exported: tuple[Path, dict[str, Any]], second_runtime: tuple[str, str, Path]
) -> None:
    model, result = exported
    url, _version, cache = second_runtime
    (checked,) = check_consumers(model, result["onnx"]["reference"], [("inference", "1.99.0")], cache, index_url=url)
    assert checked.status == "skipped"
    assert checked.message.startswith("skipped: inference: onnxruntime 1.99.0 cannot be installed here")
    assert "No matching distribution" in checked.message or "Could not find a version" in checked.message


def test_no_reference_is_skipped_not_passed(exported: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    model, _result = exported
    (checked,) = check_consumers(model, None, [("inference", "1.20.1")], tmp_path)
    assert checked.status == "skipped" and "no onnx.reference" in checked.message


def test_an_opset_the_exporter_cannot_write_is_an_error(tmp_path: Path) -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).eval()
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        expected = r"ONNX opset 99: the TorchScript exporter writes at most 20 here .* install onnxscript"
    else:  # with onnxscript the torch.export-based exporter runs, and must still not pass silently
        expected = r"."
    with pytest.raises((ExportOpsetError, RuntimeError, ValueError), match=expected):
        export(model, torch.zeros(1, 3, 8, 8), tmp_path / "m.onnx", opset=99)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), (" ", None), ("17", 17), (" 20 ", 20), ("7", 7), ("99", 99)],
)
def test_opset_variable(value: str | None, expected: int | None) -> None:
    assert opset_from(value) == expected


@pytest.mark.parametrize("value", ["6", "100", "seventeen", "17.0", "-1", "\u0661\u0667"])
def test_bad_opset_variable(value: str) -> None:
    with pytest.raises(ValueError, match=r"BASEIMAGE_ONNX_OPSET=.*expected an ONNX opset"):
        opset_from(value)


def test_command_line_names_a_bad_opset(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tasks.workload", "--out", str(tmp_path / "r.json")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "BASEIMAGE_ONNX_OPSET": "latest"},
    )
    assert done.returncode == 2 and "BASEIMAGE_ONNX_OPSET='latest'" in done.stderr
    assert not (tmp_path / "r.json").exists()


def test_the_service_reads_the_opset(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.training.settings import ServiceSettings

    monkeypatch.setenv("BASEIMAGE_ONNX_OPSET", "18")
    assert ServiceSettings.from_env().onnx_opset == 18
    monkeypatch.setenv("BASEIMAGE_ONNX_OPSET", "")
    assert ServiceSettings.from_env().onnx_opset is None


def test_reference_json_round_trip(exported: tuple[Path, dict[str, Any]]) -> None:
    _model, result = exported
    again = json.loads(json.dumps(result["onnx"]["reference"]))
    ref = Reference.from_workload(again)
    assert ref.inputs.shape == (8, 3, 32, 32) and ref.logits.shape == (8, 10)


def test_the_validate_flows_consumer_check(
    exported: tuple[Path, dict[str, Any]],
    second_runtime: tuple[str, str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The validate flow's consumers check (tasks/checks/consumers.py): the model from the
    candidate's /models/ID.onnx, each consumer's pin as the validated tree has it, one result per
    consumer naming the version."""
    from baseimage import wiring
    from baseimage.settings import load_settings
    from tasks.checks.consumers import Consumers
    from tasks.validation import CheckResult
    from tests.support.http_endpoint import Endpoint, Reply, Request

    model, result = exported
    url, version, cache = second_runtime
    tree = tmp_path / "tree"
    (tree / "svc").mkdir(parents=True)
    (tree / "svc" / "requirements.txt").write_text(f"onnxruntime=={version}\n")
    config = tmp_path / "policy.yaml"
    config.write_text(
        "images: [{name: t, dockerfile: d/Dockerfile, track: cuda}]\n"
        "consumers:\n  - {name: inference, requirements: svc/requirements.txt}\n"
        "  - {name: legacy, onnxruntime: '1.99.0'}\n"
    )
    monkeypatch.setenv("BASEIMAGE_CACHE_DIR", str(cache.parent))  # the session's environment is found there
    monkeypatch.setenv("PIP_INDEX_URL", url)  # pip's own setting: the check never reaches the network
    body = model.read_bytes()

    def serve(request: Request) -> Reply:
        return Reply(200, body) if request.path == "/models/j1.onnx" else Reply(404)

    job = {"job_id": "j1", "model_url": "/models/j1.onnx", "result": {"onnx": result["onnx"]}}
    with Endpoint(serve) as endpoint:
        run = wiring.check_run(load_settings(config), tree, "d/Dockerfile", "r1")
        run = dataclasses.replace(run, base_url=endpoint.url)
        checks = Consumers().run(run, {"training": CheckResult("training", "passed", "", job)})
    by_name = {c.name: c for c in checks}
    assert by_name["consumer:inference"].status == "passed", by_name["consumer:inference"].message
    assert f"onnxruntime {version}" in by_name["consumer:inference"].message
    assert by_name["consumer:inference"].data["version"] == version
    assert by_name["consumer:legacy"].status == "skipped"
    assert "onnxruntime 1.99.0 cannot be installed here" in by_name["consumer:legacy"].message
