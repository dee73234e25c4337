"""``baseimage retain list``: what is kept in registries.retain_to for rollbacks and rebuilds."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from baseimage.cli.options import EXIT_ERROR, EXIT_OK, Subparsers, add_command, add_config, add_json
from baseimage.printing import print_problem
from baseimage.settings import load_settings


def add_parser(sub: Subparsers) -> None:
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
    p_list = add_command(
        actions, "list", cmd_retain_list, help="every image kept: source, digest, role, the copy to pull"
    )
    add_config(p_list)
    add_json(p_list, help="one JSON object per line")


def cmd_retain_list(args: argparse.Namespace, out: Console, err: Console) -> int:
    from tasks.deploy.ledger import RetainLog

    settings = load_settings(args.config)
    log = RetainLog(settings.state_dir)
    try:
        entries = log.entries()
    except (OSError, ValueError, TypeError) as exc:
        print_problem(err, "cannot read the retain log", f"{log.path}: {exc}")
        return EXIT_ERROR
    if args.json:
        for entry in entries:
            out.print(json.dumps(asdict(entry)), highlight=False, soft_wrap=True, markup=False)
        return EXIT_OK
    if not entries:
        where = settings.registries.retain_to
        out.print(
            f"nothing kept yet ({log.path} is empty); "
            + (f"copies go to {where}" if where else "set registries.retain_to to keep images"),
            highlight=False,
            markup=False,
        )
        return EXIT_OK
    table = Table(title=f"Kept in {settings.registries.retain_to or 'the retain registry'} ({len(entries)})")
    for column in ("source", "role", "release", "digest", "copy", "at"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(*(Text(v) for v in (e.source, e.role, e.release or "", e.digest[:19], e.copy, e.at)))
    out.print(table, markup=False)
    return EXIT_OK
