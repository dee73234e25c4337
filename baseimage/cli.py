"""The ``baseimage`` command line: one subcommand per user action, ``--help`` on each."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from baseimage import __version__
from baseimage.printing import print_problem
from baseimage.settings import Settings, load_settings
from tasks.errors import BaseImageError, ConfigError
from tasks.http import HttpTransport, RetryPolicy
from tasks.images.reference import parse_reference
from tasks.progress import reporting
from tasks.registry.session import RegistrySession
from tasks.scan import FAILED_STATUSES, ScanRow, ScanTarget, discover, scan

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INCOMPLETE = 3
EXIT_MIGRATE = 10
# Commands that run flows or read runs: they get an API (see baseimage/local_server.py) first.
USES_API = frozenset({"review", "snapshot", "migrate", "approve", "validate", "annual", "rollback", "history", "serve"})


def _mirror(text: str) -> tuple[str, str]:
    registry, sep, url = text.partition("=")
    if not sep or not registry or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5000")
    try:
        parse_reference(f"{registry}/x")
    except BaseImageError as exc:
        raise argparse.ArgumentTypeError(f"{registry!r} is not a registry host") from exc
    return registry, url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baseimage",
        description="Keep GPU training base images (nvidia/cuda, NGC PyTorch) current, safe and proven.",
    )
    parser.add_argument("--version", action="version", version=f"baseimage {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log registry requests")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_scan = sub.add_parser(
        "scan",
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
    _common(p_scan)
    p_scan.add_argument("--json", action="store_true", help="print one JSON object per FROM, as a list")
    p_scan.add_argument("--no-registry", action="store_true", help="parse only; ask no registry")
    p_scan.set_defaults(handler=cmd_scan)

    p_rev = sub.add_parser(
        "review",
        help="the quarterly review: deprecation, new releases, compatibility, advisories, plan",
        description=(
            "Review every managed image (or the Dockerfiles given): NVIDIA support state, start-up "
            "banner, driver fit, PyTorch wheels, CuPy and ONNX Runtime, Ubuntu support, security "
            "advisories, and a migration plan. Exit 0: nothing to do; 10: migration recommended; "
            "3: the review could not complete for some image or source; 2: bad input."
        ),
    )
    p_rev.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="Dockerfiles or directories")
    _common(p_rev)
    p_rev.add_argument(
        "--sources",
        choices=["auto", "live", "offline"],
        default="auto",
        help="auto: live, or the bundled snapshot (said loudly) when the network is "
        "unreachable; live: fail clearly instead; offline: replay --offline DIR",
    )
    p_rev.add_argument("--offline", type=Path, metavar="DIR", help="snapshot made by `baseimage snapshot`")
    p_rev.add_argument(
        "--pytorch-index",
        metavar="URL",
        help="PyTorch wheel index (default download.pytorch.org/whl)",
    )
    p_rev.add_argument(
        "--osv-db",
        type=Path,
        metavar="DIR",
        help="directory of OSV JSON records (offline advisories)",
    )
    p_rev.add_argument("--fleet-min-driver", type=int, metavar="N", help="oldest driver branch on the GPU hosts")
    p_rev.add_argument("--json", action="store_true", help="print the report as JSON")
    p_rev.add_argument("--out", default="reports", help="where the reports go (default reports/)")
    p_rev.add_argument("--no-banner", action="store_true", help="do not run images to look for the banner")
    p_rev.add_argument("--no-docs", action="store_true", help="leave docs/base-image-policy.md as it is")
    p_rev.set_defaults(handler=cmd_review)

    p_snap = sub.add_parser(
        "snapshot",
        help="record every live response a review needs into DIR, for air-gapped sites",
        description="Run the review live and record each HTTP response (tokens redacted) into DIR; "
        "`baseimage review --offline DIR` replays it without a network.",
    )
    p_snap.add_argument("directory", type=Path, metavar="DIR")
    _common(p_snap)
    p_snap.add_argument("--pytorch-index", metavar="URL", help="PyTorch wheel index")
    p_snap.set_defaults(handler=cmd_snapshot)

    p_mig = sub.add_parser(
        "migrate",
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
    p_mig.add_argument("--config", type=Path, metavar="FILE", help="policy file")
    p_mig.add_argument(
        "--validation",
        choices=["auto", "deployment", "subflow", "skip"],
        default="auto",
        help="auto: the validate deployment when PREFECT_API_URL is set, else a subflow",
    )
    p_mig.add_argument("--out", default="reports", help="where the outcome JSON goes")
    p_mig.add_argument(
        "--poll-interval",
        type=int,
        default=10,
        metavar="S",
        help="how often a paused run checks for a decision (default 10 s)",
    )
    p_mig.set_defaults(handler=cmd_migrate)

    p_app = sub.add_parser(
        "approve",
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
    p_app.set_defaults(handler=cmd_approve)

    p_val = sub.add_parser(
        "validate",
        help="build a candidate image and prove it (GPU, health, training, ONNX, banner)",
        description=(
            "Run the validate flow here, on Prefect's ephemeral API unless PREFECT_API_URL is "
            "set: build the candidate, detect the GPU with nvidia-smi, start the service, check "
            "/health, run a sample training job, verify its ONNX model, check GPU utilisation "
            "and the start-up logs, then tear everything down. Exit 0 when every check passed, "
            "1 when one failed."
        ),
    )
    p_val.add_argument("--context", default=".", help="build context (default: the repo root)")
    p_val.add_argument(
        "--dockerfile",
        default="dockerfiles/training/Dockerfile",
        help="Dockerfile, relative to the context",
    )
    p_val.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="build argument (repeatable)",
    )
    p_val.add_argument("--config", type=Path, metavar="FILE", help="policy file")
    gpu = p_val.add_mutually_exclusive_group()
    gpu.add_argument(
        "--require-gpu",
        dest="require_gpu",
        action="store_true",
        default=None,
        help="fail when no GPU is usable (the policy's require_gpu by default)",
    )
    gpu.add_argument(
        "--allow-no-gpu",
        dest="require_gpu",
        action="store_false",
        help="skip GPU checks on a host without an NVIDIA runtime",
    )
    p_val.add_argument("--out", default="reports", help="where the JSON result goes")
    p_val.add_argument("--keep-image", action="store_true", help="keep the candidate image")
    p_val.set_defaults(handler=cmd_validate)

    from baseimage import ops_cli

    ops_cli.add_parsers(sub)
    ops_cli.add_server_parsers(sub)
    ops_cli.add_annual_parser(sub, _common)
    ops_cli.add_docs_parser(sub)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="policy file (default: $BASEIMAGE_CONFIG or config/policy.yaml)",
    )
    p.add_argument(
        "--mirror",
        action="append",
        type=_mirror,
        default=[],
        metavar="REGISTRY=URL",
        help="reach REGISTRY through URL (repeatable), e.g. docker.io=http://127.0.0.1:5000",
    )


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
        _write_json([row.to_json() for row in rows])
    else:
        out.print(render_table(rows))
    return _scan_verdict(rows, session, err)


def _scan_verdict(rows: Sequence[ScanRow], session: RegistrySession | None, err: Console) -> int:
    """Say which lookups failed and why; EXIT_INCOMPLETE when any did ("not found" is a finding)."""
    failed = {r.reference: r.lookup for r in rows if r.reference and r.lookup.status in FAILED_STATUSES}
    unreachable = sorted({ref.registry for ref, found in failed.items() if found.status == "unreachable"})
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
    others = [(ref, found) for ref, found in failed.items() if found.status != "unreachable"]
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


def _network_down(settings: Settings, mirrors: Sequence[tuple[str, str]]) -> str | None:
    """Why the live registries are unreachable, or None when they answer (or are mirrored)."""
    mirrored = {**settings.registries.mirrors, **dict(mirrors)}
    if "docker.io" in mirrored:
        return None
    transport = HttpTransport(retry=RetryPolicy(attempts=1), timeout=(3.0, 5.0))
    try:
        transport.request("GET", "https://registry-1.docker.io/v2/")
    except BaseImageError as exc:
        return str(exc)
    return None


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
                out_dir=getattr(args, "out", "reports"),
                check_banner=not getattr(args, "no_banner", False),
                update_docs=not getattr(args, "no_docs", False),
                record_dir=str(record) if record else None,
                return_state=True,
            )
    if not state.is_completed():
        raise BaseImageError(f"the review flow failed: {state.message}")
    report: dict[str, Any] = state.result()
    return report


def network_fallback(
    settings: Settings, sources: str, offline: Path | None, mirrors: Sequence[tuple[str, str]], err: Console
) -> tuple[str, Path | None]:
    """Resolve ``--sources auto``: live, or the bundled snapshot (said loudly) without a network."""
    if offline and sources == "auto":
        return "offline", offline
    if sources != "auto":
        return sources, offline
    down = _network_down(settings, mirrors)
    if not down:
        return "live", offline
    from baseimage.wiring import BUNDLED_SNAPSHOT

    print_problem(
        err,
        f"network unreachable ({down})",
        f"using the bundled snapshot in {BUNDLED_SNAPSHOT}; its date is in the report. "
        "Use --sources live to fail instead.",
        style="bold yellow",
    )
    return "offline", BUNDLED_SNAPSHOT


def _write_json(data: Any) -> None:
    """JSON for programs: written as it is (no pretty-printing or highlighting pass, which costs
    seconds and doubles the memory of a large report)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


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
        _write_json(
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


def _approvals_needed(settings: Settings, dry_run: bool) -> list[str]:
    if dry_run:
        return []
    stages: list[str] = [s for s in settings.approvals.required_for if s == "update"]
    if {"staging", "production"} <= set(settings.environments):
        stages.append("production")
    return stages


def cmd_migrate(args: argparse.Namespace, out: Console, err: Console) -> int:
    settings = load_settings(args.config)  # fail fast on a bad config, before Prefect starts
    for image in settings.images:
        if not settings.path(image.dockerfile).is_file():
            raise ConfigError(
                f"{settings.source}: images[{image.name}].dockerfile {image.dockerfile} does not exist "
                f"({settings.path(image.dockerfile)}); fix the path or remove the image"
            )
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
        return 1
    out.print(f"{outcome['outcome']} (branch {outcome.get('branch')})", highlight=False)
    if outcome.get("validation"):
        out.print(outcome["validation"]["summary"], highlight=False)
    out.print(f"run state: {state.name}; outcome: {outcome.get('report')}", highlight=False)
    return EXIT_OK if state.is_completed() and Result(outcome["result"]).succeeded else 1


def cmd_approve(args: argparse.Namespace, out: Console, err: Console) -> int:
    import asyncio

    from flows.approvals import resume

    resumed = asyncio.run(resume(args.run_id, not args.reject, args.reviewer, args.comment))
    out.print(f"{'rejected' if args.reject else 'approved'} {resumed} as {args.reviewer}", highlight=False)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    buildargs = {}
    for item in args.build_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--build-arg {item!r}: expected KEY=VALUE")
        buildargs[key] = value
    load_settings(args.config)  # fail fast, before Prefect starts, on a bad config
    from flows.validate import validate

    state = validate(
        context=args.context,
        dockerfile=args.dockerfile,
        buildargs=buildargs,
        config_path=str(args.config) if args.config else None,
        require_gpu=args.require_gpu,
        out_dir=args.out,
        keep_image=args.keep_image,
        return_state=True,
    )
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, dict) and "checks" in summary:
        for check in summary["checks"]:
            out.print(f"{check['status']:>8}  {check['name']}: {check['message']}", highlight=False)
        out.print(f"{summary['counts']}; report: {summary.get('report')}", highlight=False)
    if state.is_completed():
        return EXIT_OK
    print_problem(err, "validation failed", str(state.message))
    return 1


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Piped output is read by people and tools alike: wide tables, unwrapped messages.
    # markup=False: what is printed is text (paths, messages, Dockerfile content), never Rich markup.
    out = Console(width=None if sys.stdout.isatty() else 200, markup=False, emoji=False)
    err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False)
    # SIGTERM unwinds like Ctrl-C: a flow run in progress is marked cancelled and the temporary
    # Prefect server this process started is shut down instead of being left behind.
    with contextlib.suppress(ValueError):  # only the main thread can install it
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry from a temporary server
    try:
        if args.command in USES_API:
            from baseimage import local_server

            _url, note = local_server.api_for_this_command()
            if note:
                print_problem(err, "prefect", note, style="cyan")
        return int(args.handler(args, out, err))
    except BaseImageError as exc:  # ConfigError included: bad input is a message, never a traceback
        print_problem(err, "error", str(exc))
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
