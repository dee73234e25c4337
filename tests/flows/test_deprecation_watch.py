"""The deprecation watch against running containers on the real daemon and a registry of the
test's own: a superseded release without the EOL flag is found deprecated, the banner is found
behind 1,000 lines of service log, a re-pushed tag is found with what changed in its driver
requirement, alerts are sent once and resolved once across runs (through a saved Prefect
notification block), and the metrics (soak verdict included) reach a real Pushgateway."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_LABEL, _unavailable
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.private_registry import private_registry, repush
from tests.support.pushgateway import Pushgateway
from tests.support.registry_server import LocalRegistry

pytestmark = pytest.mark.docker
OLD, NEW, FLAGGED = "12.6.0-runtime-ubuntu22.04", "12.6.3-runtime-ubuntu22.04", "12.1.0-runtime-ubuntu22.04"
# NVIDIA's live list as a mirror serves it, without 12.6.0: only the newer-patch rule can catch it.
MANIFEST = b"""unsupported:
  release_label:
    - 12.1.0 # Newer version available
    - 12.0.0 # Newer version available
"""


@pytest.fixture
def own(tmp_path: Path) -> Iterator[LocalRegistry]:
    try:
        registry = private_registry(tmp_path / "registry", {OLD, NEW, FLAGGED})
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise
    yield registry
    registry.stop()


@pytest.fixture
def nvidia() -> Iterator[Endpoint]:
    with Endpoint(lambda req: Reply(200, MANIFEST)) as ep:
        yield ep


@pytest.fixture
def gateway() -> Iterator[Pushgateway]:
    try:
        server = Pushgateway().start()
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise
    yield server
    server.stop()


def start(docker_client: Any, registry: LocalRegistry, tag: str, project: str, command: list[str] | None = None) -> Any:
    image = f"{registry.host}/nvidia/cuda:{tag}"
    docker_client.images.pull(image)
    return docker_client.containers.run(
        image,
        command or ["sleep", "300"],
        detach=True,
        network_mode="host",
        labels={TEST_LABEL: "1", "com.docker.compose.project": project},
    )


def write_config(tmp_path: Path, body: str, projects: dict[str, str], fleet: int = 535) -> Path:
    envs = "\n".join(
        f'  {name}: {{compose_file: c.yaml, project: {project}, health_url: "http://127.0.0.1:1/health"}}'
        for name, project in projects.items()
    )
    config = tmp_path / "policy.yaml"
    config.write_text(
        f"images: [{{name: t, dockerfile: D, track: cuda}}]\nfleet: {{min_driver: {fleet}}}\n"
        f"environments:\n{envs}\n{body}"
    )
    return config


def registry_config(registry: LocalRegistry, nvidia: Endpoint) -> str:
    return (
        f'registries: {{mirrors: {{docker.io: "{registry.url}"}}}}\n'
        f'research: {{nvidia_support_url: "{nvidia.url}/manifests/cuda.yaml"}}\n'
    )


def kinds(result: dict[str, Any], environment: str) -> dict[str, dict[str, Any]]:
    (row,) = [r for r in result["containers"] if r["environment"] == environment]
    return {f["kind"]: f for f in row["findings"]}


def test_a_running_unflagged_superseded_release_is_found_deprecated(
    prefect_harness: None, docker_client: Any, own: LocalRegistry, nvidia: Endpoint, tmp_path: Path
) -> None:
    """12.6.0 with no NVIDIA_CUDA_END_OF_LIFE, absent from NVIDIA's live list, but superseded by
    12.6.3 in the registry: deprecated by NVIDIA's rule, with its (past) deletion date."""
    from flows.deprecation_watch import deprecation_watch

    container = start(docker_client, own, OLD, "watch-old")
    try:
        config = write_config(tmp_path, registry_config(own, nvidia), {"staging": "watch-old"}, fleet=580)
        result = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
    finally:
        container.remove(force=True)
    (row,) = result["containers"]
    assert row["cuda"] == "12.6.0" and row["config_eol"] is False and row["banner"] is False
    assert row["deprecated"] is True and result["deprecated"] == 1
    found = kinds(result, "staging")
    assert "nvidia-eol" not in found, "the live list (the mirror) does not list 12.6.0"
    assert found["newer-patch"]["severity"] == "warning"
    assert "superseded by 12.6.3 in the registry" in found["newer-patch"]["message"]
    assert found["deletion-date"]["severity"] == "critical"
    assert "2025-03-05" in found["deletion-date"]["message"] and "days ago" in found["deletion-date"]["message"]
    assert row["estimated_deletion"] == "2025-03-05" and row["days_to_deletion"] < 0
    assert [r.path for r in nvidia.requests] == ["/manifests/cuda.yaml"], "NVIDIA's list read live, once"


def test_the_banner_is_found_behind_a_thousand_lines_of_service_log(
    prefect_harness: None, docker_client: Any, own: LocalRegistry, nvidia: Endpoint, tmp_path: Path
) -> None:
    from flows.deprecation_watch import deprecation_watch

    chatty = ["sh", "-c", "i=0; while [ $i -lt 1000 ]; do echo service line $i; i=$((i+1)); done; sleep 300"]
    container = start(docker_client, own, FLAGGED, "watch-chatty", chatty)
    try:
        deadline = time.monotonic() + 30
        while b"service line 999" not in container.logs(tail=5) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert b"DEPRECATION NOTICE" not in container.logs(tail=400), "the banner is beyond the last 400 lines"
        config = write_config(tmp_path, registry_config(own, nvidia), {"staging": "watch-chatty"}, fleet=580)
        result = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
    finally:
        container.remove(force=True)
    found = kinds(result, "staging")
    assert result["containers"][0]["banner"] is True
    assert "DEPRECATION NOTICE" in found["banner"]["message"]
    assert {"eol-flag", "nvidia-eol", "deletion-date"} <= set(found)  # no 12.1.1 in this registry


def test_a_re_pushed_tag_is_found_with_its_changed_driver_requirement(
    prefect_harness: None, docker_client: Any, own: LocalRegistry, nvidia: Endpoint, tmp_path: Path
) -> None:
    """The running 12.6.3 came from one digest; the tag now names a config whose
    NVIDIA_REQUIRE_CUDA no longer lists R535 (the fleet's branch): critical, and said why."""
    from flows.deprecation_watch import deprecation_watch

    container = start(docker_client, own, NEW, "watch-repushed")
    try:
        old = own.seeded[f"nvidia/cuda:{NEW}"].env["NVIDIA_REQUIRE_CUDA"]
        dropped = " ".join(c for c in old.split() if "driver>=535" not in c)
        new_digest = repush(own, "nvidia/cuda", NEW, {"NVIDIA_REQUIRE_CUDA": dropped})
        config = write_config(tmp_path, registry_config(own, nvidia), {"production": "watch-repushed"})
        result = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
    finally:
        container.remove(force=True)
    found = kinds(result, "production")
    repushed = found["tag-repushed"]
    assert repushed["severity"] == "critical"
    message = repushed["message"]
    assert f"is {new_digest[:19]}" in message and "as in the local image: the tag was re-pushed" in message
    assert "NVIDIA_REQUIRE_CUDA changed: driver branch R535 dropped;" in message
    assert "the fleet (R535) can NOT run it" in message and "it ran the deployed one" in message
    assert result["containers"][0]["deprecated"] is False, "12.6.3 itself is current"


def test_alerts_are_sent_once_and_resolved_once_through_a_saved_notification_block(
    prefect_harness: None, docker_client: Any, own: LocalRegistry, nvidia: Endpoint, tmp_path: Path
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from flows.deprecation_watch import deprecation_watch

    got: list[Request] = []
    with Endpoint(lambda req: (got.append(req), Reply(200))[1]) as hook:
        CustomWebhookNotificationBlock(
            name="watch-alerts",
            url=f"{hook.url}/notify",
            allow_private_urls=True,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
        ).save("watch-alerts", overwrite=True)
        config = write_config(
            tmp_path,
            registry_config(own, nvidia) + "alerts: {block: custom-webhook/watch-alerts}\n",
            {"staging": "watch-alerted"},
            fleet=580,
        )
        state = tmp_path / "reports" / "watch" / "state.json"
        container = start(docker_client, own, OLD, "watch-alerted")
        try:
            first = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
            kept = json.loads(state.read_text())["findings"]
            second = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
        finally:
            container.remove(force=True)
        third = deprecation_watch(config_path=str(config), reports_dir=str(tmp_path / "reports"))
    assert [r.path for r in got] == ["/notify", "/notify"], [json.loads(r.body)["subject"] for r in got]
    alert, resolved = (json.loads(r.body) for r in got)
    assert alert["subject"].startswith("baseimage [critical]: 2 new finding(s) on 1 running container(s)")
    assert "[critical] staging/" in alert["text"] and "[warning] staging/" in alert["text"]
    assert (
        "superseded by 12.6.3" in alert["text"]
        and "estimated deletion of CUDA 12.6.0 tags is 2025-03-05" in alert["text"]
    )
    assert first["alert"] == "alert sent: notification block watch-alerts"
    assert set(kept) == set(first["transitions"]["appeared"]) and len(kept) == 2
    assert second["alert"] == "no new finding: no alert" and second["transitions"]["appeared"] == []
    assert resolved["subject"] == "baseimage [resolved]: 2 finding(s) no longer seen"
    assert third["transitions"]["resolved"] == sorted(kept) and third["resolved"].startswith("resolved sent")
    assert json.loads(state.read_text())["findings"] == {}


def test_soak_verdicts_and_findings_reach_a_real_pushgateway(
    prefect_harness: None,
    docker_client: Any,
    own: LocalRegistry,
    nvidia: Endpoint,
    gateway: Pushgateway,
    tmp_path: Path,
) -> None:
    """`baseimage_soak_passed` comes from the newest migration outcome that carries a finished
    soak (the soak flow's own result, run here for real), per environment."""
    from flows.deprecation_watch import deprecation_watch
    from flows.soak_monitor import soak_monitor
    from tasks.monitoring.soak_report import SoakReport
    from tasks.update.outcome import MigrationOutcome, Result

    reports = tmp_path / "reports"
    with Endpoint(lambda req: Reply(200, b"{}")) as health, Endpoint(lambda req: Reply(503)) as down:
        config = write_config(
            tmp_path,
            registry_config(own, nvidia) + f"monitoring: {{pushgateway: {gateway.address}}}\n",
            {"staging": "watch-soaked", "production": "watch-prod"},
        )
        text = config.read_text()
        config.write_text(
            text.replace(
                'project: watch-soaked, health_url: "http://127.0.0.1:1/health"',
                f'project: watch-soaked, health_url: "{health.url}/health", max_health_failures: 0',
            )
        )
        passed = soak_monitor("staging", "w1", str(config), window_s=2, interval_s=1, state_dir=str(reports / "soak"))
        config.write_text(config.read_text().replace(f"{health.url}/health", f"{down.url}/health"))
        failed = soak_monitor("staging", "w2", str(config), window_s=2, interval_s=1, state_dir=str(reports / "soak"))
    assert (passed["status"], failed["status"]) == ("passed", "failed")
    reports.mkdir(exist_ok=True)
    for name, soak, when in (("migrate-aaaa.json", passed, 1_000), ("migrate-bbbb.json", failed, 2_000)):
        path = reports / name
        path.write_text(
            json.dumps(MigrationOutcome(Result.DEPLOYED, "x", name, soak=SoakReport.from_json(soak, name)).to_json())
        )
        os.utime(path, (when, when))
    (reports / "review-2026-11-04.json").write_text(json.dumps({"date": "2026-11-04"}))
    container = start(docker_client, own, OLD, "watch-soaked")
    try:
        deprecation_watch(config_path=str(config), reports_dir=str(reports))
    finally:
        container.remove(force=True)
    text = gateway.metrics()
    assert 'baseimage_soak_passed{environment="staging",instance="",job="baseimage"} 0' in text
    assert 'baseimage_soak_passed{environment="production"' not in text, "no soak there: no value"
    assert 'baseimage_deprecated_images{environment="staging",instance="",job="baseimage"} 1' in text
    assert 'baseimage_deprecated_images{environment="production",instance="",job="baseimage"} 0' in text
    assert 'baseimage_watch_findings{environment="staging",instance="",job="baseimage",severity="critical"} 1' in text
    assert 'baseimage_watch_findings{environment="staging",instance="",job="baseimage",severity="warning"} 1' in text
    assert 'baseimage_watch_findings{environment="fleet",instance="",job="baseimage",severity="critical"} 1' in text
    assert "baseimage_last_review_timestamp_seconds" in text
    # The older outcome alone says passed: the newest verdict wins, not the first one read.
    (reports / "migrate-bbbb.json").unlink()
    deprecation_watch(config_path=str(config), reports_dir=str(reports))
    assert 'baseimage_soak_passed{environment="staging",instance="",job="baseimage"} 1' in gateway.metrics()


def test_containers_on_one_image_cost_one_look_up_each(docker_client: Any, own: LocalRegistry, tmp_path: Path) -> None:
    """Three containers on one tag: one tag list and one manifest request in all (the session
    memoises; nothing is asked twice)."""
    from datetime import date

    from tasks.http import HttpTransport
    from tasks.monitoring.watch import WatchContext, watch
    from tasks.registry.session import RegistrySession
    from tasks.research.facts import load_facts

    containers = [start(docker_client, own, OLD, "watch-many") for _ in range(3)]
    try:
        http = HttpTransport()
        session = RegistrySession(mirrors={"docker.io": own.url}, transport=http)
        ctx = WatchContext(load_facts(), {}, "none", session, 580, date(2026, 12, 1))
        reports = watch(docker_client, {"staging": "watch-many"}, ctx)
    finally:
        for container in containers:
            container.remove(force=True)
    assert len(reports) == 3 and all(r.deprecated for r in reports)
    assert len(http.sent) == len(set(http.sent)) == 2, http.sent
    assert [m for m, _ in http.sent] == ["GET", "GET"] and "tags/list" in http.sent[0][1]
