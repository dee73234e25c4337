"""git through one subprocess wrapper: list arguments, never a shell, errors that say what ran."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


def is_ancestor(repo: Path, commit: str, ref: str) -> bool:
    """Whether `commit` is already in `ref`'s history (merged)."""
    argv = ["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, ref]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def commit_as_baseimage(repo: Path, message: str) -> str:
    git(repo, "-c", "user.name=baseimage", "-c", "user.email=baseimage@localhost", "commit", "-q", "-m", message)
    return head(repo)


def fast_forward(repo: Path, base: str, branch: str) -> str:
    """Move `base` to `branch` when that is a fast-forward (a no-op when already there); returns the
    new tip. The checked-out branch is updated through `merge --ff-only`, others by `fetch . b:a`."""
    if is_ancestor(repo, branch, base):
        return git(repo, "rev-parse", base).strip()
    if not is_ancestor(repo, base, branch):
        raise GitError(
            f"{repo}: {base} has moved on since {branch} was made: not a fast-forward; rebase {branch} on {base} "
            "(or merge its pull request by hand)"
        )
    current = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    if current == base:
        git(repo, "merge", "-q", "--ff-only", branch)
    else:
        git(repo, "fetch", "-q", ".", f"{branch}:{base}")
    return git(repo, "rev-parse", base).strip()


@contextmanager
def worktree(repo: Path, ref: str, *, detach: bool = True) -> Iterator[Path]:
    """`ref` checked out in a temporary worktree of `repo` (the caller's checkout is left alone),
    removed afterwards whatever happened. `detach=False` checks out the branch itself, to commit."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        git(repo, "worktree", "add", "-q", *(["--detach"] if detach else []), str(tree), ref)
        try:
            yield tree
        finally:
            git(repo, "worktree", "remove", "--force", str(tree), check=False)


def commit_on_branch(repo: Path, branch: str, files: dict[str, str], message: str) -> str | None:
    """Write `files` (relative path -> text) on `branch` in a temporary worktree and commit them,
    leaving the caller's checkout alone; None when nothing changed."""
    from tasks.research.report import write_atomic

    with worktree(repo, branch, detach=False) as tree:
        for rel, text in files.items():
            write_atomic(tree / rel, text)
        git(tree, "add", "--", *files)
        if not git(tree, "status", "--porcelain").strip():
            return None
        return commit_as_baseimage(tree, message)


def show(repo: Path, ref: str, path: str) -> str | None:
    """The text of `path` at `ref`, None when it is not there."""
    done = subprocess.run(
        ["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout if done.returncode == 0 else None


def base_branch(repo: Path, preferred: str) -> str:
    """`preferred` when that branch exists here, else the branch checked out."""
    if branch_exists(repo, preferred):
        return preferred
    return git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
