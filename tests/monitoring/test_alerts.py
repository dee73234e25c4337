"""Alert messages and channels: a Prefect notification block and a plain webhook, both to a local endpoint."""

from __future__ import annotations

import json
from datetime import date

from tasks.monitoring.alerts import message, send
from tasks.monitoring.metrics import registry_for
from tasks.monitoring.watch import Finding
from tests.support.http_endpoint import Endpoint, Reply, Request

TODAY = date(2026, 11, 28)
FINDINGS = [
    Finding(
        "staging",
        "training-1",
        "nvidia/cuda:12.1.0-runtime-ubuntu22.04",
        "12.1.0",
        True,
        ["** DEPRECATION NOTICE! **"],
        date(2023, 10, 1),
    ),
    Finding("production", "training-2", "nvidia/cuda:12.6.3-runtime-ubuntu22.04", "12.6.3", False),
]


def test_message_names_what_where_and_when() -> None:
    subject, body = message(FINDINGS, TODAY)
    assert subject == "baseimage: 1 running container(s) on deprecated CUDA images"
    assert body.splitlines()[0] == (
        "- staging/training-1: nvidia/cuda:12.1.0-runtime-ubuntu22.04 (CUDA 12.1.0): image config sets "
        "NVIDIA_CUDA_END_OF_LIFE, start-up log shows the deprecation banner; estimated deletion 2023-10-01 (-1154 days)"
    )


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

    text = generate_latest(registry_for(FINDINGS, TODAY, None, {"staging": True})).decode()
    assert 'baseimage_deprecated_images{environment="staging"} 1.0' in text
    assert (
        'baseimage_days_to_deletion{environment="staging",image="nvidia/cuda:12.1.0-runtime-ubuntu22.04"} -1154.0'
        in text
    )
    assert 'baseimage_soak_passed{environment="staging"} 1.0' in text
