"""Per-environment deployment ledger: every deploy and rollback as a record (image reference, image
ID, registry digest, what it replaced, the run and migration commit), written atomically before
and after each change, so the previous image can always be put back."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.files import write_atomic

DEPLOYING, DEPLOYED, FAILED, RESTORED = "deploying", "deployed", "failed", "restored"


@dataclass(frozen=True)
class ImageRecord:
    """An image as it ran: the reference compose was given, its local ID and its registry digest."""

    image: str
    image_id: str | None = None
    digest: str | None = None  # repo@sha256:... when the image came from a registry

    def describe(self) -> str:
        short = (self.image_id or "")[7:19]
        return f"{self.image} ({short})" if short else self.image


@dataclass(frozen=True)
class Deployment:
    environment: str
    status: str  # deploying | deployed | failed | restored
    image: ImageRecord
    previous: ImageRecord | None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run: str | None = None
    branch: str | None = None
    commit: str | None = None
    note: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        prev = data.get("previous")
        return cls(
            **{
                **data,
                "image": ImageRecord(**data["image"]),
                "previous": ImageRecord(**prev) if prev else None,
            }
        )


class Ledger:
    """``<state>/deployments/<environment>.json``: the history, newest last."""

    def __init__(self, state_dir: Path, environment: str) -> None:
        self.environment = environment
        self.path = state_dir / "deployments" / f"{environment}.json"

    def history(self) -> list[Deployment]:
        if not self.path.exists():
            return []
        data = json.loads(self.path.read_text())
        return [Deployment.from_json(d) for d in data.get("history", [])]

    def last(self) -> Deployment | None:
        history = self.history()
        return history[-1] if history else None

    def append(self, record: Deployment) -> Deployment:
        history = [*self.history(), record]
        self._write(history)
        return record

    def settle(self, record: Deployment, status: str, note: str = "") -> Deployment:
        """Replace the newest record (the one being deployed) by its outcome."""
        history = self.history()
        settled = replace(record, status=status, note=note or record.note)
        if history and history[-1].at == record.at and history[-1].status == DEPLOYING:
            history[-1] = settled
        else:
            history.append(settled)
        self._write(history)
        return settled

    def _write(self, history: list[Deployment]) -> None:
        body = {"environment": self.environment, "history": [asdict(d) for d in history]}
        write_atomic(self.path, json.dumps(body, indent=2) + "\n")
