"""``baseimage deploy`` (one image to one environment, by hand) and ``baseimage rollback`` (an
environment back on its previous image)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from baseimage.cli.options import EXIT_FAILED, EXIT_OK, Subparsers, add_command, add_config
from baseimage.printing import print_problem
from baseimage.settings import load_settings
from tasks.errors import ConfigError
from tasks.images.reference import parse_reference


def _image(text: str) -> str:
    try:
        parse_reference(text)
    except Exception as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an image reference: {exc}") from exc
    return text


def add_parser(sub: Subparsers) -> None:
    p_dep = add_command(
        sub,
        "deploy",
        cmd_deploy,
        help="deploy an image to one environment through compose and wait for health",
        description=(
            "Bring ENV's compose project up on IMAGE, wait for its health URL and record what ran "
            "before in reports/deployments/ENV.json (so `baseimage rollback` can put it back). For a "
            "first deploy or a hand-made fix; migrations deploy through `baseimage migrate`."
        ),
    )
    p_dep.add_argument("--env", required=True, metavar="ENV", help="environment from the policy file")
    p_dep.add_argument("--image", required=True, type=_image, metavar="IMAGE", help="image reference to run")
    add_config(p_dep)
    p_dep.add_argument(
        "--break-glass",
        action="store_true",
        help="deploy to a protected environment (production) without a recorded approval: "
        "recorded with who and --reason, and an incident is opened",
    )
    p_dep.add_argument("--reason", default="", metavar="TEXT", help="why (required with --break-glass)")

    p_rb = add_command(
        sub,
        "rollback",
        cmd_rollback,
        needs_api=True,
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
    add_config(p_rb)
    p_rb.add_argument(
        "--break-glass",
        action="store_true",
        help="allow a --to image that never ran in the environment (needs --reason; recorded, opens an incident)",
    )


def cmd_deploy(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)
    from baseimage.wiring import target_of
    from tasks.deploy.ledger import Ledger
    from tasks.deploy.release import DeployError, deploy, docker_client

    target = target_of(settings, args.env)
    client = docker_client(target.env.docker_host)
    note = "cli"
    if settings.protected(args.env):
        note = _approved_or_break_glass(settings, args, client, out)
    try:
        record = deploy(client, target, args.image, Ledger(settings.state_dir, args.env), note=note)
    except DeployError as exc:
        print_problem(err, "deploy failed", f"{exc}\n{exc.logs[-3000:]}")
        previous = exc.record.previous if exc.record else None
        err.print(f"the previous image was {previous.describe() if previous else '-'}", highlight=False)
        err.print(f"put it back with: baseimage rollback --env {args.env}", highlight=False)
        return EXIT_FAILED
    out.print(
        f"{args.env} runs {record.image.describe()} (health ok); was "
        f"{record.previous.describe() if record.previous else 'nothing'}",
        highlight=False,
    )
    return EXIT_OK


def _approved_or_break_glass(settings: Any, args: argparse.Namespace, client: Any, out: Console) -> str:
    """The approval `args.image` has for the protected environment, or a recorded break-glass
    (with an incident); ApprovalRequiredError otherwise, before anything changes."""
    from baseimage.wiring import github_client, redactor
    from tasks.deploy.approvals import BREAK_GLASS, ApprovalRecord, ApprovalRequiredError, Approvals, who
    from tasks.deploy.incident import open_incident
    from tasks.deploy.release import image_record

    approvals = Approvals(settings.state_dir, args.env)
    image = image_record(client, args.image)
    found = approvals.find(image)
    if found is not None:
        return f"approved by {found.reviewer} ({found.kind}, run {found.run or '-'})"
    if not args.break_glass:
        raise ApprovalRequiredError(
            f"{args.env} is protected: {args.image} has no recorded approval in {approvals.path}; release it "
            "through `baseimage migrate` (its production approval records it), roll back with "
            f"`baseimage rollback --env {args.env}`, or, in an emergency, add --break-glass --reason TEXT"
        )
    if not args.reason.strip():
        raise ConfigError("--break-glass needs --reason TEXT: why this image goes to production without an approval")
    person = who()
    approvals.record(ApprovalRecord(args.env, args.image, image.image_id, person, BREAK_GLASS, args.reason))
    incident_id = f"break-glass-{args.env}-{image.image_id[7:19] if image.image_id else 'image'}"
    body = redactor(settings).redact(
        f"## Break-glass deploy\n\n- environment: {args.env}\n- image: `{args.image}` ({image.image_id})\n"
        f"- by: {person}\n- reason: {args.reason}\n\nNo recorded approval existed for this image; review what "
        "changed and release it through `baseimage migrate` afterwards.\n"
    )
    where = open_incident(
        settings.state_dir,
        incident_id,
        f"baseimage break-glass deploy to {args.env}: {args.image}",
        body,
        github_client(settings),
        labels=("baseimage", "break-glass"),
    )
    out.print(f"break-glass recorded for {args.env} by {person}; incident: {where}", highlight=False)
    return f"break-glass by {person}: {args.reason}"


def cmd_rollback(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)  # fail fast, before Prefect starts
    if args.to and len(args.env) != 1:
        raise ConfigError("--to IMAGE applies to one environment: name exactly one --env")
    from flows.rollback import check_rollback_target, rollback

    if args.to and not args.break_glass:  # refused before anything runs (the flow checks again)
        check_rollback_target(settings, args.env[0], args.to, False, args.reason)

    state = rollback(
        environments=args.env,
        reason=args.reason,
        to=args.to,
        config_path=str(args.config) if args.config else None,
        rollback_id=args.rollback_id,
        break_glass=args.break_glass,
        return_state=True,
    )
    if not state.is_completed():
        print_problem(err, "rollback failed", str(state.message))
        return EXIT_FAILED
    result = state.result()
    for row in result["environments"]:
        out.print(f"{row['environment']}: {row['action']} -> {row.get('to')} (health {row.get('health')})")
    out.print(f"code: {result['code']['action']}", highlight=False)
    out.print(f"incident: {result['incident']}", highlight=False)
    return EXIT_OK
