"""Commands run by hand do not start a Prefect server each time: the first one that needs an API
starts a persistent local server in the background (loopback only), later ones connect to it at
once, `baseimage history` reads the runs from it, and `baseimage server stop` ends it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.warm_process import warm_ready


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baseimage.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_first_command_starts_a_local_server_and_the_next_ones_reuse_it(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and k not in ("BASEIMAGE_SERVER", "BASEIMAGE_WARM")
    }
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_LOGGING_LEVEL="WARNING")
    review = ["review", "--sources", "offline", "--no-banner", "--no-docs", "--out", str(tmp_path / "reports")]
    try:
        status = cli(env, "server", "status")
        assert status.returncode == 3 and "not running" in status.stdout
        first = cli(env, *review)
        assert first.returncode in (0, 10), first.stdout + first.stderr
        assert "started a local Prefect server at http://127.0.0.1:" in first.stderr
        # The first command started the warm process beside the server, in the background.
        assert warm_ready(env), (tmp_path / "prefect-home" / "baseimage-warm.log").read_text()
        second = cli(env, *review)
        assert second.returncode == first.returncode, second.stdout + second.stderr
        assert "started a local Prefect server" not in second.stderr, "the second command reused it"
        warm_log = (tmp_path / "prefect-home" / "baseimage-warm.log").read_text()
        assert re.search(r"child \d+: baseimage review\n", warm_log), "the second review ran in the warm process"
        running = cli(env, "server", "status")
        assert running.returncode == 0 and running.stdout.startswith("running: http://127.0.0.1:")
        state = json.loads((tmp_path / "prefect-home" / "baseimage-server.json").read_text())
        history = cli(env, "history", "--json", "--flow", "quarterly-review")
        assert history.returncode == 0, history.stdout + history.stderr
        rows = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
        assert len(rows) == 2 and all(r["state"] == "Completed" for r in rows), rows
        assert all(r["link"].startswith(f"http://127.0.0.1:{state['port']}/runs/flow-run/") for r in rows)
    finally:
        stopped = cli(env, "server", "stop")
    assert stopped.returncode == 0 and "stopped the local Prefect server" in stopped.stdout
    assert "stopped the warm process" in stopped.stdout
    assert cli(env, "server", "status").returncode == 3
    assert not list((tmp_path / "prefect-home").glob("baseimage-warm-*.json")), "its state is gone with it"
