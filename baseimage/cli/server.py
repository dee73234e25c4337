"""The Prefect side of the command line: ``baseimage server`` (the local server), ``baseimage
history`` (past runs) and ``baseimage serve`` (every deployment from this process)."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.table import Table

from baseimage.cli.options import EXIT_NOT_RUNNING, EXIT_OK, Subparsers, add_command, add_json
from baseimage.printing import print_problem
from tasks.errors import ConfigError


def add_parser(sub: Subparsers) -> None:
    p_srv_local = add_command(
        sub,
        "server",
        cmd_server,
        help="the local Prefect server the commands use, and the warm process beside it (start, stop, status)",
        description=(
            "Commands that run flows use PREFECT_API_URL when it is set; otherwise a persistent local Prefect "
            "server (loopback only, telemetry off, state in $PREFECT_HOME), started in the background by the "
            "first command that needs it, so later commands connect at once and `baseimage history` and "
            "`baseimage approve` work without setting a server up. BASEIMAGE_SERVER=off uses a temporary "
            "server per command instead. Beside it runs a warm process that has imported Prefect and the "
            "product, so that a command starts at once (BASEIMAGE_WARM=off: each command in its own process)."
        ),
    )
    p_srv_local.add_argument("action", choices=["start", "stop", "status"])
    p_srv_local.add_argument("--port", type=int, default=4200, help="preferred port (default 4200; a free one else)")

    p_hist = add_command(
        sub,
        "history",
        cmd_history,
        needs_api=True,
        help="past runs of every flow: start, duration, state, outcome, link",
        description="Read the runs from the Prefect API (PREFECT_API_URL), newest first.",
    )
    p_hist.add_argument("--flow", metavar="NAME", help="only this flow (e.g. migrate, quarterly-review)")
    p_hist.add_argument("--since", metavar="WHEN", help="7d, 12h, 2w or a date (2026-11-01)")
    p_hist.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs (default 50)")
    add_json(p_hist, help="JSON lines instead of a table")
    p_hist.add_argument(
        "--waiting", action="store_true", help="only the approvals waiting for a decision, with how to give it"
    )

    p_srv = add_command(
        sub,
        "serve",
        cmd_serve,
        needs_api=True,
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


def cmd_server(args: argparse.Namespace, out: Console, err: Console) -> int:
    from baseimage import local_server, warm

    if args.action == "start":
        server, started = local_server.start(args.port)
        out.print(f"{'started' if started else 'already running'}: {server.ui_url} (API {server.api_url})")
        if warm.enabled():
            spawned = warm.spawn()
            ready = warm.wait_ready(spawned)
            if ready:
                out.print(f"warm process {'started' if spawned else 'running'} (pid {ready.pid})")
            else:
                print_problem(
                    err,
                    "warm process",
                    f"did not start; commands run in their own process. Its log is {warm.prefect_home() / warm.LOG}",
                    style="bold yellow",
                )
        return EXIT_OK
    if args.action == "stop":
        for gone in warm.stop():
            if gone.exited:
                out.print(f"stopped the warm process (pid {gone.process.pid})")
            else:
                out.print(f"asked the warm process to stop (pid {gone.process.pid}): it ends when its commands have")
        stopped = local_server.stop()
        out.print(f"stopped the local Prefect server on port {stopped.port}" if stopped else "no local server running")
        return EXIT_OK
    found = local_server.running()
    ready = warm.running()
    if found:
        out.print(f"running: {found.ui_url} (API {found.api_url}, pid {found.pid})")
        if ready:
            out.print(f"warm process: pid {ready.pid}, socket {ready.socket}")
        return EXIT_OK
    out.print("not running (the next command that needs an API starts it)")
    return EXIT_NOT_RUNNING


def cmd_history(args: argparse.Namespace, out: Console, err: Console) -> int:
    from prefect.settings import get_current_settings

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
        return EXIT_OK
    table = Table(title=f"Flow runs ({len(rows)})")
    for column in ("flow", "run", "start", "duration", "state", "outcome", "link"):
        table.add_column(column, overflow="fold")
    for row in rows:
        duration = f"{row.duration_s:.0f} s" if row.duration_s is not None else ""
        table.add_row(row.flow, row.name, row.start or "", duration, row.state, row.outcome, row.link)
    out.print(table)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: Console, err: Console) -> int:
    from baseimage.serve import read_specs, serve_all

    specs = read_specs(timezone=args.timezone)
    for spec in specs:
        when = ", ".join(f"{cron} ({tz})" for cron, tz in spec.crons) or "ad hoc"
        out.print(f"{spec.name:<20} {spec.entrypoint:<45} {when}", highlight=False)
    if args.list:
        return EXIT_OK
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
    return EXIT_OK
