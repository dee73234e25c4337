"""A throw-away copy of this repository's managed files, optionally as a git repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
MANAGED = ("dockerfiles", "docs", "config", "services")


def copy_managed(root: Path, parts: tuple[str, ...] = MANAGED) -> Path:
    """Copy `parts` of this checkout to `root` (never the bundled snapshot)."""
    for part in parts:
        shutil.copytree(REPO_ROOT / part, root / part, ignore=shutil.ignore_patterns("snapshot", "__pycache__"))
    return root


def commit_all(root: Path, message: str = "initial") -> Path:
    """Make `root` a git repository on `main` with everything in it committed."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message], check=True
    )
    return root
