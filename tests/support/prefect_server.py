"""A real ``prefect server start`` on 127.0.0.1 (SQLite in a temporary PREFECT_HOME)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests.support.registry_server import free_port


def _api_session() -> requests.Session:
    """Requests to a Prefect API as Prefect's own client sends them: a 503 (the server's "retry me",
    sent when its database was busy and the transaction rolled back) is retried with back-off, so
    a loaded machine is not a failed test. Nothing else is retried: a refused connection or any
    other status reaches the test as it came."""
    retry = Retry(
        total=6,
        connect=0,
        read=0,
        other=0,
        status=6,
        status_forcelist=(503,),
        allowed_methods=None,
        backoff_factor=0.5,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


prefect_api = _api_session()

# Every deployment prefect.yaml registers (and `baseimage serve` serves).
DEPLOYMENTS = {
    "quarterly-review",
    "annual-update",
    "migrate",
    "validate",
    "soak-monitor",
    "rollback",
    "deprecation-watch",
    "retain",
}


def stop_group(process: subprocess.Popen[bytes] | subprocess.Popen[str] | None) -> None:
    """SIGTERM to the process group, SIGKILL after 20 s."""
    if process and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


class PrefectServer:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        return env

    def start(self, timeout: float = 90) -> PrefectServer:
        prefect = shutil.which("prefect") or str(Path(os.sys.executable).parent / "prefect")
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.env()
        env.pop("PREFECT_API_URL")
        env["PREFECT_UI_API_URL"] = self.api_url  # the UI's own calls go to this port, not 4200
        log = (self.home / "server.log").open("wb")
        self.process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--analytics-off"],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(self.home / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"prefect server on {self.api_url} not healthy within {timeout} s")

    def stop(self) -> None:
        stop_group(self.process)


class Worker:
    """A real ``prefect worker start --pool POOL`` (process type) against a PrefectServer.

    Started with SIGINT restored to its default, so that one SIGTERM stops it (a background
    process otherwise inherits SIGINT=ignored and the worker's SIGTERM handler waits forever)."""

    def __init__(self, pool: str, env: dict[str, str], log: Path) -> None:
        self.pool = pool
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        prefect = shutil.which("prefect") or str(Path(os.sys.executable).parent / "prefect")
        code = (
            "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
            "os.execv(sys.argv[1], [sys.argv[1], 'worker', 'start', '--pool', sys.argv[2], '--name', sys.argv[2] + '-w'])"
        )
        handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [os.sys.executable, "-c", code, prefect, self.pool],
            env=self.env,
            stdout=handle,
            stderr=handle,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        stop_group(self.process)


def form_saved(server: PrefectServer, run: dict[str, Any]) -> bool:
    keyset = run["state"]["state_details"].get("run_input_keyset")
    if not keyset:
        return True
    url = f"{server.api_url}/flow_runs/{run['id']}/input/{keyset['description']}"
    return requests.get(url, timeout=10).status_code == 200


def wait_paused(
    server: PrefectServer, proc: subprocess.Popen[str] | None = None, timeout: float = 150
) -> dict[str, Any]:
    """The first paused flow run on `server` whose approval form is saved, waited for; the run's
    process (`proc`) ending first fails the test with its output. Prefect marks a run PAUSED a
    moment before it saves the form (its schema, then the description the reviewer reads): a
    test that read the description in that gap saw none."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(proc.stdout.read() if proc.stdout else "the run's process exited")
        paused = prefect_api.post(
            f"{server.api_url}/flow_runs/filter",
            timeout=10,
            json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}},
        ).json()
        if paused and form_saved(server, paused[0]):
            return dict(paused[0])
        time.sleep(0.5)
    raise AssertionError(f"no paused run within {timeout:g} s")


def approve(server: PrefectServer, run_id: str, *extra: str) -> str:
    """`baseimage approve RUN_ID [extra]` against `server`, which must succeed; returns its output."""
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "baseimage.cli", "approve", run_id, *extra],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def approve_when_paused(
    server: PrefectServer, reviewer: str, proc: subprocess.Popen[str] | None = None, timeout: float = 150
) -> str:
    """Wait for a paused approval, approve it with `baseimage approve` (through the API); returns
    the description the reviewer was shown (the form's Markdown)."""
    paused = wait_paused(server, proc, timeout)
    keyset = paused["state"]["state_details"].get("run_input_keyset") or {}
    shown = prefect_api.get(f"{server.api_url}/flow_runs/{paused['id']}/input/{keyset['description']}", timeout=10)
    assert shown.status_code == 200, f"the approval form of {paused['id']} has no description: {shown.text}"
    description = str(shown.json())
    approve(server, paused["id"], "--reviewer", reviewer)
    return description
