"""The warm process: a command run by hand starts in about the time its own work takes, not
after two seconds of importing Prefect, pydantic's schemas and the product.

Beside the persistent local Prefect server (baseimage/local_server.py) runs one more background
process, started with it (`baseimage server start`, or in the background by the first command
that uses the local server) and stopped with it: it has imported everything a command needs and
waits on a Unix socket. The ``baseimage`` command connects, hands over its argument list, working
directory, environment, umask and its own standard input, output and error (the file descriptors
themselves, so a terminal stays a terminal), and the warm process forks: the child is a process
like a freshly started command, in its own process group, whose output goes straight to the
caller. Its exit status comes back as the command's. Ctrl-C and SIGTERM on the command are passed
on to the child's process group; a caller that goes away takes its child with it. The flow runs,
their state, retries and logs are Prefect's as before: only the import is shared.

Anything the warm process cannot vouch for runs in the command's own process, as before: no warm
process for this interpreter, installation, PYTHON* environment and Prefect home (the socket's
name is a hash of them), a product source file or installed package changed since it started
(it says "stale", stops taking commands and exits), ``baseimage server ...`` (which manages it),
or ``BASEIMAGE_WARM=off``. Only the user who started it can connect (a private directory, and
the peer's uid checked on every connection).

This module is the caller's side and imports only the standard library: it runs before anything
else in the ``baseimage`` command. The warm side is baseimage/warm_server.py."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "BASEIMAGE_WARM"
IDLE_ENV = "BASEIMAGE_WARM_IDLE_S"
OFF = ("off", "0", "false", "no")
PROTOCOL = 1
LOG = "baseimage-warm.log"
# Passed on to the child's process group, as a terminal would to a command in the foreground.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
CONNECT_TIMEOUT_S = 2.0
READY_TIMEOUT_S = 120.0
HEADER = struct.Struct("!I")


def enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in OFF


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def product_root() -> Path:
    """The folder that holds `baseimage/`, `flows/` and `tasks/`."""
    return Path(__file__).resolve().parent.parent


def fingerprint() -> str:
    """What the warm process must share with the caller to stand in for its start-up: the
    interpreter, the installation, the environment Python reads at start-up and the Prefect home."""
    parts = [
        PROTOCOL,
        os.getuid(),
        sys.executable,
        sys.prefix,
        str(product_root()),
        str(prefect_home().resolve()),
        # What Python reads at start-up: its own variables, and the locale its streams' encoding
        # comes from.
        sorted((k, v) for k, v in os.environ.items() if k.startswith("PYTHON") or k in ("LANG", "LC_ALL", "LC_CTYPE")),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def runtime_dir() -> Path | None:
    """A directory only this user can enter (created on first use), or None where the one found
    is not: then nothing is started or connected to."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp")  # noqa: S108 - checked below
    folder = base / f"baseimage-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=False)
    try:
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def socket_path() -> Path | None:
    folder = runtime_dir()
    return folder / f"warm-{fingerprint()}.sock" if folder else None


def state_file() -> Path:
    """Its pid and socket; one per fingerprint, so that two installations sharing a Prefect home
    keep their own."""
    return prefect_home() / f"baseimage-warm-{fingerprint()}.json"


@dataclass(frozen=True)
class WarmProcess:
    pid: int
    socket: str


def first_command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def _connect(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(CONNECT_TIMEOUT_S)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        return None
    client.settimeout(None)
    return client


class _Lines:
    """JSON lines from the warm process, one at a time."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""

    def next(self) -> dict[str, object] | None:
        while b"\n" not in self.buffer:
            try:
                chunk = self.conn.recv(4096)
            except OSError:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        value = json.loads(line)
        return value if isinstance(value, dict) else None


def run_warm(argv: list[str]) -> int | None:
    """Run the command in a child of the warm process; its exit status, or None where this
    process must run it itself (nothing of the command has run then)."""
    if not enabled() or first_command(argv) == "server":
        return None
    path = socket_path()
    if path is None or not path.exists():
        return None
    conn = _connect(path)
    if conn is None:
        return None
    with conn:
        request = {
            "protocol": PROTOCOL,
            "fingerprint": fingerprint(),
            "argv": argv,
            "argv0": sys.argv[0] if sys.argv else "baseimage",
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "umask": _umask(),
            # A command started in the background by a shell has SIGINT ignored: so has its child.
            "ignored": [int(sig) for sig in FORWARDED if signal.getsignal(sig) == signal.SIG_IGN],
        }
        body = json.dumps(request).encode()
        try:
            socket.send_fds(conn, [HEADER.pack(len(body)) + body], [0, 1, 2])
        except OSError:
            return None
        lines = _Lines(conn)
        started = lines.next()
        if not started or "pid" not in started:
            return None  # refused (stale, draining) or gone before the fork: run it here
        child = int(str(started["pid"]))
        previous = {
            sig: signal.signal(sig, _forward(child)) for sig in FORWARDED if signal.getsignal(sig) != signal.SIG_IGN
        }
        try:
            ended = lines.next()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if ended is None or "exit" not in ended:
            print(
                f"error: the warm baseimage process ended while running this command (child pid {child}); "
                f"its log is {prefect_home() / LOG}. BASEIMAGE_WARM=off runs commands in their own process.",
                file=sys.stderr,
            )
            return 1
        if "signal" in ended:  # ended by a signal (Ctrl-C included): so does this process, as the command's would
            number = int(str(ended["signal"]))
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        return int(str(ended["exit"]))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _forward(child: int):  # type: ignore[no-untyped-def]
    def handler(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signum)

    return handler


# Set in the warm process, and so in its children: Prefect was imported before the command's
# environment was set, and its logging configured as `preconfigured_logging` (`logging_key`).
imported_early = False
preconfigured_logging: tuple[object, ...] | None = None


def prefect_follows_environment(logging_too: bool = False) -> None:
    """In a child of the warm process, Prefect was imported (and read its settings, and configured
    logging) before the command's environment was set: read the settings again from the
    environment as it is now, and configure logging again unless the warm process configured it
    from the same settings and file (about 0.15 s, most of it Prefect rendering every setting into
    its template). Nothing to do in a command's own process, which imports Prefect after that
    (nor in a test calling `main` in a process that goes on, which keeps its own settings)."""
    if not imported_early or "prefect.context" not in sys.modules:
        return
    import prefect.context

    prefect.context.refresh_global_settings_context()
    key = logging_key() if logging_too else None
    if logging_too and (key is None or key != preconfigured_logging):
        import prefect.logging.configuration

        prefect.logging.configuration.setup_logging(incremental=False)


def logging_key() -> tuple[object, ...] | None:
    """What Prefect's logging configuration is made from: the file in use (and its stamp), the
    settings its template names, and the PREFECT_LOGGING_* variables that override it. None when
    a name in the template is no setting this can read (then logging is always set up again)."""
    import string

    import prefect.logging.configuration as configuration
    import prefect.settings

    path = Path(prefect.settings.PREFECT_LOGGING_SETTINGS_PATH.value())
    if not path.exists():
        path = configuration.DEFAULT_LOGGING_SETTINGS_PATH
    try:
        text, info = path.read_text(), path.stat()
    except OSError:
        return None
    values = []
    for name in sorted(string.Template(text).get_identifiers()):
        setting = getattr(prefect.settings, name, None)
        if not hasattr(setting, "value"):
            return None
        values.append((name, str(setting.value())))  # type: ignore[union-attr]
    overrides = sorted((k, v) for k, v in os.environ.items() if k.startswith("PREFECT_LOGGING_"))
    return (str(path), info.st_mtime_ns, info.st_size, tuple(values), tuple(overrides))


# ---------------------------------------------------------------- managing it


def running() -> WarmProcess | None:
    """The warm process for this caller, when it answers on its socket."""
    path = socket_path()
    if path is None:
        return None
    try:
        data = json.loads(state_file().read_text())
        found = WarmProcess(int(data["pid"]), str(data["socket"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if found.socket != str(path):
        return None
    conn = _connect(path)
    if conn is None:
        return None
    conn.close()
    return found


def spawn() -> bool:
    """Start the warm process in the background unless it runs (True: started now). The caller
    does not wait for it: the commands after it use it once it is ready."""
    if not enabled() or running():
        return False
    path = socket_path()
    if path is None:
        return False
    stop()  # a state file left by one that is gone
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    with (home / LOG).open("ab") as log:
        subprocess.Popen(
            # -P: nothing from the working directory ("/") is importable.
            [sys.executable, "-P", "-m", "baseimage.warm_server", str(path)],
            cwd="/",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this command: that is the point
        )
    return True


def _is_warm_process(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"baseimage.warm_server" in command


def wait_ready(timeout: float = READY_TIMEOUT_S) -> WarmProcess | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = running()
        if found:
            return found
        time.sleep(0.1)
    return None


def stop(timeout: float = 20.0) -> WarmProcess | None:
    """Stop the warm process for this caller (None: none ran). Commands it is running finish."""
    try:
        data = json.loads(state_file().read_text())
        found = WarmProcess(int(data["pid"]), str(data["socket"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _is_warm_process(found.pid):  # gone, and its pid perhaps another process's now
        state_file().unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(found.socket).exists():
        time.sleep(0.05)
    state_file().unlink(missing_ok=True)
    return found
