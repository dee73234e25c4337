"""The Grafana dashboard and the Prometheus rules use only metrics the code registers: the list
is read from the registries themselves (the watch's and the training service's), not written here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.support.redis_server import RedisServer

METRIC = re.compile(r"\b(?:baseimage|training|cuda)_[a-z_]+\b")


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    try:
        server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield exported(server.url)
    finally:
        server.stop()


def exported(redis_url: str) -> set[str]:
    """Every sample name the code exports: the watch's registry and the training service's
    exposition after it recorded one of everything (counters with their _total)."""
    import redis

    from services.training.metrics import Metrics
    from tasks.monitoring.metrics import registry_for

    names = set()
    for metric in registry_for([], date(2026, 12, 1), datetime.now(UTC)).collect():
        names.add(metric.name)
    service = Metrics(redis.Redis.from_url(redis_url))
    service.task_finished("success")
    service.cuda_oom()
    service.gpu_utilization(50.0, 90.0)
    for line in service.render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(f"{name}_total" if kind == "counter" and not name.endswith("_total") else name)
    return names


def test_dashboard_uses_exported_metrics(known: set[str]) -> None:
    dashboard = json.loads((REPO_ROOT / "deployments" / "grafana" / "baseimage-dashboard.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(METRIC.findall(target["expr"]))
    assert names and names <= known, names - known
    assert {
        "baseimage_deprecated_images",
        "baseimage_days_to_deletion",
        "baseimage_watch_findings",
        "baseimage_soak_passed",
    } <= names


def test_alerting_rules_use_exported_metrics(known: set[str]) -> None:
    rules = yaml.safe_load((REPO_ROOT / "deployments" / "prometheus" / "baseimage-rules.yml").read_text())
    names = {n for group in rules["groups"] for rule in group["rules"] for n in METRIC.findall(rule["expr"])}
    assert names and names <= known, names - known
