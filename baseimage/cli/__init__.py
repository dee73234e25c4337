"""The ``baseimage`` command line: one subcommand per user action, ``--help`` on each.

One module per command group (scan, review, migrate, validate, deploy, retain, server, annual,
docs), the options they share declared once in options.py, the helpers they share in common.py;
app.py builds the parser from the registered groups and runs the chosen command. `main` first
takes the working directory off the import path (the user's repository has its own `tasks/` and
`services/`) and checks that the product's top-level packages are its own (baseimage/layout.py): a
package of the same name from elsewhere on PYTHONPATH is a message, not an ImportError from deep
inside."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from baseimage import layout


def main(argv: Sequence[str] | None = None) -> int:
    layout.leave_working_directory()
    trouble = layout.problem()
    if trouble:
        print(f"error: {trouble}", file=sys.stderr)
        return 2
    from baseimage.cli.app import main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    from baseimage.cli.app import build_parser as build

    return build()


__all__ = ["build_parser", "main"]
