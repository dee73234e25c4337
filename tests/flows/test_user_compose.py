"""Deploying through the user's own compose file, as the policy's repository has it: a `training`
service with a `build:` section and a fixed `container_name`, beside a second service. baseimage
sets only that service's image (a generated override file), so the container keeps its name
(`docker logs <name>`, as the policy's rollback step says), the other service is left alone and
the user's file is never edited."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.candidate import write_service_repo
from tests.support.registry_server import LocalRegistry, free_port
from tests.support.repo import commit_all

pytestmark = pytest.mark.docker
PREVIOUS = "baseimage-test/usercompose:previous"


def test_deploy_and_rollback_through_the_users_compose_file(
    tmp_path: Path, docker_client: Any, registry: LocalRegistry, model_onnx: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    name = f"heimdall-training-{tag}"
    root = write_service_repo(tmp_path / "repo", model_onnx, f"{registry.host}/nvidia/cuda:12.6.3-runtime-ubuntu22.04")
    sidecar = f"{registry.host}/nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    compose = f"""# The user's compose file, as their repository has it.
services:
  training:
    build:
      context: .
      dockerfile: dockerfiles/svc/Dockerfile
    container_name: {name}
    network_mode: host
    environment:
      PORT: "{port}"
    restart: unless-stopped
    labels:
      baseimage.test: "1"
  sidecar:
    image: {sidecar}
    command: ["sleep", "600"]
    network_mode: host
    labels:
      baseimage.test: "1"
"""
    (root / "docker-compose.yml").write_text(compose)
    (root / "config").mkdir()
    (root / "config" / "policy.yaml").write_text(f"""images:
  - name: training
    dockerfile: dockerfiles/svc/Dockerfile
    track: cuda
environments:
  staging:
    compose_file: docker-compose.yml
    project: user-{tag}
    service: training
    health_url: http://127.0.0.1:{port}/cgi-bin/svc/health
    health_timeout_s: 15
""")
    commit_all(root)
    docker_client.images.build(
        path=str(root), dockerfile="dockerfiles/svc/Dockerfile", tag=PREVIOUS, labels={"baseimage.test": "1"}
    )
    hotfix = "baseimage-test/usercompose:hotfix"
    docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {PREVIOUS}\nLABEL hotfix=1\n".encode()), tag=hotfix, labels={"baseimage.test": "1"}
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "baseimage.cli", *args, "--config", str(root / "config" / "policy.yaml")]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, cwd=root)

    def running() -> dict[str, str]:
        found = docker_client.containers.list(filters={"label": f"com.docker.compose.project=user-{tag}"})
        return {c.labels["com.docker.compose.service"]: str(c.attrs["Config"]["Image"]) for c in found} | {
            "name:" + c.name: c.labels["com.docker.compose.service"] for c in found
        }

    try:
        first = cli("deploy", "--env", "staging", "--image", PREVIOUS)
        assert first.returncode == 0, first.stdout + first.stderr
        state = running()
        assert state["training"] == PREVIOUS and state["sidecar"] == sidecar
        assert state[f"name:{name}"] == "training", "the container keeps the user's container_name"
        assert requests.get(f"http://127.0.0.1:{port}/cgi-bin/svc/health", timeout=5).status_code == 200
        second = cli("deploy", "--env", "staging", "--image", hotfix)
        assert second.returncode == 0, second.stdout + second.stderr
        assert running()["training"] == hotfix and running()["sidecar"] == sidecar
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=30, check=True)
        assert "stub training service on 127.0.0.1" in logs.stdout + logs.stderr, "docker logs <container_name> works"
        back = cli("rollback", "--env", "staging", "--reason", "hotfix misbehaves")
        assert back.returncode == 0, back.stdout + back.stderr
        assert f"staging: restored -> {PREVIOUS}" in back.stdout
        assert running()["training"] == PREVIOUS and running()["sidecar"] == sidecar
        assert (root / "docker-compose.yml").read_text() == compose, "the user's compose file is never edited"
        override = (root / "reports" / "deployments" / "staging.compose-override.yml").read_text()
        assert "training" in override and PREVIOUS in override and "sidecar" not in override
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project=user-{tag}"}
        ):
            container.remove(force=True)
