"""The warm process: a command run by hand starts in about the time its own work takes, not
after the seconds it takes to import Prefect, pydantic's schemas and the product (about 3 s here).

Beside the persistent local Prefect server (baseimage/local_server.py) runs one more background
process, started with it (`baseimage server start`, or in the background by the first command
that uses the local server) and stopped with it: it has imported everything a command needs and
waits on a Unix socket. The ``baseimage`` command connects, hands over its argument list, working
directory, environment, umask and its own standard input, output and error (the file descriptors
themselves, so a terminal stays a terminal), and the warm process forks: the child is a process
like a freshly started command, in its own process group, whose output goes straight to the
caller. Its exit status comes back as the command's. Signals on the command reach the child as
they would the command (`_Forwarding`); a caller that goes away takes its child with it. The flow runs,
their state, retries and logs are Prefect's as before: only the import is shared.

Anything the warm process cannot vouch for runs in the command's own process, as before: no warm
process for this interpreter, installation, PYTHON* environment and Prefect home (the socket's
name is a hash of them), a product source file or installed package changed since it started
(it says "stale", stops taking commands and exits), ``baseimage server ...`` (which manages it),
or ``BASEIMAGE_WARM=off``. Only the user who started it can connect (a private directory, and
the peer's uid checked on every connection).

This module is the caller's side and imports only the standard library: it runs before anything
else in the ``baseimage`` command. The warm side is baseimage/cli/warm_server.py."""

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
# Their dispositions travel with the command: one its caller ignores, the child ignores too.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
CONNECT_TIMEOUT_S = 2.0
READY_TIMEOUT_S = 120.0
HEADER = struct.Struct("!I")
# Read by the interpreter or the C library when the process starts, beside PYTHON* and LD_*.
STARTUP_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")


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
        os.getgid(),
        sorted(os.getgroups()),  # after `newgrp docker` the Docker socket is another matter
        sys.executable,
        sys.prefix,
        str(product_root()),
        str(prefect_home().resolve()),
        # What Python reads at start-up: its own variables, and the locale its streams' encoding
        # comes from.
        sorted((k, v) for k, v in os.environ.items() if k.startswith(("PYTHON", "LD_")) or k in STARTUP_VARIABLES),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def runtime_dir() -> Path | None:
    """A directory only this user can enter (created on first use), or None where the one found
    is not: then nothing is started or connected to."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp")  # noqa: S108 - checked below
    folder = base / f"baseimage-{os.getuid()}"
    try:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700, parents=False)
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
    """Its pid and socket; one per socket (the fingerprint and the socket's directory), so that
    two installations sharing a Prefect home, or a cron job without XDG_RUNTIME_DIR, keep their
    own."""
    where = str(socket_path() or fingerprint())
    return prefect_home() / f"baseimage-warm-{hashlib.sha256(where.encode()).hexdigest()[:20]}.json"


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
            "unbuffered": bool(getattr(sys.stdout, "write_through", False)),
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
        with _Forwarding(child):
            ended = lines.next()
        if ended is not None and "refused" in ended:
            return None  # the child never started the command (the warm process died first): run it here
        if ended is None or "exit" not in ended:
            print(
                f"error: lost touch with the command in the warm baseimage process (pid {child}): it may still be "
                f"running; its log is {prefect_home() / LOG}. BASEIMAGE_WARM=off runs commands in their own process.",
                file=sys.stderr,
            )
            return 1
        code = int(str(ended["exit"]))
        if "signal" in ended:  # ended by a signal (Ctrl-C included): so does this process, as the command's would
            number = int(str(ended["signal"]))
            with contextlib.suppress(OSError, ValueError):
                if number != signal.SIGKILL:  # whose disposition cannot be set (nor need be)
                    signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)
        return code


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _Forwarding:
    """While the child runs, this process stands in for it: what a terminal sends to the command's
    process group (Ctrl-C, Ctrl-\\, hang-up) goes to the child's; what is sent to one process (SIGTERM,
    a window-size change) to the child; Ctrl-Z stops the child's group and then this process, and
    when this one is continued so is the child. Signals this process ignores stay ignored."""

    GROUP = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
    PROCESS = (signal.SIGTERM, signal.SIGWINCH)

    def __init__(self, child: int) -> None:
        self.child = child
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _Forwarding:
        for sig in (*self.GROUP, *self.PROCESS, signal.SIGTSTP, signal.SIGCONT):
            if signal.getsignal(sig) != signal.SIG_IGN:
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def handle(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGTSTP:
            self.send(signal.SIGSTOP, group=True)
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)  # stops here until continued
            signal.signal(signal.SIGTSTP, self.handle)
        elif signum == signal.SIGCONT:
            self.send(signal.SIGCONT, group=True)
        else:
            self.send(signum, group=signum in self.GROUP)

    def send(self, signum: int, *, group: bool) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the child may have ended
            if group:
                os.killpg(self.child, signum)
            else:
                os.kill(self.child, signum)


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
    # Prefect's console handler decides on colour when it is made: a terminal's is another one.
    terminal = (os.isatty(2), os.environ.get("TERM"), os.environ.get("FORCE_COLOR"), os.environ.get("NO_COLOR"))
    return (str(path), info.st_mtime_ns, info.st_size, tuple(values), tuple(overrides), terminal)


# ---------------------------------------------------------------- managing it


def _read_state(state: Path) -> WarmProcess | None:
    try:
        data = json.loads(state.read_text())
        return WarmProcess(int(data["pid"]), str(data["socket"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running() -> WarmProcess | None:
    """The warm process for this caller, when it answers on its socket."""
    path = socket_path()
    if path is None:
        return None
    found = _read_state(state_file())
    if found is None or found.socket != str(path):
        return None
    conn = _connect(path)
    if conn is None:
        return None
    conn.close()
    return found


def _starting_or_serving(path: Path) -> bool:
    """Whether a warm process holds this socket's lock: it takes it before it imports anything."""
    import fcntl

    try:
        with path.with_suffix(".lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        return True  # cannot tell: start nothing
    return False


def spawn() -> subprocess.Popen[bytes] | None:
    """Start the warm process in the background unless one runs or is starting (the process, or
    None). The caller need not wait for it: the commands after it use it once it is ready."""
    path = socket_path()
    if not enabled() or path is None or _starting_or_serving(path):
        return None
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    log = os.open(home / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        return subprocess.Popen(
            # -P: nothing from the working directory ("/") is importable.
            [sys.executable, "-P", "-m", "baseimage.cli.warm_server", str(path)],
            cwd="/",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this command: that is the point
        )
    finally:
        os.close(log)


def _is_warm_process(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"baseimage.cli.warm_server" in command


def wait_ready(process: subprocess.Popen[bytes] | None = None, timeout: float = READY_TIMEOUT_S) -> WarmProcess | None:
    """The warm process once it answers; None after `timeout`, or at once when `process` (the one
    `spawn` started) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = running()
        if found:
            return found
        if process is not None and process.poll() is not None:
            return running()
        time.sleep(0.1)
    return None


@dataclass(frozen=True)
class Stopped:
    process: WarmProcess
    exited: bool  # False: still finishing the commands it was running when asked to stop


def stop(timeout: float = 20.0) -> list[Stopped]:
    """Stop every warm process of this Prefect home (any interpreter or installation that shares
    it), each asked with SIGTERM: it takes no more commands and exits when those it is running
    have ended."""
    stopped = []
    for state in sorted(prefect_home().glob("baseimage-warm-*.json")):
        found = _read_state(state)
        if found is None or not _is_warm_process(found.pid):  # gone, its pid perhaps another's now
            state.unlink(missing_ok=True)
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(found.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_warm_process(found.pid):
            time.sleep(0.05)
        exited = not _is_warm_process(found.pid)
        if exited:
            state.unlink(missing_ok=True)  # it removes its own; one killed outright cannot
        stopped.append(Stopped(found, exited))
    return stopped
