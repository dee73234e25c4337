"""git through one subprocess wrapper: list arguments, never a shell, errors that say what ran.

Everything baseimage writes goes through temporary worktrees under ``.git/baseimage-worktrees/``
and lands on a branch by moving its ref once the commit exists, so the user's checkout (its
files, index and current branch) is never touched and a kill at any point leaves either no
change or a complete commit; the next run removes what a killed one left there."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.errors import BaseImageError

ZERO = "0" * 40
FALLBACK_NAME, FALLBACK_EMAIL = "baseimage", "baseimage@localhost"
WORKTREES = "baseimage-worktrees"


class GitError(BaseImageError):
    """A git command failed; the message has the command and its stderr."""


def git(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env} if env else None,
    )
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


def rev(repo: Path, ref: str) -> str | None:
    """The commit `ref` names, or None when there is no such ref."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).strip()
    return out or None


def current_branch(repo: Path) -> str:
    return git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()


def common_dir(repo: Path) -> Path:
    """The repository's .git directory (shared by its worktrees)."""
    path = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    return path if path.is_absolute() else (repo / path).resolve()


def push(repo: Path, remote: str, branch: str) -> None:
    """Push `branch` to `remote` (refusing to overwrite someone else's work on it)."""
    git(repo, "push", "--force-with-lease", remote, f"{branch}:{branch}")


def is_ancestor(repo: Path, commit: str, ref: str) -> bool:
    """Whether `commit` is already in `ref`'s history (merged)."""
    argv = ["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, ref]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def identity(repo: Path) -> tuple[str, str]:
    """Who commits: the repository's (or the user's) git identity, else baseimage."""
    name = git(repo, "config", "user.name", check=False).strip()
    email = git(repo, "config", "user.email", check=False).strip()
    return (name or FALLBACK_NAME, email or FALLBACK_EMAIL)


def commit(repo: Path, message: str, author: tuple[str, str] | None = None) -> str:
    """Commit what is staged in `repo` (a worktree) as `author`, else the repository's identity."""
    name, email = author or identity(repo)
    git(repo, "-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "-q", "-m", message)
    return head(repo)


def commit_as_baseimage(repo: Path, message: str) -> str:
    """Kept for callers that commit in a worktree they made; uses the repository's identity."""
    return commit(repo, message)


def update_ref(repo: Path, branch: str, new: str, old: str | None) -> None:
    """Point `branch` at `new`, only if it still points at `old` (None: only if it does not exist)."""
    git(repo, "update-ref", "-m", "baseimage", f"refs/heads/{branch}", new, old or ZERO)


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
    if current_branch(repo) == base:
        git(repo, "merge", "-q", "--ff-only", branch)
    else:
        git(repo, "fetch", "-q", ".", f"{branch}:{base}")
    return git(repo, "rev-parse", base).strip()


def fetch_base(repo: Path, remote: str, base: str) -> str | None:
    """Fetch `remote`'s `base` and bring the local `base` up to it when that is a fast-forward
    (after a merge made through the host's API); returns the remote tip, or None when the remote
    cannot be reached (said by the caller)."""
    done = subprocess.run(
        ["git", "-C", str(repo), "fetch", "-q", remote, f"+refs/heads/{base}:refs/remotes/{remote}/{base}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return None
    tip = rev(repo, f"refs/remotes/{remote}/{base}")
    if tip and branch_exists(repo, base) and is_ancestor(repo, base, tip):
        if current_branch(repo) == base:
            if not dirty(repo, []):
                git(repo, "merge", "-q", "--ff-only", tip)
        else:
            update_ref(repo, base, tip, rev(repo, base))
    return tip


def clean_leftovers(repo: Path) -> list[str]:
    """Remove what a killed baseimage run left: its temporary worktrees (with their index locks)
    and stale lock files on its own branches. Returns what was removed."""
    removed = []
    root = common_dir(repo) / WORKTREES
    if root.is_dir():
        for tree in sorted(root.iterdir()):
            git(repo, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(tree, ignore_errors=True)
            removed.append(f"worktree {tree.name}")
    git(repo, "worktree", "prune", check=False)
    refs = common_dir(repo) / "refs" / "heads" / "baseimage"
    if refs.is_dir():
        for lock in refs.rglob("*.lock"):
            if time.time() - lock.stat().st_mtime > 5:  # not a run in progress
                lock.unlink(missing_ok=True)
                removed.append(f"lock {lock.name}")
    return removed


@contextmanager
def worktree(repo: Path, ref: str, *, detach: bool = True) -> Iterator[Path]:
    """`ref` checked out in a temporary worktree of `repo` (the caller's checkout is left alone),
    removed afterwards whatever happened. `detach=False` checks out the branch itself, to commit."""
    base = common_dir(repo) / WORKTREES
    base.mkdir(parents=True, exist_ok=True)
    tree = base / uuid.uuid4().hex[:12]
    git(repo, "worktree", "add", "-q", *(["--detach"] if detach else []), str(tree), ref)
    try:
        yield tree
    finally:
        git(repo, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(tree, ignore_errors=True)


def commit_on_branch(repo: Path, branch: str, files: dict[str, str], message: str) -> str | None:
    """Write `files` (relative path -> text) on `branch` in a temporary worktree and commit them,
    then move the branch to the commit, leaving the caller's checkout alone; None when nothing
    changed."""
    from tasks.files import write_atomic

    old = rev(repo, f"refs/heads/{branch}")
    if old is None:
        raise GitError(f"{repo}: no branch {branch} to commit on")
    with worktree(repo, old) as tree:
        for rel, text in files.items():
            write_atomic(tree / rel, text)
        git(tree, "add", "--", *files)
        if not git(tree, "status", "--porcelain").strip():
            return None
        new = commit(tree, message)
    update_ref(repo, branch, new, old)
    return new


def show(repo: Path, ref: str, path: str) -> str | None:
    """The text of `path` at `ref` (bytes kept: CRLF and non-UTF-8 survive), None when absent."""
    done = subprocess.run(
        ["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True, timeout=60, check=False
    )
    return done.stdout.decode("utf-8", "surrogateescape") if done.returncode == 0 else None


def base_branch(repo: Path, preferred: str) -> str:
    """`preferred` when that branch exists here, else the branch checked out."""
    if branch_exists(repo, preferred):
        return preferred
    return current_branch(repo)
