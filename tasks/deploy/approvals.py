"""The record of who allowed an image into a protected environment (production): the approval a
migration's production pause received, or a break-glass deploy with its reason. A protected
environment changes only to an image found here (`reports/approvals/<environment>.json`)."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.deploy.ledger import ImageRecord, Ledger
from tasks.errors import BaseImageError
from tasks.files import write_atomic
from tasks.statuses import ApprovalKind, parse

APPROVAL, BREAK_GLASS = ApprovalKind.APPROVAL, ApprovalKind.BREAK_GLASS


class ApprovalRequiredError(BaseImageError):
    """A protected environment would change to an image nobody approved for it."""


@dataclass(frozen=True)
class ApprovalRecord:
    environment: str
    image: str
    image_id: str | None
    reviewer: str
    kind: ApprovalKind = APPROVAL
    comment: str = ""
    run: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def matches(self, image: ImageRecord) -> bool:
        if self.image_id and image.image_id:
            return self.image_id == image.image_id
        return self.image == image.image


class Approvals:
    """``<state>/approvals/<environment>.json``: every approval of an image for the environment."""

    def __init__(self, state_dir: Path, environment: str) -> None:
        self.environment = environment
        self.path = state_dir / "approvals" / f"{environment}.json"

    def all(self) -> list[ApprovalRecord]:
        if not self.path.exists():
            return []
        data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return [
            ApprovalRecord(
                **{**row, "kind": parse(ApprovalKind, row.get("kind", APPROVAL), f"{self.path}: approval kind")}
            )
            for row in data.get("approvals", [])
        ]

    def record(self, entry: ApprovalRecord) -> ApprovalRecord:
        rows = [*self.all(), entry]
        body = {"environment": self.environment, "approvals": [asdict(r) for r in rows]}
        write_atomic(self.path, json.dumps(body, indent=2) + "\n")
        return entry

    def find(self, image: ImageRecord) -> ApprovalRecord | None:
        return next((r for r in reversed(self.all()) if r.matches(image)), None)


def who() -> str:
    """The person at this terminal, for a break-glass record."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def in_ledger(ledger: Ledger, image: ImageRecord) -> bool:
    """Whether `image` ran in (or was replaced in) this environment before: a rollback target."""
    for entry in ledger.history():
        for known in (entry.image, entry.previous):
            if known is None:
                continue
            if image.image_id and known.image_id and image.image_id == known.image_id:
                return True
            if image.image in (known.image, known.digest):
                return True
    return False


def rollback_permission(state_dir: Path, environment: str, image: ImageRecord, break_glass: bool, reason: str) -> str:
    """Why `image` may replace what `environment` runs: it ran there (the ledger), it has a
    recorded approval, or a break-glass with a reason (recorded here); else ApprovalRequiredError
    before anything changes."""
    from tasks.errors import ConfigError

    to = image.image
    if in_ledger(Ledger(state_dir, environment), image):
        return f"{to} ran in {environment} before (deployment ledger)"
    approvals = Approvals(state_dir, environment)
    if approvals.find(image):
        return f"{to} has a recorded approval for {environment}"
    if break_glass:
        if not reason.strip() or reason == "ad hoc rollback":
            raise ConfigError("--break-glass needs --reason TEXT: why this image, outside the ledger, now")
        approvals.record(ApprovalRecord(environment, to, image.image_id, who(), BREAK_GLASS, reason))
        return f"break-glass by {who()}: {reason}"
    raise ApprovalRequiredError(
        f"{environment}: {to} never ran there (not in {Ledger(state_dir, environment).path}) and has no "
        f"recorded approval; roll back to an image from the ledger (`baseimage rollback --env {environment}` picks "
        "the previous one), release it through `baseimage migrate`, or use --break-glass --reason TEXT"
    )
