"""Docker Compose through one subprocess wrapper: `docker compose` (v2) where the plugin exists,
`docker-compose` (v1) otherwise; list arguments, never a shell; DOCKER_HOST per environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tasks.errors import BaseImageError

COMPOSE_PROJECT = "com.docker.compose.project"  # labels compose puts on every container it makes
COMPOSE_SERVICE = "com.docker.compose.service"


class ComposeError(BaseImageError):
    """A compose command failed; the message has the command, the project and compose's stderr."""


def project_containers(client: Any, project: str, service: str | None = None) -> list[Any]:
    """The running containers of compose `project` (of one `service`), found by compose's labels."""
    labels = [f"{COMPOSE_PROJECT}={project}"] + ([f"{COMPOSE_SERVICE}={service}"] if service else [])
    return list(client.containers.list(filters={"label": labels}))


# What compose needs from this process's environment; everything else (tokens, API keys, the
# webhook URL) stays out of it: compose would interpolate it into containers on request.
PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_RUNTIME_DIR", "SSH_AUTH_SOCK")


def compose_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k in PASSED or k.startswith(("DOCKER_", "COMPOSE_"))}


@cache
def compose_command() -> tuple[str, ...]:
    """``docker compose`` when the v2 plugin answers, else ``docker-compose``; an error if neither."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False)
        if probe.returncode == 0:
            return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy:
        return (legacy,)
    raise ComposeError(
        "neither `docker compose` (v2 plugin) nor `docker-compose` (v1) is installed: install "
        "docker-compose-plugin (or Debian's docker-compose) on the host that runs the deploy"
    )


@dataclass(frozen=True)
class Compose:
    """One compose project: its file, its name and the Docker host it runs on."""

    file: Path
    project: str
    docker_host: str | None = None

    def run(self, *args: str, variables: Mapping[str, str] | None = None, timeout: float = 600) -> str:
        if not self.file.is_file():
            raise ComposeError(f"{self.file}: compose file not found (environments.*.compose_file in the config)")
        env = {**compose_environment(os.environ), **(variables or {})}
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        argv = [*compose_command(), "-f", str(self.file), "-p", self.project, *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(f"compose {' '.join(args)} of project {self.project} took over {timeout:g} s") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise ComposeError(
                f"compose {' '.join(args)} of project {self.project} ({self.file}) failed ({done.returncode}):\n{tail}"
            )
        return done.stdout

    def up(self, variables: Mapping[str, str], timeout: float = 600) -> None:
        """Create or recreate the project's services with `variables` (the image among them); never builds."""
        self.run("up", "-d", "--no-build", "--remove-orphans", variables=variables, timeout=timeout)

    def logs(self, variables: Mapping[str, str], tail: int = 200) -> str:
        return self.run("logs", "--no-color", "--tail", str(tail), variables=variables, timeout=120)

    def down(self, variables: Mapping[str, str]) -> None:
        self.run("down", "--remove-orphans", variables=variables, timeout=300)
