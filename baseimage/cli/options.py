"""What every command group shares, declared once: the exit codes, the handler signature, and the
options more than one command takes (``--config``, ``--mirror``, ``--json``, ``--out``,
``--sources``/``--offline``, ``--pytorch-index``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from rich.console import Console

from tasks.errors import BaseImageError
from tasks.images.reference import parse_reference

EXIT_OK = 0
EXIT_FAILED = 1  # the run did not succeed: a check, the migration, a deploy or a rollback failed
EXIT_CHANGES = 1  # `docs check`: the document would change (as diff(1) says "differs")
EXIT_ERROR = 2  # bad input: a message, never a traceback
EXIT_INCOMPLETE = 3  # some image, source or lookup could not be checked
EXIT_NOT_RUNNING = 3  # `server status`: no local server (as an init script's status says)
EXIT_MIGRATE = 10  # a migration (or an upgrade) is recommended

DEFAULT_OUT = "reports"

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# A command: its parsed arguments, the console for results and the one for messages; the exit code.
Handler: TypeAlias = Callable[[argparse.Namespace, Console, Console], int]
# Checks of the command's input that need no Prefect API (raise BaseImageError): run first.
Preflight: TypeAlias = Callable[[argparse.Namespace], None]


def add_command(
    sub: Subparsers,
    name: str,
    handler: Handler,
    *,
    help: str,
    description: str | None = None,
    needs_api: bool = False,
    preflight: Preflight | None = None,
) -> argparse.ArgumentParser:
    """A subcommand that runs `handler`; `needs_api`: it runs flows or reads runs, so it gets a
    Prefect API (baseimage/local_server.py) before it starts; `preflight` checks its input before
    that (bad input is a message at once, with no server started)."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=handler, needs_api=needs_api, preflight=preflight)
    return parser


def add_config(p: argparse.ArgumentParser, help: str = "policy file") -> None:
    p.add_argument("--config", type=Path, metavar="FILE", help=help)


def _mirror(text: str) -> tuple[str, str]:
    from baseimage.settings import mirror_url

    registry, sep, url = text.partition("=")
    if not sep or not registry or not url.startswith(("http://", "https://")):
        shown = repr(text) if "@" not in text else "a value with credentials in it"
        raise argparse.ArgumentTypeError(f"{shown}: expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5000")
    try:
        parse_reference(f"{registry}/x")
    except BaseImageError as exc:
        raise argparse.ArgumentTypeError(f"{registry!r} is not a registry host") from exc
    try:
        return registry, mirror_url(registry, url)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_config_and_mirrors(p: argparse.ArgumentParser) -> None:
    """--config and --mirror, for the commands that read registries (scan, review, snapshot, annual)."""
    add_config(p, help="policy file (default: $BASEIMAGE_CONFIG or config/policy.yaml)")
    p.add_argument(
        "--mirror",
        action="append",
        type=_mirror,
        default=[],
        metavar="REGISTRY=URL",
        help="reach REGISTRY through URL (repeatable), e.g. docker.io=http://127.0.0.1:5000",
    )


def add_json(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--json", action="store_true", help=help)


def add_out(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--out", default=DEFAULT_OUT, help=help)


def add_sources(p: argparse.ArgumentParser, *, help: str | None, offline_help: str) -> None:
    """--sources auto|live|offline and --offline DIR (resolved by common.network_fallback)."""
    p.add_argument("--sources", choices=["auto", "live", "offline"], default="auto", help=help)
    p.add_argument("--offline", type=Path, metavar="DIR", help=offline_help)


def _index_url(value: str) -> str:
    """--pytorch-index as the policy file's research.pytorch_index: http(s), no credentials."""
    from baseimage.settings import research_url

    try:
        return research_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_pytorch_index(p: argparse.ArgumentParser, help: str = "PyTorch wheel index") -> None:
    p.add_argument("--pytorch-index", metavar="URL", type=_index_url, help=help)
