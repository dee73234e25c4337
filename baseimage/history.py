"""Past runs of every baseimage flow from the Prefect API: name, start, duration, state, the
outcome each run recorded (flows/outcome.py) and a link to the run in the UI."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.outcome import OUTCOME_KEY
from tasks.errors import BaseImageError

FLOWS = (
    "quarterly-review",
    "annual-update",
    "migrate",
    "validate",
    "soak-monitor",
    "rollback",
    "deprecation-watch",
    "approval",
)
_SINCE = re.compile(r"^(\d+)([hdw])$")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``2w`` or an ISO date/time (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip())
    if match:
        amount, unit = int(match[1]), match[2]
        return now - {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BaseImageError(f"--since {text!r}: use 7d, 12h, 2w or a date like 2026-11-01") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunRow:
    flow: str
    name: str
    start: str | None
    duration_s: float | None
    state: str
    outcome: str
    link: str
    id: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ui_url() -> str:
    """The Prefect UI base: PREFECT_UI_URL, else the API URL without /api."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.ui_url:
        return str(settings.ui_url).rstrip("/")
    api = str(settings.api.url or "")
    return api.removesuffix("/").removesuffix("/api") if api else ""


async def fetch(flow: str | None, since: datetime | None, limit: int = 200, waiting: bool = False) -> list[RunRow]:
    """Runs newest first; `flow` filters by flow name, `since` by start time; `waiting`: only the
    approvals paused for a decision (their outcome says how to give it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowFilter,
        FlowFilterId,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort

    names = [flow] if flow else list(FLOWS)
    async with get_client() as client:
        try:
            flows = await client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=names)))
        except Exception as exc:  # no server, or the wrong URL
            raise BaseImageError(
                f"cannot read flow runs from the Prefect API ({type(exc).__name__}: {exc}); set "
                "PREFECT_API_URL to the server the flows run on"
            ) from exc
        flow_names = {f.id: f.name for f in flows}
        if not flow_names:
            return []
        not_scheduled = FlowRunFilterStateType(not_any_=[StateType.SCHEDULED])  # past runs, not the next ones
        paused = FlowRunFilterStateType(any_=[StateType.PAUSED])
        run_filter = FlowRunFilter(state=FlowRunFilterState(type=paused if waiting else not_scheduled))
        if since:
            run_filter.start_time = FlowRunFilterStartTime(after_=since)  # type: ignore[arg-type]
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(id=FlowFilterId(any_=list(flow_names))),
            flow_run_filter=run_filter,
            sort=FlowRunSort.START_TIME_DESC,
            limit=limit,
        )
        outcomes: dict[str, str] = {}
        if runs:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[OUTCOME_KEY]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs]),
                ),
                sort=ArtifactSort.CREATED_DESC,
            )
            for artifact in artifacts:
                outcomes.setdefault(str(artifact.flow_run_id), artifact.description or "")
    base = ui_url()
    rows = []
    for run in runs:
        state = str(run.state.name or run.state.type.value) if run.state else "?"
        message = run.state.message if run.state and run.state.message else ""
        outcome = outcomes.get(str(run.id)) or message
        if run.state and run.state.type == StateType.PAUSED:
            outcome = f"waiting for a decision: baseimage approve {run.id} --reviewer NAME [--reject]"
        start = run.start_time
        end = run.end_time
        duration = (end - start).total_seconds() if start and end else run.total_run_time.total_seconds() or None
        rows.append(
            RunRow(
                flow_names.get(run.flow_id, "?"),
                run.name or str(run.id),
                start.isoformat(timespec="seconds") if start else None,
                duration,
                state,
                outcome.strip(),
                f"{base}/runs/flow-run/{run.id}" if base else str(run.id),
                str(run.id),
            )
        )
    return rows
