"""git through one subprocess wrapper: list arguments, never a shell, errors that say what ran."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tasks.errors import BaseImageError


class GitError(BaseImageError):
    """A git command failed; the message has the command and its stderr."""


def git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise GitError(f"git {' '.join(args)} in {repo} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def dirty(repo: Path, paths: list[str]) -> list[str]:
    """Which of `paths` have uncommitted changes (staged, unstaged or untracked)."""
    out = git(repo, "status", "--porcelain", "--", *paths)
    return [line[3:] for line in out.splitlines() if line.strip()]


def branch_exists(repo: Path, name: str) -> bool:
    return bool(git(repo, "branch", "--list", name).strip())


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def push(repo: Path, remote: str, branch: str) -> None:
    """Push `branch` to `remote` (refusing to overwrite someone else's work on it)."""
    git(repo, "push", "--force-with-lease", remote, f"{branch}:{branch}")
