"""``baseimage docs check``: which sections of the policy document baseimage keeps current, and
the diff bringing them in line with the managed Dockerfile would make."""

from __future__ import annotations

import argparse

from rich.console import Console

from baseimage.cli.options import EXIT_CHANGES, EXIT_OK, Subparsers, add_command, add_config
from baseimage.printing import print_problem
from baseimage.settings import load_settings
from tasks.errors import ConfigError


def add_parser(sub: Subparsers) -> None:
    p_docs = add_command(
        sub,
        "docs",
        cmd_docs,
        help="check the policy document: which sections baseimage keeps current, and what it would change",
        description=(
            "`baseimage docs check` reads docs/base-image-policy.md, says which of its sections baseimage found "
            "(Current Configuration, Version Compatibility Matrix, Changelog, Review Findings; by heading or by "
            "markers) and what to add for the missing ones, and prints the diff that bringing Current "
            "Configuration and the matrix in line with the managed Dockerfile and requirements would make. Exit "
            "0: in line; 1: it would change; 2: bad input."
        ),
    )
    p_docs.add_argument("action", choices=["check"])
    add_config(p_docs)


def cmd_docs(args: argparse.Namespace, out: Console, err: Console) -> int:
    from tasks.dockerfile.parser import read_dockerfile
    from tasks.update.apply import unified_diff
    from tasks.update.coupled import file_reader, read_stack
    from tasks.update.plan import POLICY_DOC
    from tasks.update.policy_doc import SUGGESTION, Moved, sections, sync_doc

    settings = load_settings(args.config)
    path = settings.root / POLICY_DOC
    if not path.is_file():
        raise ConfigError(
            f"{path}: no policy document; copy the policy template there (see README: The policy document)"
        )
    text = path.read_text(encoding="utf-8")
    found = sections(text)
    for kind in ("configuration", "matrix", "changelog", "findings"):
        if kind in found:
            how = "between markers" if found[kind].marked else "by its heading"
            out.print(f"found    {kind} ({how})", highlight=False)
        else:
            print_problem(out, "missing", f"{kind}: add {SUGGESTION[kind]}", style="yellow")
    image = settings.images[0]
    bases = [b for b in read_dockerfile(settings.path(image.dockerfile), image.build_args).bases if b.reference]
    if not bases:
        raise ConfigError(f"{image.dockerfile}: no FROM names an image to describe")
    current = str(bases[-1].reference)
    # The stack as a migration reads it: the requirements with their includes, and the pyproject.
    stack = read_stack(
        file_reader(settings.root),
        str(image.requirements) if image.requirements else None,
        str(image.pyproject) if image.pyproject else None,
    )
    pins, variant = dict(stack.pins.pins), stack.pins.index_variant
    update = sync_doc(text, str(path), [Moved(current, current, pins, pins, variant, variant, str(image.dockerfile))])
    for warning in update.warnings:
        print_problem(out, "warning", warning, style="yellow")
    if update.text == text:
        out.print(f"{POLICY_DOC} is in line with {image.dockerfile}", highlight=False)
        return EXIT_OK
    out.print(unified_diff({POLICY_DOC: (text, update.text)}), highlight=False, soft_wrap=True)
    return EXIT_CHANGES
