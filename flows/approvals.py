"""Approval pauses: a typed form in the Prefect UI (approve or reject, reviewer, comment), a
timeout from config, and a parent that treats a timeout or rejection as a clean outcome.

The pause lives in its own subflow: Prefect 3 fails a run whose pause expired whatever the flow
catches, so the parent checks the subflow's state instead (shared/reference/prefect-3-notes §3).
The reviewer is required: the server refuses a resume without one (the form's JSON schema), and
where the policy asks for distinct reviewers, the update's reviewer cannot approve production.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.statuses import DecisionOutcome
from tasks.update.outcome import Decision

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

__all__ = ["Approval", "Decision", "approval", "ask", "resume"]


class Approval(RunInput):
    """What a reviewer submits."""

    approve: bool = Field(False, title="Approve", description="Tick to approve; leave unticked to reject.")
    reviewer: Annotated[
        str,
        Field(
            min_length=1,
            pattern=r"\S",
            title="Reviewer",
            description="Who decides (recorded in the migration's outcome and the release notes).",
        ),
    ]
    comment: str = Field("", title="Comment", description="Why; shown in the outcome, the PR and any rollback.")


def ui_link(run_id: str) -> str | None:
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return f"{str(ui).rstrip('/')}/runs/flow-run/{run_id}" if ui else None


@flow(name="approval")
def approval(stage: str, summary_markdown: str, timeout_s: int, poll_interval_s: int = 10) -> dict[str, Any]:
    """Pause until a person approves or rejects; returns what they submitted."""
    ctx: Any = get_run_context()
    run_id = str(ctx.flow_run.id)
    how = f"`baseimage approve {run_id} --reviewer NAME` (add `--reject` to reject)"
    link = ui_link(run_id)
    description = f"{summary_markdown}\n\n---\nApprove or reject here, or from a shell: {how}."
    get_run_logger().warning(
        "waiting up to %d s for the %s approval: %s%s",
        timeout_s,
        stage,
        how.replace("`", ""),
        f", or in the UI: {link}" if link else "",
    )
    # No initial data: with_initial_data(field=...) rebuilds those fields and drops their constraints
    # (the reviewer would become optional in the schema the server validates a resume against).
    form = Approval.with_initial_data(description=description)
    answer = pause_flow_run(
        wait_for_input=form, timeout=timeout_s, poll_interval=poll_interval_s, key=f"approve-{stage}"
    )
    return {"approve": bool(answer.approve), "reviewer": answer.reviewer.strip(), "comment": answer.comment}


def on_terminal(stage: str, summary_markdown: str) -> dict[str, Any]:
    """Ask on this terminal (the command line on the temporary API, where no one else can resume a
    pause): the same typed input as the UI form, the reviewer required."""
    from pydantic import ValidationError

    print(f"\n{'=' * 72}\n{summary_markdown}\n{'=' * 72}", flush=True)
    answer = input(f"Approve the {stage} stage? [y/N] ").strip().lower()
    while True:
        reviewer = input("Reviewer (required): ")
        try:
            Approval(approve=False, reviewer=reviewer, comment="")
            break
        except ValidationError:
            print("A reviewer is required: the approval records who gave it.", flush=True)
    comment = input("Comment (optional): ")
    form = Approval(approve=answer in ("y", "yes"), reviewer=reviewer, comment=comment)
    return {"approve": form.approve, "reviewer": form.reviewer.strip(), "comment": form.comment}


def ask(
    stage: str,
    summary_markdown: str,
    timeout_s: int,
    poll_interval_s: int = 10,
    not_by: str | None = None,
    terminal: bool = False,
) -> Decision:
    """Run the approval subflow and turn its state into a Decision (a timeout is not a crash).
    `not_by`: a reviewer whose approval does not count here (the update's, for production); the
    pause is asked again, within the same time limit, until someone else answers. `terminal`:
    ask on this process's terminal instead of pausing (the temporary API, interactive)."""
    deadline = time.monotonic() + timeout_s
    note = ""
    while True:
        left = max(1, int(deadline - time.monotonic()))
        if terminal:
            answer = on_terminal(stage, note + summary_markdown)
        else:
            state = approval(stage, note + summary_markdown, left, poll_interval_s, return_state=True)
            if not state.is_completed():
                return Decision(stage, DecisionOutcome.TIMED_OUT, None, f"no decision within {timeout_s} s")
            answer = state.result()
        decision = Decision(
            stage,
            DecisionOutcome.APPROVED if answer["approve"] else DecisionOutcome.REJECTED,
            answer["reviewer"],
            answer["comment"],
        )
        same = bool(not_by and decision.reviewer and decision.reviewer.casefold() == not_by.casefold())
        if decision.outcome == DecisionOutcome.APPROVED and same:
            get_run_logger().warning(
                "%s approved the %s stage too; policy approvals.distinct_reviewers asks for another reviewer",
                decision.reviewer,
                stage,
            )
            note = (
                f"> **{decision.reviewer} approved the update and cannot also approve {stage}** "
                "(approvals.distinct_reviewers): another reviewer must decide.\n\n"
            )
            continue
        return decision


FORM_WAIT_S = 30.0


async def form_saved(client: PrefectClient, run: FlowRun, api: object, wait_s: float = FORM_WAIT_S) -> None:
    """Wait until the paused `run`'s approval form is saved. Prefect marks a run PAUSED before it
    saves the form's schema, and the server refuses a resume in that gap ("Run input schema not
    found"): a reviewer (or an automation) who approves at once would be refused for nothing."""
    import asyncio

    from prefect.exceptions import PrefectHTTPStatusError

    from tasks.errors import BaseImageError

    keyset = run.state.state_details.run_input_keyset if run.state else None
    if not keyset or "schema" not in keyset:
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            await client.read_flow_run_input(run.id, keyset["schema"])
            return
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            if time.monotonic() >= deadline:
                raise BaseImageError(
                    f"flow run {run.id} is paused but its approval form was not saved within {wait_s:g} s "
                    f"(API {api}); the run may have stopped: check it in the Prefect UI, then approve again"
                ) from None
            await asyncio.sleep(0.25)


async def resume(run_id: str, approve: bool, reviewer: str, comment: str) -> str:
    """Resume `run_id`, or the paused approval subflow of the migrate run `run_id`; returns its id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.settings import get_current_settings

    from tasks.errors import BaseImageError, ConfigError

    if not reviewer.strip():
        raise ConfigError("--reviewer is empty: an approval records who gave it")
    api = get_current_settings().api.url
    try:
        wanted = UUID(run_id)
    except ValueError as exc:
        raise ConfigError(f"{run_id!r} is not a flow run id (a UUID, as the migration's log prints it)") from exc
    async with get_client() as client:
        try:
            run = await client.read_flow_run(wanted)
        except Exception as exc:  # no such run, or no server at PREFECT_API_URL
            raise BaseImageError(
                f"flow run {run_id} not found at the Prefect API {api or '(none: PREFECT_API_URL is not set)'} "
                f"({type(exc).__name__}); set PREFECT_API_URL to the server the migration runs on"
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
                raise BaseImageError(f"flow run {run_id} is {state}, not waiting for an approval (API {api})")
            target = children[0]
        await form_saved(client, target, api)
        result = await client.resume_flow_run(
            target.id, run_input={"approve": approve, "reviewer": reviewer.strip(), "comment": comment}
        )
        if str(result.status.value).upper() != "ACCEPT":
            raise BaseImageError(f"the server refused to resume {target.id}: {result.details}")
        return str(target.id)
