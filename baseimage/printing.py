"""Printing for the command line: what is printed is text (paths, messages, Dockerfile content),
never interpreted as Rich markup or emoji codes."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def print_problem(console: Console, label: str, message: str, style: str = "red") -> None:
    """One error or warning line: `label` styled, then `message` exactly as given (never read as
    Rich markup or emoji codes, so ``[/x]``, ``[bold]`` or ``:smile:`` in a value print literally)."""
    line = Text()
    line.append(f"{label}:", style=style)
    line.append(" ")
    line.append(message)
    console.print(line, highlight=False, soft_wrap=True, emoji=False, markup=False)
