"""`baseimage serve`: every deployment of prefect.yaml, with its schedule, served from one process
(a small site without workers or pools). prefect.yaml stays the one list of deployments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from baseimage.settings import PROJECT_ROOT
from tasks.errors import ConfigError


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    crons: tuple[tuple[str, str], ...] = ()  # (cron, timezone)
    tags: tuple[str, ...] = ()
    pool: str | None = None


def read_specs(path: Path = PROJECT_ROOT / "prefect.yaml", timezone: str | None = None) -> list[DeploymentSpec]:
    """The deployments of `path`; `timezone` overrides every schedule's zone."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the deployments: {exc}") from exc
    specs = []
    for index, item in enumerate(data.get("deployments") or []):
        if "name" not in item or "entrypoint" not in item:
            raise ConfigError(f"{path}: deployments[{index}] needs a name and an entrypoint")
        crons = tuple(
            (str(s["cron"]), timezone or str(s.get("timezone") or "UTC"))
            for s in item.get("schedules") or []
            if "cron" in s and s.get("active", True)
        )
        specs.append(
            DeploymentSpec(
                item["name"],
                item["entrypoint"],
                str(item.get("description") or ""),
                dict(item.get("parameters") or {}),
                crons,
                tuple(item.get("tags") or ()),
                (item.get("work_pool") or {}).get("name"),
            )
        )
    return specs


def to_runner_deployments(specs: list[DeploymentSpec], root: Path = PROJECT_ROOT) -> list[Any]:
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    deployments = []
    for spec in specs:
        file, _, func = spec.entrypoint.partition(":")
        flow: Any = load_flow_from_entrypoint(f"{root / file}:{func}")
        deployments.append(
            flow.to_deployment(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                schedules=[Cron(cron, timezone=tz) for cron, tz in spec.crons],
                tags=list(spec.tags),
            )
        )
    return deployments


def serve_all(specs: list[DeploymentSpec], limit: int | None = None) -> None:
    """Blocks: runs each deployment's scheduled and ad hoc runs in subprocesses of this one."""
    from prefect import serve

    serve(*to_runner_deployments(specs), limit=limit)
