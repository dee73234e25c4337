"""Subcommands for running environments: ``deploy`` and ``rollback``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from baseimage.settings import load_settings
from tasks.errors import ConfigError
from tasks.images.reference import parse_reference


def _image(text: str) -> str:
    try:
        parse_reference(text)
    except Exception as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an image reference: {exc}") from exc
    return text


def add_parsers(sub: Any) -> None:
    p_dep = sub.add_parser(
        "deploy",
        help="deploy an image to one environment through compose and wait for health",
        description=(
            "Bring ENV's compose project up on IMAGE, wait for its health URL and record what ran "
            "before in reports/deployments/ENV.json (so `baseimage rollback` can put it back). For a "
            "first deploy or a hand-made fix; migrations deploy through `baseimage migrate`."
        ),
    )
    p_dep.add_argument("--env", required=True, metavar="ENV", help="environment from the policy file")
    p_dep.add_argument("--image", required=True, type=_image, metavar="IMAGE", help="image reference to run")
    p_dep.add_argument("--config", type=Path, metavar="FILE", help="policy file")
    p_dep.set_defaults(handler=cmd_deploy)

    p_rb = sub.add_parser(
        "rollback",
        help="put an environment back on its previous image (or --to IMAGE)",
        description=(
            "Keep the service logs as evidence, put the previous image back through compose and check "
            "health, revert the migration commit on a branch when it was merged, and open a tracker issue "
            "(GitHub when configured, else reports/incidents/). Running it again changes nothing more."
        ),
    )
    p_rb.add_argument("--env", required=True, action="append", metavar="ENV", help="environment (repeatable)")
    p_rb.add_argument("--to", type=_image, metavar="IMAGE", help="this image instead of the recorded previous one")
    p_rb.add_argument("--reason", default="ad hoc rollback", metavar="TEXT", help="why (goes into the incident)")
    p_rb.add_argument("--id", dest="rollback_id", metavar="ID", help="rollback id (re-running one is a no-op)")
    p_rb.add_argument("--config", type=Path, metavar="FILE", help="policy file")
    p_rb.set_defaults(handler=cmd_rollback)


def cmd_deploy(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)
    from flows.rollback import target_of
    from tasks.deploy.ledger import Ledger
    from tasks.deploy.release import DeployError, deploy, docker_client

    target = target_of(settings, args.env)
    try:
        record = deploy(
            docker_client(target.env.docker_host), target, args.image, Ledger(settings.state_dir, args.env), note="cli"
        )
    except DeployError as exc:
        err.print(f"[red]deploy failed:[/] {exc}\n{exc.logs[-3000:]}", highlight=False)
        previous = exc.record.previous if exc.record else None
        err.print(f"the previous image was {previous.describe() if previous else '-'}", highlight=False)
        err.print(f"put it back with: baseimage rollback --env {args.env}", highlight=False)
        return 1
    out.print(
        f"{args.env} runs {record.image.describe()} (health ok); was "
        f"{record.previous.describe() if record.previous else 'nothing'}",
        highlight=False,
    )
    return 0


def cmd_rollback(args: argparse.Namespace, out: Console, err: Console) -> int:
    load_settings(args.config)  # fail fast, before Prefect starts
    if args.to and len(args.env) != 1:
        raise ConfigError("--to IMAGE applies to one environment: name exactly one --env")
    from flows.rollback import rollback

    state = rollback(
        environments=args.env,
        reason=args.reason,
        to=args.to,
        config_path=str(args.config) if args.config else None,
        rollback_id=args.rollback_id,
        return_state=True,
    )
    if not state.is_completed():
        err.print(f"[red]rollback failed:[/] {state.message}", highlight=False)
        return 1
    result = state.result()
    for row in result["environments"]:
        out.print(f"{row['environment']}: {row['action']} -> {row.get('to')} (health {row.get('health')})")
    out.print(f"code: {result['code']['action']}", highlight=False)
    out.print(f"incident: {result['incident']}", highlight=False)
    return 0
