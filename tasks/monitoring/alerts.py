"""Alerts through a Prefect notification block (Slack, webhook, ...) named in the config, or a
plain JSON webhook; the message says what is deprecated, where, and by when it will be deleted."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from tasks.errors import BaseImageError
from tasks.monitoring.watch import Finding
from tasks.registry.http import HttpTransport, Outcome, classify
from tasks.secrets import redact_url


def message(findings: Sequence[Finding], today: date) -> tuple[str, str]:
    """(subject, body) for the deprecated findings."""
    bad = [f for f in findings if f.deprecated]
    subject = f"baseimage: {len(bad)} running container(s) on deprecated CUDA images"
    lines = []
    for f in bad:
        why = []
        if f.config_eol:
            why.append("image config sets NVIDIA_CUDA_END_OF_LIFE")
        if f.banner:
            why.append("start-up log shows the deprecation banner")
        days = f.days_to_deletion(today)
        when = f"; estimated deletion {f.estimated_deletion} ({days} days)" if f.estimated_deletion else ""
        lines.append(f"- {f.environment}/{f.container}: {f.image} (CUDA {f.cuda_version}): {', '.join(why)}{when}")
    lines.append("Run `baseimage review`, then `baseimage migrate`.")
    return subject, "\n".join(lines)


def send(
    subject: str,
    body: str,
    *,
    block: Any = None,
    webhook_url: str | None = None,
    transport: HttpTransport | None = None,
) -> str:
    """Send through `block` (a Prefect NotificationBlock) or POST JSON to `webhook_url`."""
    if block is not None:
        block.notify(body=body, subject=subject)
        return f"notification block {getattr(block, '_block_document_name', None) or type(block).__name__}"
    if webhook_url:
        shown = redact_url(webhook_url)  # for Slack and the like the URL is the secret
        try:
            response = (transport or HttpTransport()).request(
                "POST",
                webhook_url,
                headers={"Content-Type": "application/json"},
                body=json.dumps({"subject": subject, "text": body}).encode(),
            )
        except BaseImageError as exc:
            # `from None`: the transport's error names the full URL, which must not reach a log.
            raise BaseImageError(f"POST {shown}: {str(exc).replace(webhook_url, shown)}") from None
        if classify(response.status_code) is not Outcome.OK:
            raise BaseImageError(f"POST {shown}: HTTP {response.status_code}")
        return f"webhook {shown}"
    return "no alert channel configured (alerts.block or alerts.webhook_url)"
