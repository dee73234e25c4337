"""The ``baseimage`` command line: one subcommand per user action, ``--help`` on each.

One module per command group (scan, review, migrate, validate, deploy, retain, server, annual,
docs), the options they share declared once in options.py, the helpers they share in common.py;
app.py builds the parser from the registered groups and runs the chosen command."""

from baseimage.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
