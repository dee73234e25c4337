"""A site for the deployment tests: a repository whose managed image is the stub service, and
its "staging" and "production" compose projects on the host network."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.support.candidate import write_service_repo
from tests.support.registry_server import free_port
from tests.support.repo import commit_all

PREVIOUS = "baseimage-test/svc:previous"
# CI has no GPU: validation is skipped or runs its GPU checks as skipped, which the default policy
# (require_gpu: true) would not let reach production.
NO_GPU = "policy:\n  require_gpu: false\n"


def policy(
    ports: dict[str, int], projects: dict[str, str], faults: dict[str, str], approvals: str, extra: str = ""
) -> str:
    envs = []
    for name in ("staging", "production"):
        fault = faults.get(name)
        variables = f", FAULT: {fault}, FAULT_ON: '12.9.1', FAULT_AFTER: '1'" if fault else ""
        url = f"http://127.0.0.1:{ports[name]}/cgi-bin/svc"
        envs.append(f"""  {name}:
    compose_file: deployments/compose/svc.yaml
    project: {projects[name]}
    variables: {{PORT: '{ports[name]}'{variables}}}
    health_url: {url}/health
    metrics_url: {url}/metrics
    health_timeout_s: 8
    soak_hours: 0.0012
    soak_interval_s: 0.5""")
    return (
        f"""images:
  - name: svc
    dockerfile: dockerfiles/svc/Dockerfile
    track: cuda
{extra}{"" if "policy:" in extra else NO_GPU}approvals:
  timeout_s: 180
  required_for: [{approvals}]
environments:
"""
        + "\n".join(envs)
        + "\n"
    )


class Site:
    """A repository whose service runs as two compose projects on the previous image."""

    def __init__(self, root: Path, base: str, model: Path, docker_client: Any) -> None:
        self.root = root
        self.client = docker_client
        self.ports = {"staging": free_port(), "production": free_port()}
        tag = uuid.uuid4().hex[:8]
        self.projects = {"staging": f"st-{tag}", "production": f"pr-{tag}"}
        write_service_repo(root, model, base)
        (root / "config").mkdir(exist_ok=True)

    @property
    def config(self) -> Path:
        return self.root / "config" / "policy.yaml"

    def configure(self, faults: dict[str, str] | None = None, approvals: str = "production", extra: str = "") -> Site:
        self.config.write_text(policy(self.ports, self.projects, faults or {}, approvals, extra))
        commit_all(self.root)
        return self

    def start_previous(self) -> None:
        from baseimage.settings import load_settings
        from baseimage.wiring import target_of
        from tasks.deploy.ledger import Ledger
        from tasks.deploy.release import deploy

        settings = load_settings(self.config)
        for name in ("staging", "production"):
            deploy(self.client, target_of(settings, name), PREVIOUS, Ledger(settings.state_dir, name))

    def image(self, environment: str) -> str:
        containers = self.client.containers.list(
            filters={"label": [f"com.docker.compose.project={self.projects[environment]}"]}
        )
        assert len(containers) == 1, containers
        return str(containers[0].attrs["Config"]["Image"])

    def healthy(self, environment: str) -> bool:
        url = f"http://127.0.0.1:{self.ports[environment]}/cgi-bin/svc/health"
        return requests.get(url, timeout=5).status_code == 200

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True).stdout

    def outcome(self) -> dict[str, Any]:
        (report,) = (self.root / "reports").glob("migrate-*.json")
        return dict(json.loads(report.read_text()))

    def down(self) -> None:
        for project in self.projects.values():
            for container in self.client.containers.list(
                all=True, filters={"label": [f"com.docker.compose.project={project}"]}
            ):
                container.remove(force=True)
