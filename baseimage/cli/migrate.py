"""``baseimage migrate`` (a base-image migration, from plan to production) and ``baseimage approve``
(the decision a paused migration waits for)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from baseimage.cli.options import EXIT_FAILED, EXIT_OK, Subparsers, add_command, add_config, add_out
from baseimage.printing import print_problem
from baseimage.settings import Settings, load_settings
from tasks.errors import ConfigError


def add_parser(sub: Subparsers) -> None:
    p_mig = add_command(
        sub,
        "migrate",
        cmd_migrate,
        needs_api=True,
        preflight=preflight_migrate,
        help="run a base-image migration: branch, PR, approvals, validation, staging, soak, production",
        description=(
            "Plan (from a fresh review, a saved review or annual report, or --to VERSION), apply the plan on "
            "branch baseimage/cuda-<target> with one commit, open a PR where GitHub is configured, pause for "
            "approval, validate, deploy staging and soak it, pause for the production approval (with the soak "
            "report), deploy production, write the release notes and merge. Any failure after the update rolls "
            "back. Resume with `baseimage approve` or the Prefect UI. --dry-run prints the diff and changes "
            "nothing. Exit 0 when the release reached production (or nothing was due), 1 otherwise."
        ),
    )
    p_mig.add_argument("--to", metavar="VERSION", help="target CUDA version for every nvidia/cuda image, e.g. 12.9.1")
    p_mig.add_argument("--report", type=Path, metavar="FILE", help="use this review report's plan")
    p_mig.add_argument("--dry-run", action="store_true", help="print the unified diff; change nothing")
    p_mig.add_argument("--no-pr", action="store_true", help="keep the branch local")
    add_config(p_mig)
    p_mig.add_argument(
        "--validation",
        choices=["auto", "deployment", "subflow", "skip"],
        default="auto",
        help="auto: the validate deployment when PREFECT_API_URL is set, else a subflow",
    )
    add_out(p_mig, help="where the outcome JSON goes")
    p_mig.add_argument(
        "--poll-interval",
        type=int,
        default=10,
        metavar="S",
        help="how often a paused run checks for a decision (default 10 s)",
    )

    p_app = add_command(
        sub,
        "approve",
        cmd_approve,
        needs_api=True,
        help="approve (or reject) a paused migration from the command line",
        description="Resume a paused migration run, or its paused approval step, with a decision. Needs "
        "PREFECT_API_URL pointing at the server the migration runs on.",
    )
    p_app.add_argument("run_id", metavar="RUN_ID", help="the migrate run or its paused approval run")
    p_app.add_argument("--reject", action="store_true", help="reject instead of approving")
    p_app.add_argument("--comment", default="", metavar="TEXT")
    p_app.add_argument(
        "--reviewer", required=True, metavar="NAME", help="who decides (required: the approval records it)"
    )


def _approvals_needed(settings: Settings, dry_run: bool) -> list[str]:
    if dry_run:
        return []
    stages: list[str] = [s for s in settings.approvals.required_for if s == "update"]
    if {"staging", "production"} <= set(settings.environments):
        stages.append("production")
    return stages


def preflight_migrate(args: argparse.Namespace) -> None:
    """What can be checked before a Prefect API is started: the policy file, every managed
    Dockerfile and requirements file it names, --to's form and --report's file."""
    settings = args.settings = load_settings(args.config)  # cmd_migrate reads it from here
    for image in settings.images:
        for key, rel in (
            ("dockerfile", image.dockerfile),
            ("requirements", image.requirements),
            ("pyproject", image.pyproject),
        ):
            if rel is not None and not settings.path(rel).is_file():
                raise ConfigError(
                    f"{settings.source}: images[{image.name}].{key} {rel} does not exist "
                    f"({settings.path(rel)}); fix the path or remove the key"
                )
    if args.to is not None:
        from tasks.update.plans import parse_version

        parse_version(args.to)
    if args.report is not None:  # a file that is not a report is a message before any flow starts
        from tasks.research.report_model import ReviewReport

        ReviewReport.read(args.report)


def cmd_migrate(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings: Settings = args.settings  # loaded and checked in preflight_migrate, before Prefect started
    from prefect.settings import get_current_settings

    from flows.migrate import migrate
    from tasks.update.outcome import Result

    terminal = False
    stages = _approvals_needed(settings, args.dry_run)
    if stages and not get_current_settings().api.url:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise ConfigError(
                f"this migration needs the {' and '.join(stages)} approval{'s' if len(stages) > 1 else ''}, and "
                "on Prefect's temporary API (no PREFECT_API_URL) nobody else can give them: set PREFECT_API_URL to "
                "a Prefect server (`prefect server start`, or `baseimage serve` on a small site; see "
                "docs/operator-guide.md), or run it from a terminal to approve there"
            )
        terminal = True
        print_problem(err, "no Prefect server", "approvals are asked on this terminal", style="yellow")

    state = migrate(
        to=args.to,
        dry_run=args.dry_run,
        no_pr=args.no_pr,
        config_path=str(args.config) if args.config else None,
        report_path=str(args.report) if args.report else None,
        validation=args.validation,
        out_dir=args.out,
        poll_interval_s=args.poll_interval,
        terminal_approvals=terminal,
        return_state=True,
    )
    outcome = state.result(raise_on_failure=False)
    if not isinstance(outcome, dict) or "result" not in outcome:
        print_problem(err, "migration failed", str(state.message))
        return EXIT_FAILED
    for warning in outcome.get("warnings") or ():
        print_problem(err, "warning", str(warning), style="yellow")
    branch = f" (branch {outcome['branch']})" if outcome.get("branch") else ""
    out.print(f"{outcome['outcome']}{branch}", highlight=False)
    if outcome.get("validation"):
        out.print(outcome["validation"]["summary"], highlight=False)
    out.print(f"run state: {state.name}; outcome: {outcome.get('report')}", highlight=False)
    return EXIT_OK if state.is_completed() and Result(outcome["result"]).succeeded else EXIT_FAILED


def cmd_approve(args: argparse.Namespace, out: Console, err: Console) -> int:
    import asyncio

    from flows.approvals import resume

    resumed = asyncio.run(resume(args.run_id, not args.reject, args.reviewer, args.comment))
    out.print(f"{'rejected' if args.reject else 'approved'} {resumed} as {args.reviewer}", highlight=False)
    return EXIT_OK
