"""A persistent local Prefect server for commands run by hand, so that no command waits for a
temporary server to start (and stop): the first command that needs an API starts one in the
background (loopback only, telemetry off; its state in ``$PREFECT_HOME/baseimage-server.json``)
and every later command connects at once. `baseimage server start|stop|status` manage it; runs,
history, paused approvals and the UI survive between commands.

`PREFECT_API_URL` set: that server is used and nothing is started. ``BASEIMAGE_SERVER=off``:
Prefect's temporary per-process server is used instead (given a longer start-up timeout)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from baseimage import warm
from baseimage.warm import prefect_home
from tasks.errors import BaseImageError

STATE = "baseimage-server.json"
DEFAULT_PORT = 4200
START_TIMEOUT_S = 90.0
OFF = ("off", "0", "false", "no", "temporary")


class ServerError(BaseImageError):
    """The local Prefect server did not start; the message has its log's last lines."""


@dataclass(frozen=True)
class LocalServer:
    pid: int
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _state_file() -> Path:
    return prefect_home() / STATE


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running() -> LocalServer | None:
    """The local server started earlier, when it still answers."""
    try:
        data = json.loads(_state_file().read_text())
        server = LocalServer(int(data["pid"]), int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(server.pid) and _healthy(server.api_url):
        return server
    return None


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise ServerError("no free loopback port for the local Prefect server")


def _spawn(port: int, log: Path) -> subprocess.Popen[bytes]:
    prefect = shutil.which("prefect") or str(Path(sys.executable).parent / "prefect")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(prefect_home()),
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",  # the UI calls this port, not its 4200 default
    )
    with log.open("ab") as handle:
        return subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
            env=env,
            stdout=handle,
            stderr=handle,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command: that is the point
        )


def start(port: int = DEFAULT_PORT, timeout: float = START_TIMEOUT_S) -> tuple[LocalServer, bool]:
    """The running local server, or a new one (second value: whether it was started now). A
    server that does not answer within `timeout` is stopped and started once more."""
    found = running()
    if found:
        return found, False
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "baseimage-server.log"
    problem = ""
    for _attempt in range(2):
        chosen = _free_port(port)
        process = _spawn(chosen, log)
        server = LocalServer(process.pid, chosen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                problem = f"it exited with code {process.returncode}"
                break
            if _healthy(server.api_url):
                _state_file().write_text(json.dumps({"pid": server.pid, "port": server.port, "started": time.time()}))
                return server, True
            time.sleep(0.25)
        else:
            problem = f"it did not answer within {timeout:g} s"
        _terminate(process.pid)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
    raise ServerError(
        f"the local Prefect server did not start ({problem}, twice); its log is {log}:\n{tail}\n"
        "Set PREFECT_API_URL to a server you run, or BASEIMAGE_SERVER=off to use a temporary one per command"
    )


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def stop() -> LocalServer | None:
    """Stop the local server (None: none was running)."""
    found = running()
    try:
        data = json.loads(_state_file().read_text())
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return found
    _terminate(pid)
    _state_file().unlink(missing_ok=True)
    return found or LocalServer(pid, int(data.get("port", 0)))


def api_for_this_command() -> tuple[str | None, str]:
    """Point this process at an API, before Prefect is imported where it is not yet: the
    configured one, the running local server, or a local server started now (and the warm
    process beside it, in the background). Returns (URL or None for a temporary server, what
    was done, for the user)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"], ""
    if os.environ.get("BASEIMAGE_SERVER", "").strip().lower() in OFF:
        # Prefect's default 20 s is too short on a loaded 2-core machine.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
        return None, "a temporary Prefect server for this command (BASEIMAGE_SERVER=off)"
    server, started = start()
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ.setdefault("PREFECT_UI_URL", server.ui_url)
    warm.prefect_follows_environment()
    warm.spawn()  # for the commands after this one; not waited for (nor started where one is starting)
    if started:
        return server.api_url, (
            f"started a local Prefect server at {server.ui_url} (it keeps the runs, the history and paused "
            "approvals between commands; `baseimage server stop` stops it)"
        )
    return server.api_url, ""
