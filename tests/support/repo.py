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


SHIPPED_TRAINING_BASE = "nvidia/cuda:12.6.0-runtime-ubuntu22.04"  # dockerfiles/training/Dockerfile's FROM


def one_image_repo(
    root: Path, name: str, dockerfile: str, track: str, *, min_driver: int, base: str | None = None
) -> Path:
    """This checkout's dockerfiles and config copied to `root`, its policy file managing one image
    (`dockerfile` under dockerfiles/training/); `base` replaces the training Dockerfile's shipped
    FROM. Not committed."""
    repo = copy_managed(root, ("dockerfiles", "config"))
    if base is not None:
        path = repo / "dockerfiles" / "training" / "Dockerfile"
        text = path.read_text()
        assert SHIPPED_TRAINING_BASE in text, f"{path} no longer starts FROM {SHIPPED_TRAINING_BASE}"
        path.write_text(text.replace(SHIPPED_TRAINING_BASE, base))
    (repo / "config" / "policy.yaml").write_text(
        f"version: 1\nrepository: ..\nimages:\n  - name: {name}\n    dockerfile: dockerfiles/training/{dockerfile}\n"
        f"    track: {track}\nfleet:\n  min_driver: {min_driver}\n"
    )
    return repo
