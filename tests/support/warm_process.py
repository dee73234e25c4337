"""Start and stop a warm process (baseimage/warm.py) for an environment other than this
process's: it is keyed on that environment's Prefect home and PYTHON* variables, so it is started
from a Python process that has them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from baseimage import warm


def _manage(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"from baseimage import warm; import sys; {code}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def start_warm(env: dict[str, str]) -> None:
    """Start it for `env` (which must not turn it off) and wait until it answers."""
    started = _manage(env, "p = warm.spawn(); sys.exit(0 if warm.wait_ready(p) else 1)")
    if started.returncode != 0:
        log = Path(env["PREFECT_HOME"]) / warm.LOG
        raise RuntimeError(
            f"the warm process did not start: {started.stderr}\n{log.read_text() if log.exists() else ''}"
        )


def warm_ready(env: dict[str, str], timeout: float = 60) -> bool:
    """Whether the warm process for `env` answers within `timeout` (one started by someone else)."""
    return _manage(env, f"sys.exit(0 if warm.wait_ready(timeout={timeout!r}) else 1)").returncode == 0


def stop_warm(env: dict[str, str]) -> None:
    _manage(env, "warm.stop()")
