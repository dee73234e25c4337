"""Find deprecated images among an environment's running containers: NVIDIA's EOL flag in the
image config and the deprecation banner in the container's start-up log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tasks.deploy.compose import project_containers
from tasks.deprecation import find_deprecation_banner
from tasks.research.facts import Facts
from tasks.research.support import add_months


@dataclass
class Finding:
    environment: str
    container: str
    image: str
    cuda_version: str | None
    config_eol: bool
    banner: list[str] = field(default_factory=list)
    estimated_deletion: date | None = None

    @property
    def deprecated(self) -> bool:
        return self.config_eol or bool(self.banner)

    def days_to_deletion(self, today: date) -> int | None:
        return (self.estimated_deletion - today).days if self.estimated_deletion else None


def _env(attrs: dict[str, Any]) -> dict[str, str]:
    items = (attrs.get("Config") or {}).get("Env") or []
    return dict(item.split("=", 1) for item in items if "=" in item)


def inspect_container(container: Any, environment: str, facts: Facts, log_lines: int = 400) -> Finding:
    """One container: its image config and the first lines of its log (where the banner is)."""
    image = container.image
    env = _env(image.attrs)
    cuda = env.get("CUDA_VERSION")
    entry = facts.eol.get(cuda or "")
    deletion = None
    if entry:
        deletion = entry.estimated_deletion or (
            add_months(entry.marked_eol, facts.deletion_after_months) if entry.marked_eol else None
        )
    log = container.logs(tail=log_lines).decode(errors="replace")
    tags = image.tags or [image.short_id]
    return Finding(
        environment,
        container.name,
        tags[0],
        cuda,
        bool(env.get("NVIDIA_CUDA_END_OF_LIFE")),
        find_deprecation_banner(log),
        deletion,
    )


def watch(client: Any, projects: dict[str, str], facts: Facts) -> list[Finding]:
    """Every running container of each environment (compose project label), inspected."""
    findings = []
    for environment, project in projects.items():
        for container in project_containers(client, project):
            findings.append(inspect_container(container, environment, facts))
    return findings
