"""The installed names (baseimage/layout.py, README: Installation and package names): the
product's top-level packages are its own here, and where another package of the same name comes
first on the path the command says so and stops, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from baseimage import layout
from tests.conftest import REPO_ROOT


def test_this_checkout_owns_its_top_level_packages() -> None:
    assert layout.shadowed() == []
    assert layout.problem() is None


def test_a_shadowing_package_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "__init__.py").write_text('"""Someone else\'s Celery tasks."""\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "baseimage.cli", "docs", "check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"another package shadows baseimage's own: tasks (at {tmp_path / 'tasks'})" in done.stderr
    assert "Traceback" not in done.stderr
    assert layout.shadowed(tmp_path) != [], "measured against another root, every package is someone else's"


def test_the_users_own_tasks_and_services_folders_are_no_clash(tmp_path: Path) -> None:
    """Run as `python -m baseimage.cli` in a repository shaped like the user's (Celery `tasks/`,
    its own `flows/` and `services/` packages), the product still imports its own."""
    for name in ("tasks", "flows", "services", "deployments"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text('raise SystemExit("the user\'s package was imported")\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "baseimage.cli", "docs", "check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert "shadows" not in done.stderr, done.stderr
    assert "the user's package was imported" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr, done.stderr
