"""The soak window's schedule, store and verdict (unit tier): a restart late records the missed
slots as gaps (never sampled back to back), a line cut mid-write is repaired so the next slot
lands on a line of its own, and coverage decides whether a window may pass."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tasks.monitoring.soak import (
    Sample,
    SampleStore,
    Thresholds,
    Window,
    evaluate,
    run_window,
)
from tests.support.http_endpoint import Endpoint, Reply, Request


def ok(index: int, t: float = 0.0) -> Sample:
    return Sample(index, "2026-12-01T00:00:00+00:00", True, 5.0, t=t)


def test_a_line_cut_by_a_crash_is_removed_and_the_window_resumes_at_the_first_missing_index(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "w.jsonl")
    for i in range(3):
        store.append(ok(i))
    data = store.path.read_bytes()
    store.path.write_bytes(data[:-20])  # the third line cut mid-write
    loaded = store.load()
    assert [s.index for s in loaded] == [0, 1]
    assert store.path.read_bytes().endswith(b"\n"), "the cut tail is gone from the file"
    store.append(ok(2))
    again = store.load()
    assert [s.index for s in again] == [0, 1, 2], "the retaken slot is a line of its own"
    assert all(json.loads(line)["index"] == n for n, line in enumerate(store.path.read_text().splitlines()))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def health(_req: Request) -> Reply:
    return Reply(200, b"{}")


def test_a_late_restart_records_gaps_instead_of_sampling_the_missed_slots(tmp_path: Path) -> None:
    """24 slots, killed after slot 1 and restarted at slot 22's time: slots 2-21 are gaps, the
    window ends with 4 real samples and fails on coverage; nothing is sampled back to back."""
    store = SampleStore(tmp_path / "w.jsonl")
    clock = Clock(1_000.0)
    with Endpoint(health) as ep:
        window = Window(f"{ep.url}/health", None, 24 * 60.0, 60.0, Thresholds(on_low_coverage="fail"))
        _, first = run_window(store, window, [], max_samples=2, clock=clock, sleep=clock.sleep)
        assert first.status == "running" and first.taken == 2
        clock.now = 1_000.0 + 22 * 60 + 5  # restarted during slot 22
        samples, verdict = run_window(store, window, [], clock=clock, sleep=clock.sleep)
    assert [s.index for s in samples] == list(range(24))
    assert [s.index for s in samples if s.missed] == list(range(2, 22))
    real = [s for s in samples if not s.missed]
    assert [s.index for s in real] == [0, 1, 22, 23]
    assert all(b.t - a.t >= 55 for a, b in itertools.pairwise(real[2:])), "no catch-up burst"
    assert verdict.status == "failed" and verdict.gaps == [(2, 21)]
    assert verdict.reasons[0] == "coverage 4/24 samples is below 90% (needs 22)"
    assert verdict.reasons[1].startswith("20 slots missed while the monitor was down: slots 2-21")


def test_extend_keeps_sampling_past_the_window_until_coverage_is_reached(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "w.jsonl")
    clock = Clock(0.0)
    with Endpoint(health) as ep:
        window = Window(f"{ep.url}/health", None, 10.0, 1.0, Thresholds(min_coverage=0.9))
        run_window(store, window, [], max_samples=1, clock=clock, sleep=clock.sleep)
        clock.now = 4.2  # slots 1-3 missed
        samples, verdict = run_window(store, window, [], clock=clock, sleep=clock.sleep)
    assert verdict.status == "passed"
    assert len(samples) == 12 and verdict.taken == 9 and verdict.missed == 3  # needs ceil(0.9 x 10) = 9
    assert "window extended by 2 slots" in verdict.reasons[0]


def test_extend_fails_once_the_extension_is_used_up(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "w.jsonl")
    clock = Clock(0.0)
    with Endpoint(health) as ep:
        window = Window(f"{ep.url}/health", None, 10.0, 1.0, Thresholds(), max_extension_s=2.0)
        run_window(store, window, [], max_samples=1, clock=clock, sleep=clock.sleep)
        clock.now = 6.5
        samples, verdict = run_window(store, window, [], clock=clock, sleep=clock.sleep)
    assert len(samples) == 12 and verdict.status == "failed"
    assert verdict.reasons[0] == "coverage 7/10 samples is below 90% (needs 9) even after extending the window"


@pytest.mark.parametrize(
    ("taken", "missed", "mode", "status"),
    [
        (10, 0, "fail", "passed"),
        (9, 1, "fail", "passed"),  # exactly 90 %
        (8, 2, "fail", "failed"),
        (8, 2, "extend", "running"),
        (3, 0, "fail", "running"),  # window not over yet
    ],
)
def test_coverage_decides_the_verdict(taken: int, missed: int, mode: str, status: str) -> None:
    samples = [ok(i) for i in range(taken)] + [Sample.gap(taken + i, 0.0) for i in range(missed)]
    verdict = evaluate(samples, 10, Thresholds(on_low_coverage=mode), max_slots=20)  # type: ignore[arg-type]
    assert verdict.status == status, verdict.reasons


def test_gaps_are_neither_health_failures_nor_hidden() -> None:
    samples = [ok(0), *[Sample.gap(i, 0.0) for i in range(1, 6)], ok(6)]
    verdict = evaluate(samples, 7, Thresholds(max_health_failures=0, on_low_coverage="fail"))
    assert verdict.status == "failed"
    assert not any("health checks" in r for r in verdict.reasons)
    assert verdict.reasons[-1].startswith("5 slots missed while the monitor was down: slots 1-5")


def test_max_latency_is_a_threshold() -> None:
    slow = [Sample(i, "x", True, 900.0) for i in range(4)]
    assert evaluate(slow, 4, Thresholds(max_latency_ms=1000)).status == "passed"
    assert evaluate(slow, 4, Thresholds(max_latency_ms=500)).reasons == ["4 health checks slower than 500 ms"]
