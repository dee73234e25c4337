"""Set up a Prefect server for baseimage, idempotently: the `default` and `gpu` process work pools
(`gpu` limited to one run at a time: one GPU), and the blocks the flows load by name: the GitHub
token Secret (from $GITHUB_TOKEN) and the alert notification block (from $BASEIMAGE_SLACK_WEBHOOK_URL).
Run it again at any time: what exists is kept (the gpu limit is corrected), nothing is duplicated,
and no secret is printed.

    PREFECT_API_URL=http://server:4200/api python -m deployments.setup
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

POOLS = {"default": None, "gpu": 1}  # name -> concurrency limit (None: unlimited)


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
    name = settings.alerts.block or "baseimage-alerts"
    if webhook:
        SlackWebhook(url=webhook).save(name, overwrite=True)  # type: ignore[arg-type]
        done.append(f"SlackWebhook block {name} saved from $BASEIMAGE_SLACK_WEBHOOK_URL; set alerts.block: {name}")
    else:
        done.append(f"notification block {name}: skipped ($BASEIMAGE_SLACK_WEBHOOK_URL not set)")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.setup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="policy file (default: config/policy.yaml)")
    parser.add_argument("--gpu-concurrency", type=int, default=1, help="runs at once on the gpu pool (GPUs)")
    parser.add_argument("--pool-type", default="process", help="worker type of new pools (process or docker)")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("PREFECT_API_URL is not set: point it at your Prefect server (e.g. http://127.0.0.1:4200/api)")
        return 2
    try:
        lines = asyncio.run(ensure_pools(args.gpu_concurrency, args.pool_type)) + ensure_blocks(args.config)
    except Exception as exc:
        print(f"set-up failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
