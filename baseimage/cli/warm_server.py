"""The warm side of baseimage/warm.py: ``python -P -m baseimage.cli.warm_server SOCKET``, started
in the background by `warm.spawn`.

It imports what a command needs (the product's packages and the parts of Prefect a flow run
loads, numpy's BLAS held to one thread), checks that the process has no thread but its own,
counted by the OS (a fork copies only the thread that calls it, so a process with others is not
safe to fork: then it exits and commands run in their own process), records the size and
modification time of every product module it loaded, of the installed packages' folders and of
Prefect's profiles (exiting at once if one changed while it imported), and serves one connection
at a time from a single thread:

- the peer must be this user (SO_PEERCRED), the request this protocol and fingerprint, with the
  PREFECT_* variables Prefect read at import the same as here and no Prefect settings file in
  the working directory (Prefect reads task and flow defaults when a module declares them);
- a changed source file or installed package answers "stale": the request runs in the caller's
  own process, and this one stops taking commands and exits when its children have ended;
- otherwise it forks. The parent tells the caller the child's pid and only then lets the child
  go (a caller that never heard of a child runs the command itself, so that child never runs
  it); the child makes itself the command's process (`_become_the_command`), runs it and
  reports its exit status itself (it outlives a warm process that dies meanwhile); the parent
  watches the connection (a caller that goes away gets its child's process group sent SIGTERM)
  and reports a child that a signal ended.

SIGTERM (`baseimage server stop`) closes the socket at once; children that are running finish.
With no child and no request for BASEIMAGE_WARM_IDLE_S seconds (default an hour) it exits."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import importlib
import io
import json
import logging
import os
import pkgutil
import selectors
import signal
import socket
import struct
import sys
import sysconfig
import threading
import time
import tomllib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baseimage import warm

# Loaded by a flow run, not by importing the product: importing them here is most of the gain.
THIRD_PARTY = (
    "prefect.main",
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.concurrency.sync",
    "prefect.concurrency.asyncio",
    "anyio._backends._asyncio",
    "fastapi.encoders",  # Prefect serialises a flow's parameters with it
    "graphviz",  # and imports it for a flow's visualisation
    "docker",
    "pandas",
    "netrc",
)
PRODUCT = ("baseimage", "flows", "tasks")
DEFAULT_IDLE_S = 3600.0
PEERCRED = struct.Struct("3i")
GRACE_S = 0.5
SINGLE_THREADED = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def log(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a full disk never stops the commands
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} warm[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def preload() -> list[str]:
    """Import the product's modules and `THIRD_PARTY`; what could not be imported (the command
    that needs it imports it, or fails, as it would without this process)."""
    missing = []
    for name in PRODUCT:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if module.name.endswith(".__main__") or module.name == "baseimage.cli.warm_server":
                continue
            try:
                importlib.import_module(module.name)
            except Exception as exc:  # a module a command may never need
                missing.append(f"{module.name} ({exc})")
    for name in THIRD_PARTY:
        try:
            importlib.import_module(name)
        except Exception as exc:
            missing.append(f"{name} ({exc})")
    return missing


@dataclass(frozen=True)
class Stamps:
    """Size and mtime of every loaded product module and of the installed packages' folder."""

    files: dict[str, tuple[int, int]]

    @classmethod
    def now(cls) -> Stamps:
        """Every product module loaded, and what `_beside_the_modules` names."""
        paths = set(_beside_the_modules())
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path and name.split(".")[0] in PRODUCT:
                paths.add(path)
        return cls.of(sorted(paths))

    @classmethod
    def of(cls, paths: list[str]) -> Stamps:
        return cls({path: _stamp(path) for path in paths})

    def changed(self) -> str | None:
        for path, stamp in self.files.items():
            if _stamp(path) != stamp:
                return path
        return None

    def changed_since(self, earlier: Stamps) -> str | None:
        """A file whose stamp differs from `earlier`'s (it changed while the imports ran, so
        what was loaded may be older than what is on disk)."""
        return next((p for p, stamp in self.files.items() if p in earlier.files and earlier.files[p] != stamp), None)


# Read by Prefect when a command runs, or handled here: the rest of PREFECT_* is read when Prefect
# or a module declaring tasks is imported (task and flow defaults), so it must be the same.
PER_COMMAND = (
    "PREFECT_API_URL",
    "PREFECT_UI_URL",
    "PREFECT_API_KEY",
    "PREFECT_HOME",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
)


def _beside_the_modules() -> list[str]:
    """Watched besides the product's modules: the installed packages' folders (an install or a
    removal changes them) and Prefect's profiles (settings read at import)."""
    paths = sysconfig.get_paths()
    profiles = os.environ.get("PREFECT_PROFILES_PATH") or str(warm.prefect_home() / "profiles.toml")
    return [paths["purelib"], paths["platlib"], profiles]


def _sources() -> list[str]:
    """What `Stamps.now` will watch, found before anything is imported: the product's modules on
    disk and what `_beside_the_modules` names."""
    root = warm.product_root()
    return [*(str(p) for name in PRODUCT for p in (root / name).rglob("*.py")), *_beside_the_modules()]


def prefect_environment(env: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted(
        (k, str(v))
        for k, v in env.items()
        if k.startswith("PREFECT_") and k not in PER_COMMAND and not k.startswith("PREFECT_LOGGING_")
    )


def prefect_files(cwd: Path) -> str | None:
    """A file in the working directory that Prefect reads settings from at import, when it has
    some: prefect.toml, pyproject.toml's [tool.prefect], and PREFECT_* keys in .env other than
    those read per command (`prefect_environment`)."""
    toml = cwd / "prefect.toml"
    if toml.is_file():
        return str(toml)
    pyproject = cwd / "pyproject.toml"
    try:
        with pyproject.open("rb") as handle:
            tool = tomllib.load(handle).get("tool", {})
        if isinstance(tool, dict) and "prefect" in tool:
            return str(pyproject)
    except (OSError, tomllib.TOMLDecodeError):
        pass
    dotenv = cwd / ".env"
    try:
        with dotenv.open(errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return None
    keys = {}
    for line in text.splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and not key.startswith("#"):
            keys[key.strip()] = value
    return str(dotenv) if prefect_environment(keys) else None


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    """One JSON line to the caller (`warm._Lines` reads them)."""
    conn.sendall(json.dumps(message).encode() + b"\n")


def _refuse(conn: socket.socket, fds: list[int], why: str) -> None:
    """Tell the caller to run the command itself, and let go of what it sent."""
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        _send(conn, {"refused": why})
    conn.close()


def _stamp(path: str) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (info.st_mtime_ns, info.st_size)


@dataclass
class Server:
    path: Path
    stamps: Stamps
    idle_s: float
    listener: socket.socket | None = None
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    children: dict[int, socket.socket] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    draining: str = ""
    last: float = field(default_factory=time.monotonic)
    wakeup: tuple[int, int] = (-1, -1)
    lock: Any = None  # held while the socket is served; a successor waits for it
    owner: int = field(default_factory=os.getpid)
    # Callers whose connection closed, with when their child is sent SIGTERM if it still runs (a
    # child that reported its exit status closes it too, a moment before it ends).
    gone: dict[int, float] = field(default_factory=dict)

    def open(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(16)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self.wakeup = (read, write)
        self.selector.register(read, selectors.EVENT_READ, "signal")
        signal.set_wakeup_fd(write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self.drain("stopped (SIGTERM)"))
        signal.signal(signal.SIGINT, lambda *_: self.drain("stopped (SIGINT)"))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def drain(self, why: str) -> None:
        if not self.draining:
            self.draining = why
            log(f"{why}: no more commands; {len(self.children)} running")

    def close_listener(self) -> None:
        if self.listener is None or os.getpid() != self.owner:
            return
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.lock is not None:
            self.lock.close()  # releases the flock: a new warm process may take the socket now
            self.lock = None

    def serve(self) -> None:
        while True:
            for key, _events in self.selector.select(timeout=0.2 if self.gone else 1.0):
                if key.data == "accept":
                    self.accept()
                elif key.data == "signal":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup[0], 512)
                else:
                    self.caller_gone(key.data, key.fileobj)  # type: ignore[arg-type]
            self.reap()
            self.stop_orphans()
            if self.draining:
                self.close_listener()
                if not self.children:
                    return
            elif not self.children and time.monotonic() - self.last > self.idle_s:
                self.drain(f"idle for {self.idle_s:g} s")

    def accept(self) -> None:
        assert self.listener is not None
        conn, _ = self.listener.accept()
        self.last = time.monotonic()
        try:
            self.handle(conn)
        except Exception as exc:  # one bad request never takes the commands that run down with it
            log(f"request failed: {type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                conn.close()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        fds: list[int] = []
        try:
            _pid, uid, _gid = PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
            if uid != os.getuid():
                log(f"refused a connection from uid {uid}")
                conn.close()
                return
            data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
            if not data:  # `warm.running` checking that this process answers
                conn.close()
                return
            if len(data) < warm.HEADER.size:
                raise ValueError("short request")
            (size,) = warm.HEADER.unpack(data[: warm.HEADER.size])
            body = data[warm.HEADER.size :]
            while len(body) < size:
                chunk = conn.recv(size - len(body))
                if not chunk:
                    raise ValueError("request cut short")
                body += chunk
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            log(f"bad request: {exc}")
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        command = warm.first_command([str(a) for a in request.get("argv") or []]) or ""
        refusal = self.refusal(request, fds)
        if refusal:
            log(f"refused baseimage {command}: {refusal}")
            _refuse(conn, fds, refusal)
            return
        # The child waits for "go", sent once the caller knows its pid: a caller that never hears
        # of a child runs the command itself, so a child it never heard of must never run it.
        go_read, go_write = os.pipe()
        try:
            child = os.fork()
        except OSError as exc:
            os.close(go_read)
            os.close(go_write)
            _refuse(conn, fds, f"cannot fork: {exc}")
            return
        if child == 0:
            os.close(go_write)
            self._child(conn, fds, request, go_read)  # never returns
        os.close(go_read)
        with contextlib.suppress(OSError):  # the child does it too: whichever runs first
            os.setpgid(child, child)
        for fd in fds:
            os.close(fd)
        self.children[child] = conn
        self.started[child] = time.monotonic()
        try:
            _send(conn, {"pid": child})
            os.write(go_write, b"g")
        except OSError:
            os.close(go_write)  # no "go": the child exits without running anything
            self.caller_gone(child, conn)
            return
        os.close(go_write)
        self.selector.register(conn, selectors.EVENT_READ, child)
        # The command's name only: its arguments and environment may hold what the log must not.
        log(f"child {child}: baseimage {command}".rstrip())

    def refusal(self, request: dict[str, Any], fds: list[int]) -> str:
        if self.draining:
            return self.draining
        if request.get("protocol") != warm.PROTOCOL or request.get("fingerprint") != warm.fingerprint():
            return "another interpreter, installation or environment"
        if len(fds) != 3:
            return "no standard input, output and error passed"
        changed = self.stamps.changed()
        if changed:
            self.drain(f"stale: {changed} changed since this process started")
            return f"stale: {changed} changed"
        env = request.get("env")
        if not isinstance(env, dict) or prefect_environment(env) != prefect_environment(os.environ):
            return "other Prefect settings in the environment than this process imported Prefect with"
        found = prefect_files(Path(str(request.get("cwd"))))
        if found:
            return f"Prefect settings in {found}, read when Prefect is imported"
        return ""

    def caller_gone(self, child: int, conn: socket.socket) -> None:
        """The caller's end became readable: it sends nothing after its request, so it is gone,
        killed or done (it closes once its child has reported): its child gets SIGTERM unless it
        ends within `GRACE_S`."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        self.gone.setdefault(child, time.monotonic() + GRACE_S)

    def stop_orphans(self) -> None:
        now = time.monotonic()
        for child, deadline in list(self.gone.items()):
            if child not in self.children:
                del self.gone[child]
            elif now >= deadline:
                del self.gone[child]
                log(f"the caller of {child} went away: SIGTERM to its process group")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child, signal.SIGTERM)
                    os.killpg(child, signal.SIGCONT)  # a group stopped by Ctrl-Z gets it too

    def reap(self) -> None:
        while self.children:
            try:
                child, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if child == 0:
                return
            conn = self.children.pop(child, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            took = time.monotonic() - self.started.pop(child, time.monotonic())
            log(f"child {child}: exit {code} after {took:.2f} s")
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            ended: dict[str, int] = {"exit": code} if code >= 0 else {"exit": 128 - code, "signal": -code}
            with contextlib.suppress(OSError):
                _send(conn, ended)
            conn.close()
            self.last = time.monotonic()

    def _child(self, conn: socket.socket, fds: list[int], request: dict[str, Any], go: int) -> None:
        try:
            self._command(conn, fds, request, go)
        finally:
            os._exit(70)  # whatever happened, a child never returns into the warm process's frames

    def _command(self, conn: socket.socket, fds: list[int], request: dict[str, Any], go: int) -> None:
        code, report = 70, -1
        try:
            os.setpgid(0, 0)
            if os.read(go, 1) != b"g":  # the warm process failed before its "go": run it there
                with contextlib.suppress(OSError):
                    _send(conn, {"refused": "not started"})
                os._exit(code)
            os.close(go)
            signal.set_wakeup_fd(-1)
            # The signals as a new interpreter sets them, and ignored where the caller ignores them.
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for number in request.get("ignored", []):
                signal.signal(signal.Signals(int(number)), signal.SIG_IGN)
            self.selector.close()
            if self.listener is not None:
                self.listener.close()
            for other in self.children.values():
                other.close()
            if self.lock is not None:
                self.lock.close()  # the flock stays the parent's: the open file is shared, not its lock
                self.lock = None
            os.close(self.wakeup[0])
            os.close(self.wakeup[1])
            report = conn.detach()  # the child reports its own exit: it outlives a warm process that dies
            _become_the_command(fds, request)
        except BaseException:  # the command never started: say why, on its stderr
            with contextlib.suppress(Exception):
                os.write(2, f"error: the warm process could not start the command:\n{traceback.format_exc()}".encode())
            os._exit(code)
        code, interrupted = _run(list(request["argv"]))
        code = _finish(code)
        ended = {"exit": 128 + signal.SIGINT, "signal": int(signal.SIGINT)} if interrupted else {"exit": code}
        with contextlib.suppress(OSError):
            os.write(report, json.dumps(ended).encode() + b"\n")
        if interrupted:  # as the interpreter ends after an uncaught KeyboardInterrupt: by SIGINT
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def _become_the_command(fds: list[int], request: dict[str, Any]) -> None:
    """This process as the caller's: its standard streams, directory, umask, environment and
    argv; the root logger as a fresh process has it (`app.main` reads Prefect's settings and
    logging configuration again once it has set its own)."""
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    sys.argv = [str(request["argv0"]), *request["argv"]]
    time.tzset()  # the C library read TZ when this process started, not the caller's
    encoding, errors = sys.stdout.encoding, sys.stdout.errors or "strict"
    unbuffered = bool(request.get("unbuffered"))  # python -u, PYTHONUNBUFFERED
    # As the interpreter makes them: stdout line-buffered on a terminal, stderr always.
    streams = {
        "stdin": _stream(0, encoding, errors, line_buffering=False, unbuffered=False),
        "stdout": _stream(1, encoding, errors, line_buffering=os.isatty(1), unbuffered=unbuffered),
        "stderr": _stream(2, encoding, "backslashreplace", line_buffering=True, unbuffered=unbuffered),
    }
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    # Logging as before the imports: the command configures it first, then Prefect over it.
    for handler in logging.root.handlers[:]:
        logging.root.removeHandler(handler)


def _stream(fd: int, encoding: str, errors: str, *, line_buffering: bool, unbuffered: bool) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered, encoding=encoding, errors=errors, line_buffering=line_buffering, write_through=unbuffered
    )


def _run(argv: list[str]) -> tuple[int, bool]:
    """The command's exit status, and whether it ended in an uncaught KeyboardInterrupt."""
    from baseimage import cli

    try:
        return cli.run_here(argv), False
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0), False
        print(exc.code, file=sys.stderr)
        return 1, False
    except KeyboardInterrupt:
        traceback.print_exc()
        return 128 + signal.SIGINT, True
    except BaseException:  # as the interpreter would: the traceback, status 1
        traceback.print_exc()
        return 1, False


def _finish(code: int) -> int:
    """What the interpreter does on the way out, before the process ends: wait for the threads
    that are not daemons, run the exit handlers, flush the standard streams (a flush that fails,
    a closed pipe say, makes the status 120, as it does there)."""
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -P -m baseimage.cli.warm_server SOCKET", file=sys.stderr)
        return 2
    path = Path(args[0])
    if path != warm.socket_path():
        log(f"{path} is not this environment's socket ({warm.socket_path()}); not serving")
        return 2
    lock = path.with_suffix(".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another warm process serves this socket")
        return 0
    state = warm.state_file()
    state.parent.mkdir(parents=True, exist_ok=True)
    # Written before the imports, so that `baseimage server stop` finds one that is still starting.
    state.write_text(json.dumps({"pid": os.getpid(), "socket": str(path), "started": time.time()}))
    started = time.monotonic()
    before = Stamps.of(_sources())
    # numpy's BLAS starts a thread pool when imported: one thread, so that nothing but this one runs.
    for name in SINGLE_THREADED:
        os.environ[name] = "1"
    missing = preload()
    for name in missing:
        log(f"not preloaded: {name}")
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1 or threading.active_count() != 1:
        log(f"the imports started {threads - 1} threads: forking would not be safe; exiting")
        _forget(state)
        return 1
    warm.imported_early, warm.preconfigured_logging = True, warm.logging_key()
    gc.collect()
    gc.freeze()  # what the imports built is never collected in a child: nor walked, nor copied for it
    idle = float(os.environ.get(warm.IDLE_ENV) or DEFAULT_IDLE_S)
    stamps = Stamps.now()
    edited = stamps.changed_since(before)
    if edited:
        log(f"{edited} changed while this process imported it; exiting (the next command starts a fresh one)")
        _forget(state)
        return 0
    server = Server(path, stamps, idle, lock=lock)
    server.open()
    log(f"ready on {path} after {time.monotonic() - started:.1f} s ({len(server.stamps.files)} files watched)")
    try:
        server.serve()
    finally:
        server.close_listener()
        _forget(state)
        log("exited")
    return 0


def _forget(state: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(state.read_text()).get("pid") == os.getpid():
            state.unlink()


if __name__ == "__main__":
    sys.exit(main())
