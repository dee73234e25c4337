"""Approval pauses: a typed form in the Prefect UI (approve or reject, reviewer, comment), a
timeout from config, and a parent that treats a timeout or rejection as a clean outcome.

The pause lives in its own subflow: Prefect 3 fails a run whose pause expired whatever the flow
catches, so the parent checks the subflow's state instead (shared/reference/prefect-3-notes §3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Approval(RunInput):
    """What a reviewer submits."""

    approve: bool = False
    reviewer: str
    comment: str = ""


@dataclass(frozen=True)
class Decision:
    stage: str
    outcome: str  # approved | rejected | timed out
    reviewer: str | None = None
    comment: str = ""

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@flow(name="approval")
def approval(stage: str, summary_markdown: str, timeout_s: int, poll_interval_s: int = 10) -> dict[str, Any]:
    """Pause until a person approves or rejects; returns what they submitted."""
    form = Approval.with_initial_data(description=summary_markdown, approve=False, reviewer="")
    answer = pause_flow_run(
        wait_for_input=form, timeout=timeout_s, poll_interval=poll_interval_s, key=f"approve-{stage}"
    )
    return {"approve": bool(answer.approve), "reviewer": answer.reviewer, "comment": answer.comment}


def ask(stage: str, summary_markdown: str, timeout_s: int, poll_interval_s: int = 10) -> Decision:
    """Run the approval subflow and turn its state into a Decision (a timeout is not a crash)."""
    state = approval(stage, summary_markdown, timeout_s, poll_interval_s, return_state=True)
    if not state.is_completed():
        return Decision(stage, "timed out", None, f"no decision within {timeout_s} s")
    answer = state.result()
    return Decision(stage, "approved" if answer["approve"] else "rejected", answer["reviewer"], answer["comment"])


async def resume(run_id: str, approve: bool, reviewer: str, comment: str) -> str:
    """Resume `run_id`, or the paused approval subflow of the migrate run `run_id`; returns its id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from tasks.errors import BaseImageError

    async with get_client() as client:
        try:
            run = await client.read_flow_run(UUID(run_id))
        except Exception as exc:  # bad id, or no server at PREFECT_API_URL
            raise BaseImageError(
                f"flow run {run_id} not found at the Prefect API ({exc}); set PREFECT_API_URL "
                "to the server the migration runs on"
            ) from exc
        target = run
        if run.state is None or run.state.type != StateType.PAUSED:
            paused = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            children = []
            for candidate in paused:
                if candidate.parent_task_run_id is None:
                    continue
                parent = await client.read_task_run(candidate.parent_task_run_id)
                if str(parent.flow_run_id) == run_id:
                    children.append(candidate)
            if not children:
                state = run.state.name if run.state else "unknown"
                raise BaseImageError(f"flow run {run_id} is {state}, not waiting for an approval")
            target = children[0]
        result = await client.resume_flow_run(
            target.id, run_input={"approve": approve, "reviewer": reviewer, "comment": comment}
        )
        if str(result.status.value).upper() != "ACCEPT":
            raise BaseImageError(f"the server refused to resume {target.id}: {result.details}")
        return str(target.id)
