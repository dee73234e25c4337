"""The ``baseimage`` parser, built from the command groups in `GROUPS`, and `main`, which runs the
chosen command. Adding a command group is one module (``add_parser(sub)`` and its ``cmd_*``
functions, see options.add_command) and one line in `GROUPS`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from rich.console import Console

from baseimage import __version__, warm
from baseimage.cli import annual, deploy, docs, migrate, retain, review, scan, server, validate
from baseimage.cli.options import EXIT_ERROR, Subparsers
from baseimage.printing import print_problem
from tasks.errors import BaseImageError


class CommandGroup(Protocol):
    def add_parser(self, sub: Subparsers) -> None: ...


# In the order `baseimage --help` lists them.
GROUPS: tuple[CommandGroup, ...] = (scan, review, migrate, validate, deploy, retain, server, annual, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baseimage",
        description="Keep GPU training base images (nvidia/cuda, NGC PyTorch) current, safe and proven.",
    )
    parser.add_argument("--version", action="version", version=f"baseimage {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log registry requests")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def _is_user_error(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BaseImageError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _user_errors_without_traceback() -> None:
    """A BaseImageError is a message the user can act on: where Prefect logs one raised in a task
    or a flow (with exc_info), the log line keeps the message and drops the traceback. `-v` keeps
    tracebacks for debugging."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.exc_info and _is_user_error(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return record

    logging.setLogRecordFactory(factory)


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
    # Nor from the SDK: Prefect's client sends usage events from an interactive terminal when the
    # server it talks to has analytics on (a user's own server may). DO_NOT_TRACK is the standard
    # switch it honours; a value the user set stays.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    warm.prefect_follows_environment(logging_too=True)  # only where Prefect was imported before this
    if not args.verbose:
        _user_errors_without_traceback()
    try:
        if args.preflight is not None:
            args.preflight(args)
        if args.needs_api:  # commands that run flows or read runs get an API first
            from baseimage import local_server

            _url, note = local_server.api_for_this_command()
            if note:
                print_problem(err, "prefect", note, style="cyan")
        return int(args.handler(args, out, err))
    except BaseImageError as exc:  # ConfigError included: bad input is a message, never a traceback
        print_problem(err, "error", str(exc))
        return EXIT_ERROR
