"""Helpers more than one command group uses while it runs: JSON for programs, and resolving
``--sources auto`` (live, or the bundled snapshot when the network is unreachable)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from baseimage.printing import print_problem
from baseimage.settings import Settings


def write_json(data: Any) -> None:
    """JSON for programs: written as it is (no pretty-printing or highlighting pass, which costs
    seconds and doubles the memory of a large report)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def network_fallback(
    settings: Settings, sources: str, offline: Path | None, mirrors: Sequence[tuple[str, str]], err: Console
) -> tuple[str, Path | None]:
    """Resolve ``--sources auto``: live, or the bundled snapshot (said loudly) without a network."""
    if offline and sources == "auto":
        return "offline", offline
    if sources != "auto":
        return sources, offline
    from baseimage.wiring import BUNDLED_SNAPSHOT, network_down

    down = network_down(settings, mirrors)
    if not down:
        return "live", offline

    print_problem(
        err,
        f"network unreachable ({down})",
        f"using the bundled snapshot in {BUNDLED_SNAPSHOT}; its date is in the report. "
        "Use --sources live to fail instead.",
        style="bold yellow",
    )
    return "offline", BUNDLED_SNAPSHOT
