"""The deprecation watch against running containers on the real daemon: the EOL one is found by
its config flag and its start-up banner, the alert reaches a local webhook, the metrics reach a
real Pushgateway."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_LABEL
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.pushgateway import Pushgateway
from tests.support.registry_server import LocalRegistry

pytestmark = pytest.mark.docker


@pytest.fixture
def gateway() -> Iterator[Pushgateway]:
    try:
        server = Pushgateway().start()
    except RuntimeError as exc:
        from tests.conftest import _unavailable

        _unavailable(str(exc))
        raise
    yield server
    server.stop()


def start(docker_client: Any, registry: LocalRegistry, tag: str, project: str) -> Any:
    image = f"{registry.host}/nvidia/cuda:{tag}"
    docker_client.images.pull(image)
    return docker_client.containers.run(
        image,
        ["sleep", "120"],
        detach=True,
        network_mode="host",
        labels={TEST_LABEL: "1", "com.docker.compose.project": project},
    )


def test_watch_alerts_and_pushes_metrics(
    prefect_harness: None, docker_client: Any, registry: LocalRegistry, gateway: Pushgateway, tmp_path: Path
) -> None:
    received: list[Request] = []

    def webhook(req: Request) -> Reply:
        received.append(req)
        return Reply(200, b"ok")

    old = start(docker_client, registry, "12.1.0-runtime-ubuntu22.04", "watch-staging")
    new = start(docker_client, registry, "12.6.3-runtime-ubuntu22.04", "watch-production")
    try:
        time.sleep(1)  # let the entrypoint print its banner
        with Endpoint(webhook) as hook:
            config = tmp_path / "policy.yaml"
            config.write_text(f"""
images: [{{name: t, dockerfile: D, track: cuda}}]
environments:
  staging: {{compose_file: c.yaml, project: watch-staging, health_url: "http://127.0.0.1:1/health"}}
  production: {{compose_file: c.yaml, project: watch-production, health_url: "http://127.0.0.1:1/health"}}
alerts:
  webhook_url: {hook.url}/alerts
monitoring:
  pushgateway: {gateway.address}
""")
            (tmp_path / "reports").mkdir()
            (tmp_path / "reports" / "review-2026-11-04.json").write_text(json.dumps({"date": "2026-11-04"}))
            from flows.deprecation_watch import deprecation_watch

            result = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
    finally:
        old.remove(force=True)
        new.remove(force=True)
    assert result["deprecated"] == 1
    rows = {r["environment"]: r for r in result["containers"]}
    assert rows["staging"]["config_eol"] is True and rows["staging"]["banner"] is True
    assert rows["staging"]["estimated_deletion"] == "2023-10-01" and rows["staging"]["days_to_deletion"] < 0
    assert rows["production"]["config_eol"] is False and rows["production"]["banner"] is False
    assert [r.path for r in received] == ["/alerts"]
    alert = json.loads(received[0].body)
    assert alert["subject"] == "baseimage: 1 running container(s) on deprecated CUDA images"
    assert (
        "staging/" in alert["text"]
        and "CUDA 12.1.0" in alert["text"]
        and "estimated deletion 2023-10-01" in alert["text"]
    )
    text = gateway.metrics()
    assert 'baseimage_deprecated_images{environment="staging",instance="",job="baseimage"} 1' in text
    assert 'baseimage_deprecated_images{environment="production",instance="",job="baseimage"} 0' in text
    assert "baseimage_last_review_timestamp_seconds" in text
