"""``baseimage annual``: the annual update (Ubuntu LTS, CUDA path, NGC or plain CUDA, Python,
platforms); its JSON report is a plan for ``baseimage migrate --report``."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from baseimage.cli.common import network_fallback
from baseimage.cli.options import (
    EXIT_FAILED,
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
from baseimage.settings import load_settings


def add_parser(sub: Subparsers) -> None:
    p_ann = add_command(
        sub,
        "annual",
        cmd_annual,
        needs_api=True,
        help="the annual update: Ubuntu LTS, CUDA path, NGC or plain CUDA, Python, platforms",
        description=(
            "Run the annual-update flow here (Prefect's ephemeral API unless PREFECT_API_URL is set). Writes "
            "reports/annual-<year>.md and .json; when an upgrade is due the JSON is a plan for "
            "`baseimage migrate --report`. Exit 0: nothing due; 10: upgrade due; 3: a lookup failed (before 10: what "
            "was not seen may be due too); 2: bad input. "
            "--sources auto uses the bundled snapshot (said loudly) when the network is unreachable."
        ),
    )
    add_config_and_mirrors(p_ann)
    add_sources(p_ann, help=None, offline_help="replay this snapshot (implies offline)")
    add_pytorch_index(p_ann)
    add_out(p_ann, help="where the report goes")
    add_json(p_ann, help="print the report as JSON")


def cmd_annual(args: argparse.Namespace, out: Console, err: Console) -> int:
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
        return EXIT_FAILED
    report = state.result()
    if args.json:
        out.print(json.dumps(report, default=str), highlight=False, soft_wrap=True)
    else:
        out.print(report["outcome"], highlight=False)
        out.print(f"report: {report['files']['markdown']}", highlight=False)
    if not report["complete"]:
        return EXIT_INCOMPLETE
    return EXIT_MIGRATE if report["recommended"] else EXIT_OK
