"""bench/review_fleet.py in CI size: no request twice, and close to the critical-path bound."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.docker


def test_review_fleet_requests_and_time(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("review_fleet", REPO_ROOT / "bench" / "review_fleet.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules["review_fleet"] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    result = bench.run(dockerfiles=60, bases=12, latency_ms=100, concurrency=8, workdir=tmp_path)
    assert result.requests == result.minimum, "each tag list, manifest and config fetched exactly once"
    assert result.request_ratio == 1.0
    assert result.time_ratio <= 1.5, result
