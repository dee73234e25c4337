"""The installed layout. baseimage keeps the user's top-level folders (`tasks`, `flows`,
`deployments`, `services`) as top-level packages beside `baseimage` (README: Installation and
package names): the repository is the product, Prefect's deployments name their entrypoints by
file path in it, and the candidate image runs `tasks.workload` and `services.training` from it.
It is installed into its own environment (the README's commands create `.venv`; the GPU worker's
image installs only it), so nothing else provides those names there. Where something else does,
`shadowed` says so before anything is imported from them. The working directory is not one of
those places: `leave_working_directory` takes it off the path first (the ``baseimage`` command
never puts it there; ``python -m baseimage.cli`` in the user's repository does)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# What the command's own process imports; `services` runs only inside the candidate image and
# `deployments` only as `python -m deployments.setup` in this checkout (tests/test_architecture.py:
# nothing else imports them).
TOP_LEVEL = ("tasks", "flows")


def leave_working_directory(root: Path | None = None) -> None:
    """Take the working directory off the import path unless it is this installation: run as
    ``python -m baseimage.cli`` in the user's repository, Python puts that folder first, and the
    repository's own `tasks/` (Celery's), `flows/` or `services/` would stand in for baseimage's.
    The product reads the user's files; it never imports them."""
    root = (root or Path(__file__).resolve().parent.parent).resolve()
    here = Path.cwd().resolve()
    if here == root:
        return
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def shadowed(root: Path | None = None) -> list[str]:
    """The top-level packages that resolve to another place than this installation's `root` (the
    folder that holds `baseimage/`); each as "NAME (at PATH)". Empty when all are ours."""
    root = (root or Path(__file__).resolve().parent.parent).resolve()
    found = []
    for name in TOP_LEVEL:
        spec = importlib.util.find_spec(name)
        where = Path(spec.origin).resolve().parent if spec and spec.origin else None
        if where is None or where.parent != root:
            found.append(f"{name} (at {where or 'nowhere'})")
    return found


def problem() -> str | None:
    """What to tell the user when another installation's packages shadow baseimage's, else None."""
    others = shadowed()
    if not others:
        return None
    return (
        f"another package shadows baseimage's own: {', '.join(others)}; baseimage's are in "
        f"{Path(__file__).resolve().parent.parent}. Install baseimage in its own virtual environment "
        "(the README's `scripts/review` and `scripts/test` create .venv) or remove the other package from PYTHONPATH"
    )
