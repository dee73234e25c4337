"""``baseimage review`` (the quarterly review) and ``baseimage snapshot`` (the same review, live,
recorded for air-gapped sites)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from baseimage.cli.common import network_fallback, write_json
from baseimage.cli.options import (
    DEFAULT_OUT,
    EXIT_INCOMPLETE,
    EXIT_MIGRATE,
    EXIT_OK,
    Subparsers,
    add_command,
    add_config_and_mirrors,
    add_json,
    add_out,
    add_pytorch_index,
    add_sources,
)
from baseimage.printing import print_problem
from baseimage.settings import Settings, load_settings
from tasks.errors import BaseImageError
from tasks.progress import reporting


def add_parser(sub: Subparsers) -> None:
    p_rev = add_command(
        sub,
        "review",
        cmd_review,
        needs_api=True,
        help="the quarterly review: deprecation, new releases, compatibility, advisories, plan",
        description=(
            "Review every managed image (or the Dockerfiles given): NVIDIA support state, start-up "
            "banner, driver fit, PyTorch wheels, CuPy and ONNX Runtime, Ubuntu support, security "
            "advisories, and a migration plan. Exit 0: nothing to do; 10: migration recommended; "
            "3: the review could not complete for some image or source; 2: bad input."
        ),
    )
    p_rev.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="Dockerfiles or directories")
    add_config_and_mirrors(p_rev)
    add_sources(
        p_rev,
        help="auto: live, or the bundled snapshot (said loudly) when the network is "
        "unreachable; live: fail clearly instead; offline: replay --offline DIR",
        offline_help="snapshot made by `baseimage snapshot`",
    )
    add_pytorch_index(p_rev, help="PyTorch wheel index (default download.pytorch.org/whl)")
    p_rev.add_argument(
        "--osv-db",
        type=Path,
        metavar="DIR",
        help="directory of OSV JSON records (offline advisories)",
    )
    p_rev.add_argument("--fleet-min-driver", type=int, metavar="N", help="oldest driver branch on the GPU hosts")
    add_json(p_rev, help="print the report as JSON")
    add_out(p_rev, help="where the reports go (default reports/)")
    p_rev.add_argument("--no-banner", action="store_true", help="do not run images to look for the banner")
    p_rev.add_argument("--no-docs", action="store_true", help="leave docs/base-image-policy.md as it is")

    p_snap = add_command(
        sub,
        "snapshot",
        cmd_snapshot,
        needs_api=True,
        help="record every live response a review needs into DIR, for air-gapped sites",
        description="Run the review live and record each HTTP response (tokens redacted) into DIR; "
        "`baseimage review --offline DIR` replays it without a network.",
    )
    p_snap.add_argument("directory", type=Path, metavar="DIR")
    add_config_and_mirrors(p_snap)
    add_pytorch_index(p_snap)


def _run_review(
    args: argparse.Namespace,
    err: Console,
    settings: Settings,
    *,
    sources: str,
    offline: Path | None,
    record: Path | None,
) -> dict[str, Any]:
    import flows.quarterly_review as review_flow

    with Progress(
        TextColumn("[bold]researching bases"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        bar = progress.add_task("", total=None)

        def show(done: int, total: int, what: str) -> None:
            progress.update(bar, completed=done, total=total, description=what)

        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        # A review takes seconds: the heartbeat (crash detection for long runs) would add ~0.6 s
        # to it, joining its thread at exit (shared/reference/prefect-3-notes §1).
        with reporting(show), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            state = review_flow.quarterly_review(
                paths=[str(p) for p in args.paths] or None,
                config_path=str(args.config) if args.config else None,
                sources=sources,
                offline_dir=str(offline) if offline else None,
                mirrors=dict(args.mirror),
                pytorch_index=getattr(args, "pytorch_index", None),
                osv_db=str(args.osv_db) if getattr(args, "osv_db", None) else None,
                fleet_min_driver=getattr(args, "fleet_min_driver", None),
                out_dir=getattr(args, "out", DEFAULT_OUT),
                check_banner=not getattr(args, "no_banner", False),
                update_docs=not getattr(args, "no_docs", False),
                record_dir=str(record) if record else None,
                return_state=True,
            )
    if not state.is_completed():
        raise BaseImageError(f"the review flow failed: {state.message}")
    report: dict[str, Any] = state.result()
    return report


def cmd_review(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)
    sources, offline = network_fallback(settings, args.sources, args.offline, args.mirror, err)
    report = _run_review(args, err, settings, sources=sources, offline=offline, record=None)
    if args.json:
        keep = (
            "file",
            "current",
            "status",
            "eol",
            "deprecation_banner",
            "target",
            "reasons",
            "recommended",
            "image",
            "line",
            "action",
            "errors",
        )
        write_json(
            {
                "findings": report.get("findings", []),
                "conflicts": report.get("conflicts", []),
                "warnings": report.get("warnings", []),
                "images": [{k: i[k] for k in keep} for i in report["images"]],
                "matrix": report["matrix"],
                "advisories": report["advisories"],
                "recommended": report["recommended"],
                "sources": report["sources"],
                "files": report["files"],
            }
        )
    else:
        for finding in report.get("findings", []) + report.get("conflicts", []):
            print_problem(out, "finding", finding, style="bold yellow")
        for warning in report.get("warnings", []):
            print_problem(err, "warning", warning, style="yellow")
        table = Table(title=f"Quarterly review {report['date']}")
        for column in ("image", "current", "status", "target", "recommended", "why"):
            table.add_column(column, overflow="fold")
        for image in report["images"]:
            table.add_row(
                image["image"],
                str(image["current"]),
                image["status"],
                str(image["target"] or "-"),
                Text("yes", style="red") if image["recommended"] else "no",
                "; ".join((image["reasons"] + image["errors"])[:3]),
            )
        out.print(table)
        out.print(f"sources: {report['sources']}", highlight=False)
        out.print(f"reports: {', '.join(report['files'].values())}", highlight=False)
    if not report["complete"]:
        return EXIT_INCOMPLETE
    return EXIT_MIGRATE if report["recommended"] else EXIT_OK


def cmd_snapshot(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)
    args.paths = []
    args.out = str(args.directory / "reports")
    args.no_docs = True
    args.no_banner = True
    report = _run_review(args, err, settings, sources="live", offline=None, record=args.directory)
    out.print(f"snapshot written: {report.get('snapshot')}")
    return EXIT_OK if report["complete"] else EXIT_INCOMPLETE
