"""Alert state transitions (unit tier): a finding alerts once when it appears and again only when
its severity changes; it is resolved once when gone; a failed send changes nothing, so the next
run sends it again; the state file is written atomically and survives a bad file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from tasks.monitoring.alerts import AlertState, alert_message, next_state, resolved_message, transitions
from tasks.monitoring.findings import Finding, Severity

TODAY = date(2026, 12, 1)


def finding(kind: str = "newer-patch", severity: Severity = Severity.WARNING, container: str = "svc-1") -> Finding:
    return Finding("staging", container, "nvidia/cuda:12.6.0-runtime-ubuntu22.04", kind, severity, f"{kind} message")


def run(state: dict, findings: list[Finding], *, sent: bool = True) -> tuple[dict, object]:
    moves = transitions(state, findings)
    return next_state(state, moves, alerted=sent, resolved=sent, now="t"), moves


def test_appear_stay_change_resolve() -> None:
    state: dict = {}
    state, moves = run(state, [finding()])
    assert [f.key for f in moves.appeared] == [finding().key] and not moves.resolved
    state, moves = run(state, [finding()])
    assert not moves.appeared and not moves.changed and moves.unchanged == (finding().key,)
    assert alert_message(moves, TODAY) is None, "the same finding is not sent twice"
    state, moves = run(state, [finding(severity=Severity.CRITICAL)])
    assert [(f.key, old) for f, old in moves.changed] == [(finding().key, "warning")]
    subject, body = alert_message(moves, TODAY)
    assert subject.startswith("baseimage [critical]: 1 new finding(s)") and "[critical (was warning)]" in body
    assert state[finding().key].severity == "critical" and state[finding().key].since == "t"
    state, moves = run(state, [])
    assert [k for k, _ in moves.resolved] == [finding().key] and state == {}
    subject, body = resolved_message(moves)
    assert subject == "baseimage [resolved]: 1 finding(s) no longer seen"
    assert "newer-patch (was critical since t)" in body
    state, moves = run(state, [])
    assert resolved_message(moves) is None, "resolved once"


def test_info_findings_are_not_sent() -> None:
    moves = transitions({}, [finding("deletion-date", Severity.INFO)])
    assert alert_message(moves, TODAY) is None


def test_a_failed_send_leaves_the_state_so_the_next_run_sends_again() -> None:
    state, moves = run({}, [finding()], sent=False)
    assert state == {}
    state, moves = run(state, [finding()])
    assert len(moves.appeared) == 1


def test_the_state_file_round_trips_and_a_bad_one_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "watch" / "state.json"
    state = AlertState.load(path)
    moves = transitions(state.sent, [finding(), finding("banner", container="svc-2")])
    state.save(next_state(state.sent, moves, alerted=True, resolved=True, now="t1"), "t1")
    again = AlertState.load(path)
    assert again.sent == state.sent and again.updated == "t1" and len(again.sent) == 2
    assert json.loads(path.read_text())["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["state.json"], "no temporary file left"
    path.write_text("{not json")
    assert AlertState.load(path).sent == {}


def test_a_finding_that_could_not_be_checked_is_not_resolved() -> None:
    """The registry did not answer this run: the re-pushed tag is neither found nor resolved."""
    state, _ = run({}, [finding("tag-repushed", Severity.CRITICAL)])
    moves = transitions(state, [], lambda sent: sent.kind == "tag-repushed")
    assert moves.resolved == () and moves.unchanged == (finding("tag-repushed").key,)
    assert next_state(state, moves, alerted=True, resolved=True, now="t2") == state
