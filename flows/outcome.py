"""Each flow run's one-line outcome, kept as an artifact under one key so `baseimage history` (and
the UI's Artifacts page) can show what every run concluded."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact

OUTCOME_KEY = "baseimage-outcome"


def record_outcome(text: str) -> str:
    """Attach `text` to the current flow run as its outcome; returns it."""
    create_markdown_artifact(key=OUTCOME_KEY, markdown=f"**Outcome:** {text}\n", description=text[:480])
    return text
