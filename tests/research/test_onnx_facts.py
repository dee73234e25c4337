"""The ONNX compatibility facts pinned to what the packages themselves said (scripts/probe_onnxruntime.py
loading stamped models in each onnxruntime release; the torch wheels' torch/onnx sources; exports
measured with torch), each row with its source and date."""

from __future__ import annotations

from datetime import date

import pytest

from tasks.research.facts import load_facts

FACTS = load_facts()


@pytest.mark.parametrize(
    ("version", "opset", "ir"),
    [
        ("1.15.1", 19, 9),
        ("1.16.3", 19, 9),
        ("1.17.3", 20, 9),
        ("1.18.0", 21, 10),
        ("1.18.1", 21, 10),
        ("1.19.2", 21, 10),
        ("1.20.1", 21, 10),
        ("1.21.1", 22, 10),
        ("1.22.1", 22, 10),
        ("1.23.2", 23, 11),
        ("1.24.4", 25, 13),
        ("1.26.0", 26, 13),
        ("1.31.1", 26, 13),
        ("1.32.0", 28, 14),
        ("1.17.2", 20, 9),  # a patch between two rows of one minor: that minor's limits
    ],
)
def test_onnxruntime_limits(version: str, opset: int, ir: int) -> None:
    row = FACTS.ort_limits(version)
    assert row is not None and (row.max_opset, row.max_ir) == (opset, ir)
    assert row.provenance is not None and row.provenance.as_of == date(2026, 12, 1)
    assert "InferenceSession" in row.provenance.source and "pip install onnxruntime==VERSION" in row.provenance.source


def test_an_unknown_onnxruntime_is_unknown() -> None:
    assert FACTS.ort_limits("1.14.1") is None and FACTS.ort_limits("not-a-version") is None


@pytest.mark.parametrize(
    ("torch", "exporter", "opset", "ir"),
    [
        ("2.4.1", "torchscript", 17, None),
        ("2.5.1+cu126", "torchscript", 17, None),
        ("2.7.1", "torchscript", 17, None),
        ("2.8.0", "torchscript", 18, None),
        ("2.9.1", "dynamo", 20, 10),  # the exporter changed in 2.9 (dynamo=True by default)
        ("2.13.0", "dynamo", 20, 10),
        ("2.14.1", "dynamo", 20, 10),
    ],
)
def test_torch_export_defaults(torch: str, exporter: str, opset: int, ir: int | None) -> None:
    row = FACTS.torch_export(torch)
    assert row is not None and (row.exporter, row.default_opset, row.ir_version) == (exporter, opset, ir)
    assert row.torchscript_max_opset == 20
    assert row.provenance is not None and "ONNX_DEFAULT_OPSET" in row.provenance.source
    if exporter == "dynamo":
        assert (row.min_opset, row.max_opset) == (18, 23)


@pytest.mark.parametrize(("opset", "ir"), [(13, 7), (15, 8), (17, 8), (18, 8), (19, 9), (20, 9)])
def test_torchscript_ir_of_an_opset(opset: int, ir: int) -> None:
    assert FACTS.opset_ir[opset] == ir


def test_the_torchscript_ir_table_matches_this_torch() -> None:
    """The table's rows are what the installed torch writes (re-measured here, not copied)."""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    import io
    import warnings

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    for opset in (13, 17, 20):
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), buffer, opset_version=opset, dynamo=False)
        assert onnx.load_from_string(buffer.getvalue()).ir_version == FACTS.opset_ir[opset], opset
