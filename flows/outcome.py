"""Each flow run's one-line outcome, kept as an artifact under one key so `baseimage history` (and
the UI's Artifacts page) can show what every run concluded; and the Prefect state a migration
ends in, so the UI, the history and automations see what really happened."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.states import Cancelled, Completed, Failed

from tasks.update.outcome import MigrationOutcome, Result

OUTCOME_KEY = "baseimage-outcome"

# The state of a migrate run for each result: Completed only when the run did what it was for; a
# person's "no" is Cancelled(Rejected); everything that did not reach its goal is Failed, named.
STATES: dict[Result, tuple[Any, str]] = {
    Result.NOTHING_TO_DO: (Completed, "NothingToDo"),
    Result.DRY_RUN: (Completed, "DryRun"),
    Result.VALIDATED: (Completed, "Validated"),
    Result.UPDATED: (Completed, "NotValidated"),
    Result.DEPLOYED: (Completed, "Completed"),
    Result.NOT_MERGED: (Failed, "NotMerged"),
    Result.REJECTED: (Cancelled, "Rejected"),
    Result.TIMED_OUT: (Failed, "TimedOut"),
    Result.NOT_PROVEN: (Failed, "NotProven"),
    Result.ROLLED_BACK: (Failed, "RolledBack"),
    Result.ROLLBACK_FAILED: (Failed, "RollbackFailed"),
}


def record_outcome(text: str) -> str:
    """Attach `text` to the current flow run as its outcome; returns it."""
    create_markdown_artifact(key=OUTCOME_KEY, markdown=f"**Outcome:** {text}\n", description=text[:480])
    return text


def cancel_on_termination(flow: Any, flow_run: Any, state: State) -> None:
    """`on_crashed` hook: a run stopped by SIGTERM (the command line's Ctrl-C of a service manager,
    a worker shutting down) was stopped on purpose, so it is marked Cancelled, not Crashed."""
    message = (state.message or "").lower()
    if "termination signal" not in message and "system exit" not in message:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            flow_run.id, Cancelled(message="stopped by a termination signal (SIGTERM)"), force=True
        )


def state_of(outcome: MigrationOutcome) -> State:
    """The final state of the migrate run, carrying the outcome as its data."""
    make, name = STATES[outcome.result]
    state: State = make(name=name, message=outcome.line()[:2000], data=outcome.to_json())
    return state
