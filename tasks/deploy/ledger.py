"""Per-environment deployment ledger: every deploy and rollback as a record (image reference, image
ID, registry digest, what it replaced, the run and migration commit), written atomically before
and after each change, so the previous image can always be put back. Beside it, the retain log:
every base and released image copied to `registries.retain_to`, by digest."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.files import write_atomic
from tasks.statuses import DeploymentStatus, parse

DEPLOYING, DEPLOYED = DeploymentStatus.DEPLOYING, DeploymentStatus.DEPLOYED
FAILED, RESTORED = DeploymentStatus.FAILED, DeploymentStatus.RESTORED


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
    status: DeploymentStatus
    image: ImageRecord
    previous: ImageRecord | None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run: str | None = None
    branch: str | None = None
    commit: str | None = None
    note: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "the deployment ledger") -> Deployment:
        prev = data.get("previous")
        return cls(
            **{
                **data,
                "status": parse(DeploymentStatus, data.get("status"), f"{where}: deployment at {data.get('at')}"),
                "image": ImageRecord(**data["image"]),
                "previous": ImageRecord(**prev) if prev else None,
            }
        )


class Ledger:
    """``<state>/deployments/<environment>.json``: the history, newest last."""

    def __init__(self, state_dir: Path, environment: str) -> None:
        self.environment = environment
        self.state_dir = state_dir
        self.path = state_dir / "deployments" / f"{environment}.json"

    def history(self) -> list[Deployment]:
        if not self.path.exists():
            return []
        data = json.loads(self.path.read_text())
        return [Deployment.from_json(d, str(self.path)) for d in data.get("history", [])]

    def last(self) -> Deployment | None:
        history = self.history()
        return history[-1] if history else None

    def append(self, record: Deployment) -> Deployment:
        history = [*self.history(), record]
        self._write(history)
        return record

    def settle(self, record: Deployment, status: DeploymentStatus, note: str = "") -> Deployment:
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


BASE, RELEASE = "base", "release"


@dataclass(frozen=True)
class RetainedImage:
    """One image copied to the retain registry: what it was (`source`, `digest`) and where the
    copy is (`copy`, pullable by digest); a base names the release it was built into."""

    source: str  # the reference as the Dockerfile or the release named it
    digest: str  # of the manifest or index copied (the same in both registries)
    copy: str  # registry/repository@digest of the copy
    role: str  # base | release
    release: str | None = None  # the release image a base was built into (or the release itself)
    release_image_id: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # CUDA_VERSION, NVIDIA_REQUIRE_CUDA of the copy
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run: str | None = None


class RetainLog:
    """``<state>/deployments/retained.json``: what was kept, oldest first."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "deployments" / "retained.json"

    def entries(self) -> list[RetainedImage]:
        if not self.path.exists():
            return []
        data = json.loads(self.path.read_text())
        return [RetainedImage(**e) for e in data.get("retained", [])]

    def add(self, new: list[RetainedImage]) -> list[RetainedImage]:
        """Record `new` (an entry already there for the same image, role and release is refreshed)."""
        entries = self.entries()
        for entry in new:
            same = (entry.source, entry.digest, entry.role, entry.release)
            entries = [e for e in entries if (e.source, e.digest, e.role, e.release) != same] + [entry]
        write_atomic(self.path, json.dumps({"retained": [asdict(e) for e in entries]}, indent=2) + "\n")
        return new

    def copy_of(self, source: str | None, digest: str | None) -> RetainedImage | None:
        """The newest copy of `digest` (a copy keeps the digest), else of `source` when no digest is known."""
        for entry in reversed(self.entries()):
            if digest and entry.digest == digest:
                return entry
            if not digest and source and entry.source == source:
                return entry
        return None

    def copies_for(self, record: ImageRecord) -> list[str]:
        """Retained copies that hold exactly `record`'s image (by digest, or as that release)."""
        digest = record.digest.rpartition("@")[2] if record.digest and "@" in record.digest else None
        found = []
        for entry in reversed(self.entries()):
            as_release = entry.role == RELEASE and record.image_id and entry.release_image_id == record.image_id
            if as_release or (digest and entry.digest == digest):
                found.append(entry.copy)
        return list(dict.fromkeys(found))

    def bases_of_release(self, release: str, image_id: str | None) -> list[RetainedImage]:
        """The bases recorded for the release `release` (by reference, or by its image ID)."""
        entries = [
            e
            for e in self.entries()
            if e.role == BASE and (e.release == release or (image_id and e.release_image_id == image_id))
        ]
        newest: dict[str, RetainedImage] = {}
        for entry in entries:
            newest[entry.source] = entry
        return list(newest.values())
