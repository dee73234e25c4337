"""Review-wide research sources (tasks/research/sources/): a new one is a class and one entry in
SOURCES; its answer is named in the report's sources line and its findings are in the report; a
source that fails as a whole is "not checked" there, and the review completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseimage.cli import main
from tasks.research.sources import SOURCES, Answer, SourceContext
from tests.conftest import REPO_ROOT


class DriverNotes:
    """The worked example of docs/architecture.md: a source that reads the bundled facts."""

    name = "driver-notes"
    label = "driver notes"

    def fetch(self, ctx: SourceContext) -> Answer:
        as_of = ctx.facts.eol_as_of
        return Answer(self.name, self.label, "bundled facts", as_of, (f"fleet note: support table as of {as_of}",))

    def unavailable(self, ctx: SourceContext, problem: str) -> Answer:
        return Answer(self.name, self.label, f"not checked: {problem}")


class Broken(DriverNotes):
    name = "broken"
    label = "broken source"

    def fetch(self, ctx: SourceContext) -> Answer:
        raise ValueError("the page changed shape")


def review(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    argv = ["review", "--config", str(REPO_ROOT / "config" / "policy.yaml"), "--sources", "offline"]
    code = main([*argv, "--no-banner", "--no-docs", "--out", str(tmp_path), "--json"])
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    assert code == 10, "the review completes and recommends the migration it always did"
    return report


def test_a_registered_source_is_read_and_reported(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tasks.research.sources.SOURCES", (*SOURCES, DriverNotes(), Broken()))
    report = review(tmp_path, capsys)
    sources = str(report["sources"])
    assert "driver notes: bundled facts" in sources
    assert "broken source: not checked: ValueError: the page changed shape" in sources
    assert any(str(f).startswith("fleet note: support table as of ") for f in report["findings"])  # type: ignore[attr-defined]
    assert "NVIDIA support: bundled config/data/nvidia-support.yaml" in sources, "the built-in sources still answer"
    assert "advisories: " in sources
    assert "PyTorch index: https://download.pytorch.org/whl" in sources, "the per-base source is named too"
    assert "bundled facts: baseimage's config/data (8 files, as of " in sources
