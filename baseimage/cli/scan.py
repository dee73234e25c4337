"""``baseimage scan``: every FROM of the managed Dockerfiles, and what the registry says of it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from baseimage.cli.common import write_json
from baseimage.cli.options import EXIT_INCOMPLETE, EXIT_OK, Subparsers, add_command, add_config_and_mirrors, add_json
from baseimage.printing import print_problem
from baseimage.settings import Settings, load_settings
from tasks.registry.session import RegistrySession
from tasks.scan import FAILED_STATUSES, ScanRow, ScanTarget, discover, scan
from tasks.statuses import LookupStatus


def add_parser(sub: Subparsers) -> None:
    p_scan = add_command(
        sub,
        "scan",
        cmd_scan,
        help="list every base image in the managed Dockerfiles and what the registry says",
        description=(
            "List every FROM of the managed Dockerfiles (or of the Dockerfiles and directories "
            "given) with file:line, the parsed CUDA/NGC tag and, where a registry or mirror is "
            "reachable, digest, CUDA_VERSION, end-of-life flag and platforms."
        ),
    )
    p_scan.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="Dockerfiles or directories (default: the images in the config)",
    )
    add_config_and_mirrors(p_scan)
    add_json(p_scan, help="print one JSON object per FROM, as a list")
    p_scan.add_argument("--no-registry", action="store_true", help="parse only; ask no registry")


def registry_session(settings: Settings, mirrors: Sequence[tuple[str, str]] = ()) -> RegistrySession:
    """A session from the config, with command-line mirrors taking precedence."""
    from baseimage import wiring

    return wiring.registry_session(settings, mirrors=dict(mirrors))


def _targets(settings: Settings, paths: Sequence[Path]) -> list[ScanTarget]:
    if paths:
        return [ScanTarget(p, str(p)) for p in discover(paths)]
    targets = []
    for image in settings.images:
        path = settings.path(image.dockerfile)
        label = str(image.dockerfile) if not image.dockerfile.is_absolute() else str(path)
        targets.append(ScanTarget(path, label, image.build_args))
    return targets


def cmd_scan(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)
    targets = _targets(settings, args.paths)
    session = None if args.no_registry else registry_session(settings, args.mirror)
    with Progress(
        TextColumn("[bold]registry lookups"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=args.json or not err.is_terminal,
    ) as progress:
        task = progress.add_task("lookups", total=None)

        def advance(_ref: object, _lookup: object) -> None:
            progress.advance(task)

        rows = scan(targets, session, on_lookup=advance)
    if args.json:
        write_json([row.to_json() for row in rows])
    else:
        out.print(render_table(rows))
    return _scan_verdict(rows, session, err)


def _scan_verdict(rows: Sequence[ScanRow], session: RegistrySession | None, err: Console) -> int:
    """Say which lookups failed and why; EXIT_INCOMPLETE when any did ("not found" is a finding)."""
    failed = {r.reference: r.lookup for r in rows if r.reference and r.lookup.status in FAILED_STATUSES}
    unreachable = sorted({ref.registry for ref, found in failed.items() if found.status == LookupStatus.UNREACHABLE})
    for registry in unreachable:
        mirror = session.mirror(registry) if session else None
        if mirror:
            print_problem(
                err,
                "warning",
                f"mirror {mirror} for {registry} was unreachable: showing parsed references only; "
                f"check that it is up, or change it (registries.mirrors or --mirror {registry}=URL)",
                style="yellow",
            )
        else:
            print_problem(
                err,
                "warning",
                f"registry {registry} was unreachable: showing parsed references only; "
                f"use --mirror {registry}=URL where a mirror exists",
                style="yellow",
            )
    others = [(ref, found) for ref, found in failed.items() if found.status != LookupStatus.UNREACHABLE]
    for ref, found in others:
        print_problem(err, "warning", f"{ref}: {found.status}: {found.error}", style="yellow")
    if not failed:
        return EXIT_OK
    print_problem(
        err,
        "incomplete",
        f"{len(failed)} of {len({r.reference for r in rows if r.reference})} registry lookups failed",
        style="yellow",
    )
    return EXIT_INCOMPLETE


def render_table(rows: Sequence[ScanRow]) -> Table:
    table = Table(title="Base images", show_lines=False)
    for column in (
        "location",
        "image",
        "parsed",
        "digest",
        "CUDA_VERSION",
        "EOL",
        "platforms",
        "note",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        data = row.to_json()
        parsed = ""
        if row.cuda:
            parts = (row.cuda.version_str, row.cuda.extra, row.cuda.flavor, row.cuda.os_label)
            parsed = "CUDA " + " ".join(p for p in parts if p)
        elif row.ngc:
            parsed = f"NGC {row.ngc.release} py{row.ngc.python_major}"
        eol = {True: Text("yes", style="red"), False: Text("no"), None: Text("?")}[data["end_of_life"]]
        note = data["skip_reason"] or (data["registry_status"] if data["registry_status"] != "ok" else "")
        # Cells are Text, not markup: file names, references and notes are the user's data.
        table.add_row(
            Text(f"{data['file']}:{data['line']}"),
            Text(str(data["image"])),
            Text(parsed),
            Text((data["digest"] or "")[:19]),
            Text(data["cuda_version"] or ""),
            eol,
            Text(", ".join(data["platforms"])),
            Text(note),
        )
    return table
