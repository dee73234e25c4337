"""Set up a Prefect server for baseimage, idempotently: the `default` and `gpu` process work pools
(`gpu` limited to one run at a time: one GPU), the blocks the flows load by name (the GitHub
token Secret from $GITHUB_TOKEN, the alert notification block from $BASEIMAGE_SLACK_WEBHOOK_URL),
and the automations: a failed or crashed run of any baseimage flow notifies `alerts.block`
(`automations.notify_failures`), and the `migrate` deployment's trigger on the review's
`baseimage.migration.recommended` event (declared in prefect.yaml, created disabled by
`prefect deploy`) is switched on or off as `automations.migrate_on_recommendation` says.
Run it again at any time (and after `prefect deploy --all`, which re-creates the trigger as
declared): what exists is kept or corrected, nothing is duplicated, and no secret is printed.

    PREFECT_API_URL=http://server:4200/api python -m deployments.setup
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

POOLS = {"default": None, "gpu": 1}  # name -> concurrency limit (None: unlimited)
FAILED_AUTOMATION = "baseimage-flow-run-failed"
MIGRATE_TRIGGER = "baseimage-migrate-on-recommendation"  # the trigger's name in prefect.yaml


async def ensure_pools(gpu_limit: int, pool_type: str = "process") -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    done = []
    limits = {**POOLS, "gpu": gpu_limit}
    async with get_client() as client:
        for name, limit in limits.items():
            try:
                pool = await client.read_work_pool(name)
            except ObjectNotFound:
                await client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, concurrency_limit=limit))
                done.append(f"created work pool {name} ({pool_type}, concurrency {limit or 'unlimited'})")
                continue
            if pool.concurrency_limit != limit:
                await client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=limit))
                done.append(f"work pool {name}: concurrency {pool.concurrency_limit} -> {limit or 'unlimited'}")
            else:
                done.append(f"work pool {name} exists ({pool.type}, concurrency {limit or 'unlimited'})")
    return done


def ensure_blocks(config: Path | None) -> list[str]:
    from prefect.blocks.notifications import SlackWebhook
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    from baseimage.settings import load_settings

    settings = load_settings(config)
    done = []
    token_block = settings.github.token_block if settings.github else "github-token"
    token = os.environ.get("GITHUB_TOKEN")
    if token and token_block:
        Secret(value=SecretStr(token)).save(token_block, overwrite=True)
        done.append(f"Secret block {token_block} saved from $GITHUB_TOKEN")
    else:
        done.append(f"Secret block {token_block}: skipped ($GITHUB_TOKEN not set)")
    webhook = os.environ.get("BASEIMAGE_SLACK_WEBHOOK_URL")
    # alerts.block is "slack-webhook/NAME" (how Block.load finds it); the block is saved as NAME.
    name = (settings.alerts.block or "baseimage-alerts").rpartition("/")[2]
    if webhook:
        SlackWebhook(url=webhook).save(name, overwrite=True)  # type: ignore[arg-type]
        done.append(
            f"SlackWebhook block {name} saved from $BASEIMAGE_SLACK_WEBHOOK_URL; set alerts.block: slack-webhook/{name}"
        )
    else:
        done.append(f"notification block {name}: skipped ($BASEIMAGE_SLACK_WEBHOOK_URL not set)")
    return done


def failure_automation(block_document_id: Any) -> Any:
    """A failed or crashed run of any baseimage flow, sent through the notification block."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    from baseimage.history import FLOWS  # every flow of flows/ (tests/test_setup_automations.py)

    return AutomationCore(
        name=FAILED_AUTOMATION,
        description="A baseimage flow run failed or crashed: notify alerts.block (deployments/setup.py).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": list(FLOWS)},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject="baseimage: {{ flow.name }} run {{ flow_run.name }} {{ flow_run.state.name }}",
                body=(
                    "The {{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state.name }}: "
                    "{{ flow_run.state.message }}\nFlow run {{ flow_run.id }}"
                    "{% set link = flow_run|ui_url %}{% if link %}: {{ link }}{% endif %}"
                ),
            )
        ],
    )


async def ensure_automations(config: Path | None) -> list[str]:
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client

    from baseimage.settings import load_settings

    settings = load_settings(config)
    done = []
    async with get_client() as client:
        existing = await client.read_automations_by_name(FAILED_AUTOMATION)
        for old in existing:
            await client.delete_automation(old.id)
        if not settings.automations.notify_failures:
            done.append(f"automation {FAILED_AUTOMATION}: off (automations.notify_failures: false)")
        elif not settings.alerts.block:
            done.append(f"automation {FAILED_AUTOMATION}: skipped (no alerts.block to notify)")
        else:
            try:
                block: Any = await Block.aload(settings.alerts.block)
            except (ValueError, KeyError) as exc:
                done.append(
                    f"automation {FAILED_AUTOMATION}: skipped: notification block {settings.alerts.block} "
                    f"cannot be loaded ({exc}); save it on the server, then run this again"
                )
            else:
                await client.create_automation(failure_automation(block._block_document_id))
                verb = "replaced" if existing else "created"
                done.append(
                    f"automation {FAILED_AUTOMATION} {verb}: failed or crashed runs notify {settings.alerts.block}"
                )
        wanted = settings.automations.migrate_on_recommendation
        triggers = await client.read_automations_by_name(MIGRATE_TRIGGER)
        if not triggers:
            done.append(
                f"automation {MIGRATE_TRIGGER}: not there yet (prefect deploy --all creates it from prefect.yaml; "
                "run this again after it)"
            )
        for trigger in triggers:
            if trigger.enabled != wanted:
                await (client.resume_automation if wanted else client.pause_automation)(trigger.id)
            state = "on" if wanted else "off (automations.migrate_on_recommendation: false)"
            done.append(f"automation {MIGRATE_TRIGGER}: {state}")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.setup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="policy file (default: config/policy.yaml)")
    parser.add_argument("--gpu-concurrency", type=int, default=1, help="runs at once on the gpu pool (GPUs)")
    parser.add_argument("--pool-type", default="process", help="worker type of new pools (process or docker)")
    parser.add_argument(
        "--automations-only", action="store_true", help="only the automations (after `prefect deploy --all`)"
    )
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("PREFECT_API_URL is not set: point it at your Prefect server (e.g. http://127.0.0.1:4200/api)")
        return 2
    try:
        lines = []
        if not args.automations_only:
            lines += asyncio.run(ensure_pools(args.gpu_concurrency, args.pool_type)) + ensure_blocks(args.config)
        lines += asyncio.run(ensure_automations(args.config))
    except Exception as exc:
        print(f"set-up failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
