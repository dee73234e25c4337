"""The ``baseimage`` command line: one subcommand per user action, ``--help`` on each.

One module per command group (scan, review, migrate, validate, deploy, retain, server, annual,
docs), the options they share declared once in options.py, the helpers they share in common.py;
app.py builds the parser from the registered groups and runs the chosen command. `main` first
takes the working directory off the import path (the user's repository has its own `tasks/` and
`services/`) and checks that the product's top-level packages are its own (baseimage/layout.py): a
package of the same name from elsewhere on PYTHONPATH is a message, not an ImportError from deep
inside.

`run` is the process's entry point (the `baseimage` script, `python -m baseimage.cli`): it hands the
command to the warm process where one runs (baseimage/warm.py), else `run_here` calls `main` with
the cyclic garbage collector tuned for one command in one process; measured on the 3-image review
(bench/review_scale.py), Python's defaults spent about 0.25 s in about 400 collections walking the
objects the imports create (modules, classes, Prefect's pydantic schemas), and another 0.3 s at exit
in the final collection over the same objects; a larger first generation and freezing what is left
before the interpreter shuts down take most of that away. Objects freed by their reference counts
are freed as before; the young generations are collected once more before the freeze, and reference
cycles left in the oldest one at exit are left to the OS without their finalizers (nothing the
product writes depends on one: files are written whole by `tasks.files.write_atomic` or in `with`
blocks)."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

from baseimage import layout

# Allocations between first-generation collections: Python's 700 suits a long-lived process
# that churns small objects; a command that builds a few hundred thousand long-lived ones at
# import pays for walking them hundreds of times. The older generations keep their defaults.
FIRST_GENERATION = 10_000


def main(argv: Sequence[str] | None = None) -> int:
    layout.leave_working_directory()
    trouble = layout.problem()
    if trouble:
        print(f"error: {trouble}", file=sys.stderr)
        return 2
    from baseimage.cli.app import main as run

    return run(argv)


def run() -> int:
    """The command as a process: in a child of the warm process where one stands in for this
    one's start-up (baseimage/warm.py), else `run_here`."""
    from baseimage import warm

    code = warm.run_warm(sys.argv[1:])
    if code is not None:
        return code
    return run_here()


def run_here(argv: Sequence[str] | None = None) -> int:
    """`main` on `argv` (default sys.argv), the collector tuned for it. Only for a process that
    ends with the command (tests call `main`, whose process goes on)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION, older, oldest)
    try:
        return main(argv)
    finally:
        # What is alive now lives until the process ends: the final collection need not walk it.
        gc.collect(1)
        gc.freeze()


def build_parser() -> argparse.ArgumentParser:
    from baseimage.cli.app import build_parser as build

    return build()


__all__ = ["build_parser", "main", "run", "run_here"]
