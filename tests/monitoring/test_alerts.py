"""Alert channels (a Prefect notification block and a plain webhook, both to a local endpoint),
the message, and the metrics registry."""

from __future__ import annotations

import json
from datetime import date

from tasks.monitoring.alerts import alert_message, send, transitions
from tasks.monitoring.findings import ContainerReport, Finding, Severity
from tasks.monitoring.metrics import SoakVerdict, registry_for
from tests.support.http_endpoint import Endpoint, Reply, Request

TODAY = date(2026, 11, 28)
OLD = "nvidia/cuda:12.1.0-runtime-ubuntu22.04"
DELETION = Finding(
    "staging",
    "training-1",
    OLD,
    "deletion-date",
    Severity.CRITICAL,
    "NVIDIA's estimated deletion of CUDA 12.1.0 tags is 2023-10-01 (1154 days ago)",
    "12.1.0",
    date(2023, 10, 1),
    -1154,
)
FLAG = Finding(
    "staging", "training-1", OLD, "eol-flag", Severity.WARNING, "the image config sets NVIDIA_CUDA_END_OF_LIFE"
)
REPORTS = [
    ContainerReport(
        "staging",
        "training-1",
        OLD,
        "sha256:1",
        "12.1.0",
        True,
        ("** DEPRECATION NOTICE! **",),
        (OLD,),
        (FLAG, DELETION),
    ),
    ContainerReport("production", "training-2", "nvidia/cuda:12.6.3-runtime-ubuntu22.04", "sha256:2", "12.6.3", False),
]


def test_message_names_what_where_and_when() -> None:
    subject, body = alert_message(transitions({}, [FLAG, DELETION]), TODAY)
    assert subject == "baseimage [critical]: 2 new finding(s) on 1 running container(s)"
    assert body.splitlines()[0] == (
        "- [critical] staging/training-1: nvidia/cuda:12.1.0-runtime-ubuntu22.04: NVIDIA's estimated deletion of "
        "CUDA 12.1.0 tags is 2023-10-01 (1154 days ago)"
    )
    assert body.splitlines()[1].startswith("- [warning] staging/training-1:")


def test_prefect_notification_block_reaches_the_endpoint() -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    got: list[Request] = []
    with Endpoint(lambda req: (got.append(req), Reply(200))[1]) as ep:
        block = CustomWebhookNotificationBlock(
            name="alerts", url=f"{ep.url}/hook", allow_private_urls=True, json_data={"text": "{{subject}}: {{body}}"}
        )
        where = send("subject", "body line", block=block)
    assert where.startswith("notification block")
    assert json.loads(got[0].body) == {"text": "subject: body line"}


def test_no_channel_is_said() -> None:
    assert send("s", "b") == "no alert channel configured (alerts.block or alerts.webhook_url)"


def test_metrics_registry() -> None:
    from prometheus_client import generate_latest

    soak = {"staging": SoakVerdict("staging", "passed", "reports/migrate-x.json")}
    text = generate_latest(registry_for(REPORTS, TODAY, None, soak)).decode()
    assert 'baseimage_deprecated_images{environment="staging"} 1.0' in text
    assert 'baseimage_deprecated_images{environment="production"} 0.0' in text
    assert (
        'baseimage_days_to_deletion{environment="staging",image="nvidia/cuda:12.1.0-runtime-ubuntu22.04"} -1154.0'
        in text
    )
    assert 'baseimage_watch_findings{environment="staging",severity="critical"} 1.0' in text
    assert 'baseimage_watch_findings{environment="production",severity="critical"} 0.0' in text
    assert 'baseimage_soak_passed{environment="staging"} 1.0' in text
    assert "baseimage_last_review_timestamp_seconds" not in text, "no review yet: absent, not 1970"
