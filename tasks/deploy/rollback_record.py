"""What a rollback did, as typed values: each environment put back (`EnvironmentRestore`), the
migration commit reverted or not (`CodeRevert`), and the whole `RollbackRecord` the rollback flow
keeps in ``<state>/rollbacks/<id>/rollback.json``, returns (its JSON: the persisted result a
caller on another pool reads) and the migration's outcome carries (``migrate-<run>.json:
rollback``). The JSON is the shape those files have always had; `from_json` reads a record an
earlier run of the same rollback id wrote."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tasks.errors import ConfigError

RESTORED_ACTION = "restored"
FAILED_ACTION = "FAILED"


@dataclass(frozen=True)
class EnvironmentRestore:
    """One environment: what it ran, the evidence kept, and what the rollback did to it
    (``restored``, ``none: ...`` when nothing had to change, ``FAILED`` with the error)."""

    environment: str
    action: str
    from_image: str | None = None  # "from" in the JSON: what ran before the rollback
    to: str | None = None
    health: str | None = None
    logs: str | None = None  # the evidence file of this run
    log_tail: tuple[str, ...] = ()  # redacted
    error: str | None = None  # redacted

    @classmethod
    def failed(cls, environment: str, error: str) -> EnvironmentRestore:
        return cls(environment, FAILED_ACTION, error=error)

    def done(self, action: str, to: str, health: str = "ok") -> EnvironmentRestore:
        return replace(self, action=action, to=to, health=health)

    @property
    def line(self) -> str:
        return f"{self.environment} {self.action}"

    def to_json(self) -> dict[str, Any]:
        if self.action == FAILED_ACTION and self.logs is None:
            return {"environment": self.environment, "action": self.action, "error": self.error}
        data: dict[str, Any] = {
            "environment": self.environment,
            "from": self.from_image,
            "logs": self.logs,
            "log_tail": list(self.log_tail),
            "action": self.action,
            "to": self.to,
            "health": self.health,
        }
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvironmentRestore:
        return cls(
            str(data["environment"]),
            str(data.get("action") or FAILED_ACTION),
            _text(data.get("from")),
            _text(data.get("to")),
            _text(data.get("health")),
            _text(data.get("logs")),
            tuple(str(line) for line in data.get("log_tail") or ()),
            _text(data.get("error")),
        )


@dataclass(frozen=True)
class CodeRevert:
    """What happened to the migration commit: reverted on a branch for review, or why not."""

    action: str
    branch: str | None = None
    commit: str | None = None  # the revert commit, when one was made

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action}
        if self.branch is not None or self.commit is not None:
            data["branch"] = self.branch
        if self.commit is not None:
            data["commit"] = self.commit
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CodeRevert:
        return cls(str(data.get("action") or ""), _text(data.get("branch")), _text(data.get("commit")))


@dataclass(frozen=True)
class RollbackRecord:
    id: str
    reason: str  # redacted
    runs: tuple[str, ...] = ()  # when each run of this rollback id started
    to: Mapping[str, str] | None = None  # {"image", "why"}: a rollback to a named image
    environments: tuple[EnvironmentRestore, ...] = ()
    code: CodeRevert | None = None
    incident: str | None = None  # the issue URL or the local report
    path: str | None = None  # rollback.json ("record" in the flow's result)
    error: str | None = None  # the rollback flow itself failed (a migration's outcome says so)

    @property
    def summary(self) -> str:
        """``staging restored; code: none: ...``: the run's one line."""
        envs = "; ".join(r.line for r in self.environments) or "no environment"
        return f"{envs}; code: {self.code.action if self.code else '?'}"

    def to_json(self) -> dict[str, Any]:
        """The file's object (`path` excluded: the file is where it is); `result` adds it."""
        if self.error is not None and not self.environments and self.code is None:
            return {"error": self.error}
        data: dict[str, Any] = {"id": self.id, "reason": self.reason, "runs": list(self.runs)}
        if self.to is not None:
            data["to"] = dict(self.to)
        data["environments"] = [r.to_json() for r in self.environments]
        data["code"] = self.code.to_json() if self.code else None
        data["incident"] = self.incident
        if self.error is not None:
            data["error"] = self.error
        return data

    def result(self) -> dict[str, Any]:
        """What the rollback flow returns (and a migration's outcome keeps): the file's object
        and where the file is."""
        return {**self.to_json(), "record": self.path} if self.path is not None else self.to_json()

    @classmethod
    def from_json(cls, data: Any, where: str) -> RollbackRecord:
        """A record written by an earlier run (or returned by the flow); a ConfigError naming
        `where` when it is not one."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: not a rollback record ({type(data).__name__})")
        try:
            if set(data) == {"error"}:
                return cls("", "", error=str(data["error"]))
            to = data.get("to")
            code = data.get("code")
            return cls(
                str(data["id"]),
                str(data.get("reason") or ""),
                tuple(str(r) for r in data.get("runs") or ()),
                {str(k): str(v) for k, v in to.items()} if isinstance(to, Mapping) else None,
                tuple(EnvironmentRestore.from_json(r) for r in data.get("environments") or ()),
                CodeRevert.from_json(code) if isinstance(code, Mapping) else None,
                _text(data.get("incident")),
                _text(data.get("record")),
                _text(data.get("error")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{where}: not a rollback record ({type(exc).__name__}: {exc})") from exc


def _text(value: object) -> str | None:
    return None if value is None else str(value)
