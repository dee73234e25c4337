"""Subcommands for running environments: ``deploy``, ``rollback`` and ``retain``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

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
    _break_glass(p_dep)
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
    p_rb.add_argument(
        "--break-glass",
        action="store_true",
        help="allow a --to image that never ran in the environment (needs --reason; recorded, opens an incident)",
    )
    p_rb.set_defaults(handler=cmd_rollback)
    add_retain_parser(sub)


def _break_glass(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--break-glass",
        action="store_true",
        help="deploy to a protected environment (production) without a recorded approval: "
        "recorded with who and --reason, and an incident is opened",
    )
    p.add_argument("--reason", default="", metavar="TEXT", help="why (required with --break-glass)")


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
        return 1
    out.print(
        f"{args.env} runs {record.image.describe()} (health ok); was "
        f"{record.previous.describe() if record.previous else 'nothing'}",
        highlight=False,
    )
    return 0


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
        return 1
    result = state.result()
    for row in result["environments"]:
        out.print(f"{row['environment']}: {row['action']} -> {row.get('to')} (health {row.get('health')})")
    out.print(f"code: {result['code']['action']}", highlight=False)
    out.print(f"incident: {result['incident']}", highlight=False)
    return 0


def add_docs_parser(sub: Any) -> None:
    p_docs = sub.add_parser(
        "docs",
        help="check the policy document: which sections baseimage keeps current, and what it would change",
        description=(
            "`baseimage docs check` reads docs/base-image-policy.md, says which of its sections baseimage found "
            "(Current Configuration, Version Compatibility Matrix, Changelog, Review Findings; by heading or by "
            "markers) and what to add for the missing ones, and prints the diff that bringing Current "
            "Configuration and the matrix in line with the managed Dockerfile and requirements would make. Exit "
            "0: in line; 1: it would change; 2: bad input."
        ),
    )
    p_docs.add_argument("action", choices=["check"])
    p_docs.add_argument("--config", type=Path, metavar="FILE", help="policy file")
    p_docs.set_defaults(handler=cmd_docs)


def cmd_docs(args: argparse.Namespace, out: Console, err: Console) -> int:
    from tasks.dockerfile.parser import read_dockerfile
    from tasks.update.apply import _pins, _variant, unified_diff
    from tasks.update.plan import POLICY_DOC
    from tasks.update.policy_doc import SUGGESTION, Moved, sections, sync_doc

    settings = load_settings(args.config)
    path = settings.root / POLICY_DOC
    if not path.is_file():
        raise ConfigError(
            f"{path}: no policy document; copy the policy template there (see README: The policy document)"
        )
    text = path.read_text(encoding="utf-8")
    found = sections(text)
    for kind in ("configuration", "matrix", "changelog", "findings"):
        if kind in found:
            how = "between markers" if found[kind].marked else "by its heading"
            out.print(f"found    {kind} ({how})", highlight=False)
        else:
            print_problem(out, "missing", f"{kind}: add {SUGGESTION[kind]}", style="yellow")
    image = settings.images[0]
    bases = [b for b in read_dockerfile(settings.path(image.dockerfile), image.build_args).bases if b.reference]
    if not bases:
        raise ConfigError(f"{image.dockerfile}: no FROM names an image to describe")
    current = str(bases[-1].reference)
    requirements = settings.path(image.requirements).read_text(encoding="utf-8") if image.requirements else None
    pins, variant = _pins(requirements), _variant(requirements)
    update = sync_doc(text, str(path), [Moved(current, current, pins, pins, variant, variant, str(image.dockerfile))])
    for warning in update.warnings:
        print_problem(out, "warning", warning, style="yellow")
    if update.text == text:
        out.print(f"{POLICY_DOC} is in line with {image.dockerfile}", highlight=False)
        return 0
    out.print(unified_diff({POLICY_DOC: (text, update.text)}), highlight=False, soft_wrap=True)
    return 1


def add_annual_parser(sub: Any, common: Any) -> None:
    """`common` adds the --config and --mirror options the review commands share."""
    p_ann = sub.add_parser(
        "annual",
        help="the annual update: Ubuntu LTS, CUDA path, NGC or plain CUDA, Python, platforms",
        description=(
            "Run the annual-update flow here (Prefect's ephemeral API unless PREFECT_API_URL is set). Writes "
            "reports/annual-<year>.md and .json; when an upgrade is due the JSON is a plan for "
            "`baseimage migrate --report`. Exit 0: nothing due; 10: upgrade due; 2: bad input. "
            "--sources auto uses the bundled snapshot (said loudly) when the network is unreachable."
        ),
    )
    common(p_ann)
    p_ann.add_argument("--sources", choices=["auto", "live", "offline"], default="auto")
    p_ann.add_argument("--offline", type=Path, metavar="DIR", help="replay this snapshot (implies offline)")
    p_ann.add_argument("--pytorch-index", metavar="URL", help="PyTorch wheel index")
    p_ann.add_argument("--out", default="reports", help="where the report goes")
    p_ann.add_argument("--json", action="store_true", help="print the report as JSON")
    p_ann.set_defaults(handler=cmd_annual)


def cmd_annual(args: argparse.Namespace, out: Console, err: Console) -> int:
    import json

    from baseimage.cli import EXIT_MIGRATE, network_fallback

    settings = load_settings(args.config)
    sources, offline = network_fallback(settings, args.sources, args.offline, args.mirror, err)
    from flows.annual_update import annual_update

    state = annual_update(
        config_path=str(args.config) if args.config else None,
        sources=sources,
        offline_dir=str(offline) if offline else None,
        mirrors=dict(args.mirror),
        pytorch_index=args.pytorch_index,
        out_dir=args.out,
        return_state=True,
    )
    if not state.is_completed():
        print_problem(err, "annual update failed", str(state.message))
        return 1
    report = state.result()
    if args.json:
        out.print(json.dumps(report, default=str), highlight=False, soft_wrap=True)
    else:
        out.print(report["outcome"], highlight=False)
        out.print(f"report: {report['files']['markdown']}", highlight=False)
    return EXIT_MIGRATE if report["recommended"] else 0


def add_server_parsers(sub: Any) -> None:
    p_srv_local = sub.add_parser(
        "server",
        help="the local Prefect server the commands use (start, stop, status)",
        description=(
            "Commands that run flows use PREFECT_API_URL when it is set; otherwise a persistent local Prefect "
            "server (loopback only, telemetry off, state in $PREFECT_HOME), started in the background by the "
            "first command that needs it, so later commands connect at once and `baseimage history` and "
            "`baseimage approve` work without setting a server up. BASEIMAGE_SERVER=off uses a temporary "
            "server per command instead."
        ),
    )
    p_srv_local.add_argument("action", choices=["start", "stop", "status"])
    p_srv_local.add_argument("--port", type=int, default=4200, help="preferred port (default 4200; a free one else)")
    p_srv_local.set_defaults(handler=cmd_server)

    p_hist = sub.add_parser(
        "history",
        help="past runs of every flow: start, duration, state, outcome, link",
        description="Read the runs from the Prefect API (PREFECT_API_URL), newest first.",
    )
    p_hist.add_argument("--flow", metavar="NAME", help="only this flow (e.g. migrate, quarterly-review)")
    p_hist.add_argument("--since", metavar="WHEN", help="7d, 12h, 2w or a date (2026-11-01)")
    p_hist.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs (default 50)")
    p_hist.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p_hist.add_argument(
        "--waiting", action="store_true", help="only the approvals waiting for a decision, with how to give it"
    )
    p_hist.set_defaults(handler=cmd_history)

    p_srv = sub.add_parser(
        "serve",
        help="serve every deployment of prefect.yaml, with its schedule, from this process",
        description=(
            "For a small site: one long-running process runs the scheduled quarterly review, annual "
            "update and deprecation watch and any ad hoc run (migrate, validate, rollback, ...) started "
            "from the UI; no work pool or worker needed. SIGTERM stops it (and pauses the schedules)."
        ),
    )
    p_srv.add_argument("--timezone", metavar="TZ", help="time zone of every schedule (default: prefect.yaml's)")
    p_srv.add_argument("--limit", type=int, metavar="N", help="runs at once (default: no limit)")
    p_srv.add_argument("--list", action="store_true", help="print what would be served and exit")
    p_srv.set_defaults(handler=cmd_serve)


def cmd_server(args: argparse.Namespace, out: Console, err: Console) -> int:
    from baseimage import local_server

    if args.action == "start":
        server, started = local_server.start(args.port)
        out.print(f"{'started' if started else 'already running'}: {server.ui_url} (API {server.api_url})")
        return 0
    if args.action == "stop":
        stopped = local_server.stop()
        out.print(f"stopped the local Prefect server on port {stopped.port}" if stopped else "no local server running")
        return 0
    found = local_server.running()
    if found:
        out.print(f"running: {found.ui_url} (API {found.api_url}, pid {found.pid})")
        return 0
    out.print("not running (the next command that needs an API starts it)")
    return 3


def cmd_history(args: argparse.Namespace, out: Console, err: Console) -> int:
    import asyncio
    import json

    from prefect.settings import get_current_settings
    from rich.table import Table

    from baseimage.history import fetch, parse_since

    if not get_current_settings().api.url:
        raise ConfigError(
            "history needs a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api); "
            "runs on the ephemeral API of a single command are not kept"
        )
    since = parse_since(args.since) if args.since else None
    rows = asyncio.run(fetch(args.flow, since, args.limit, waiting=args.waiting))
    if args.json:
        for row in rows:
            out.print(json.dumps(row.to_json()), highlight=False, soft_wrap=True)
        return 0
    table = Table(title=f"Flow runs ({len(rows)})")
    for column in ("flow", "run", "start", "duration", "state", "outcome", "link"):
        table.add_column(column, overflow="fold")
    for row in rows:
        duration = f"{row.duration_s:.0f} s" if row.duration_s is not None else ""
        table.add_row(row.flow, row.name, row.start or "", duration, row.state, row.outcome, row.link)
    out.print(table)
    return 0


def cmd_serve(args: argparse.Namespace, out: Console, err: Console) -> int:
    from baseimage.serve import read_specs, serve_all

    specs = read_specs(timezone=args.timezone)
    for spec in specs:
        when = ", ".join(f"{cron} ({tz})" for cron, tz in spec.crons) or "ad hoc"
        out.print(f"{spec.name:<20} {spec.entrypoint:<45} {when}", highlight=False)
    if args.list:
        return 0
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        print_problem(
            err,
            "no PREFECT_API_URL",
            "serving on a temporary API; its runs, schedules and paused approvals are gone when this process "
            "stops. Point PREFECT_API_URL at a server to keep them.",
            style="bold yellow",
        )
    serve_all(specs, args.limit)
    return 0


def add_retain_parser(sub: Any) -> None:
    p_ret = sub.add_parser(
        "retain",
        help="what is kept in registries.retain_to for rollbacks and rebuilds",
        description=(
            "Every base a release was built from and every released image are copied by digest to "
            "registries.retain_to before staging (and the current bases daily, by the `retain` deployment); "
            "the record is reports/deployments/retained.json."
        ),
    )
    actions = p_ret.add_subparsers(dest="retain_action", metavar="ACTION", required=True)
    p_list = actions.add_parser("list", help="every image kept: source, digest, role, the copy to pull")
    p_list.add_argument("--config", type=Path, metavar="FILE", help="policy file")
    p_list.add_argument("--json", action="store_true", help="one JSON object per line")
    p_list.set_defaults(handler=cmd_retain_list)


def cmd_retain_list(args: argparse.Namespace, out: Console, err: Console) -> int:
    import json
    from dataclasses import asdict

    from rich.table import Table
    from rich.text import Text

    from tasks.deploy.ledger import RetainLog

    settings = load_settings(args.config)
    log = RetainLog(settings.state_dir)
    try:
        entries = log.entries()
    except (OSError, ValueError, TypeError) as exc:
        print_problem(err, "cannot read the retain log", f"{log.path}: {exc}")
        return 2
    if args.json:
        for entry in entries:
            out.print(json.dumps(asdict(entry)), highlight=False, soft_wrap=True, markup=False)
        return 0
    if not entries:
        where = settings.registries.retain_to
        out.print(
            f"nothing kept yet ({log.path} is empty); "
            + (f"copies go to {where}" if where else "set registries.retain_to to keep images"),
            highlight=False,
            markup=False,
        )
        return 0
    table = Table(title=f"Kept in {settings.registries.retain_to or 'the retain registry'} ({len(entries)})")
    for column in ("source", "role", "release", "digest", "copy", "at"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(*(Text(v) for v in (e.source, e.role, e.release or "", e.digest[:19], e.copy, e.at)))
    out.print(table, markup=False)
    return 0
