"""Alerts with state: one alert when a finding appears or changes severity, one "resolved" when it
is gone, never the same one twice. The state (what was last sent, per finding) is kept in
``reports/watch/state.json``, written atomically and only after the channel took the message, so
a failed send is sent again by the next run. Channels: a Prefect notification block (Slack,
webhook, ...) named in the config, or a plain JSON webhook (its URL, often the secret, shown as
scheme and host only)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tasks.errors import BaseImageError
from tasks.files import write_atomic
from tasks.http import HttpTransport, Outcome, classify
from tasks.monitoring.findings import Finding, Severity
from tasks.secrets import redact_url

log = logging.getLogger(__name__)
ALERT_FROM = Severity.WARNING  # info findings are charted, not sent
REGISTRY_KINDS = frozenset({"tag-deleted", "tag-repushed", "newer-patch"})  # need a registry answer


@dataclass(frozen=True)
class Sent:
    """What was last sent about one finding."""

    environment: str
    container: str
    image: str
    kind: str
    severity: str
    message: str
    since: str  # when it was first alerted

    @classmethod
    def of(cls, finding: Finding, since: str) -> Sent:
        return cls(
            finding.environment,
            finding.container,
            finding.image,
            finding.kind,
            finding.severity.label,
            finding.message,
            since,
        )


@dataclass(frozen=True)
class Transitions:
    appeared: tuple[Finding, ...] = ()
    changed: tuple[tuple[Finding, str], ...] = ()  # (finding now, the severity last sent)
    resolved: tuple[tuple[str, Sent], ...] = ()  # (key, what was last sent)
    unchanged: tuple[str, ...] = ()

    @property
    def to_alert(self) -> list[Finding]:
        return [*self.appeared, *(f for f, _ in self.changed)]


def transitions(
    state: Mapping[str, Sent], findings: Sequence[Finding], unknown: Callable[[Sent], bool] = lambda _s: False
) -> Transitions:
    """Compare this run's findings (warning and up) with what was last sent. A finding this run
    could not check (`unknown`: its registry look-up failed) is kept as it was, not resolved."""
    current = {f.key: f for f in findings if f.severity >= ALERT_FROM}
    appeared, changed, unchanged = [], [], []
    for key, finding in current.items():
        before = state.get(key)
        if before is None:
            appeared.append(finding)
        elif before.severity != finding.severity.label:
            changed.append((finding, before.severity))
        else:
            unchanged.append(key)
    resolved = [(key, sent) for key, sent in state.items() if key not in current and not unknown(sent)]
    unchanged += [key for key, sent in state.items() if key not in current and unknown(sent)]
    return Transitions(tuple(appeared), tuple(changed), tuple(resolved), tuple(unchanged))


def next_state(
    state: Mapping[str, Sent], moves: Transitions, *, alerted: bool, resolved: bool, now: str
) -> dict[str, Sent]:
    """The state after this run: alerted findings recorded, resolved ones dropped, each only when
    its message was sent (a failed send leaves the old state, so the next run sends it again)."""
    out = dict(state)
    if alerted:
        for finding in moves.appeared:
            out[finding.key] = Sent.of(finding, now)
        for finding, _ in moves.changed:
            out[finding.key] = Sent.of(finding, state[finding.key].since)
    if resolved:
        for key, _ in moves.resolved:
            out.pop(key, None)
    return out


@dataclass
class AlertState:
    """``reports/watch/state.json``."""

    path: Path
    updated: str | None = None
    sent: dict[str, Sent] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> AlertState:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            sent = {key: Sent(**value) for key, value in data["findings"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Starting afresh re-sends what is still found (noisy, never silent).
            log.warning("%s is unreadable (%s: %s): starting with no alert state", path, type(exc).__name__, exc)
            return cls(path)
        return cls(path, data.get("updated"), sent)

    def save(self, sent: Mapping[str, Sent], now: str) -> None:
        body = {"version": 1, "updated": now, "findings": {k: asdict(v) for k, v in sorted(sent.items())}}
        write_atomic(self.path, json.dumps(body, indent=2) + "\n")
        self.sent, self.updated = dict(sent), now


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def alert_message(moves: Transitions, today: date) -> tuple[str, str] | None:
    """(subject, body) for the findings that appeared or changed severity; None when none did."""
    findings = moves.to_alert
    if not findings:
        return None
    worst = max(f.severity for f in findings)
    containers = {(f.environment, f.container) for f in findings}
    subject = f"baseimage [{worst.label}]: {len(findings)} new finding(s) on {len(containers)} running container(s)"
    before = {f.key: old for f, old in moves.changed}
    lines = []
    for f in sorted(findings, key=lambda f: (-f.severity, f.key)):
        change = f" (was {before[f.key]})" if f.key in before else ""
        lines.append(f"- [{f.severity.label}{change}] {f.environment}/{f.container}: {f.image}: {f.message}")
    lines.append(f"As of {today}. Run `baseimage review`, then `baseimage migrate`.")
    return subject, "\n".join(lines)


def resolved_message(moves: Transitions) -> tuple[str, str] | None:
    if not moves.resolved:
        return None
    subject = f"baseimage [resolved]: {len(moves.resolved)} finding(s) no longer seen"
    lines = [
        f"- resolved: {s.environment}/{s.container}: {s.image}: {s.kind} (was {s.severity} since {s.since})"
        for _, s in sorted(moves.resolved)
    ]
    return subject, "\n".join(lines)


def send(
    subject: str,
    body: str,
    *,
    block: Any = None,
    webhook_url: str | None = None,
    transport: HttpTransport | None = None,
) -> str:
    """Send through `block` (a Prefect NotificationBlock) or POST JSON to `webhook_url`."""
    if block is not None:
        block.notify(body=body, subject=subject)
        return f"notification block {getattr(block, '_block_document_name', None) or type(block).__name__}"
    if webhook_url:
        shown = redact_url(webhook_url)  # for Slack and the like the URL is the secret
        try:
            response = (transport or HttpTransport()).request(
                "POST",
                webhook_url,
                headers={"Content-Type": "application/json"},
                body=json.dumps({"subject": subject, "text": body}).encode(),
            )
        except BaseImageError as exc:
            # `from None`: the transport's error names the full URL, which must not reach a log.
            raise BaseImageError(f"POST {shown}: {str(exc).replace(webhook_url, shown)}") from None
        if classify(response.status_code) is not Outcome.OK:
            raise BaseImageError(f"POST {shown}: HTTP {response.status_code}")
        return f"webhook {shown}"
    return "no alert channel configured (alerts.block or alerts.webhook_url)"
