"""The warm side of baseimage/warm.py: ``python -P -m baseimage.warm_server SOCKET``, started
in the background by `warm.spawn`.

It imports what a command needs (the product's packages and the parts of Prefect a flow run
loads), checks that no thread was started by those imports (a fork copies only the thread that
calls it, so a process with others is not safe to fork: then it exits and commands run in their
own process), records the size and modification time of every product module it loaded and of
the installed packages' folder, and serves one connection at a time from a single thread:

- the peer must be this user (SO_PEERCRED), the request this protocol and fingerprint;
- a changed source file or installed package answers "stale": the request runs in the caller's
  own process, and this one stops taking commands and exits when its children have ended;
- otherwise it forks. The child makes itself the command's process (`_become_the_command`) and
  runs it; the parent tells the caller the child's pid, watches the connection (a caller that
  goes away gets its child's process group sent SIGTERM) and sends the exit status when the
  child ends.

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
import traceback
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
INTERRUPTED = 130


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} warm[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def preload() -> list[str]:
    """Import the product's modules and `THIRD_PARTY`; what could not be imported (the command
    that needs it imports it, or fails, as it would without this process)."""
    missing = []
    for name in PRODUCT:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if module.name.endswith(".__main__") or module.name == __name__:
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
        paths = {sysconfig.get_paths()["purelib"]}
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path and name.split(".")[0] in PRODUCT:
                paths.add(path)
        return cls({path: _stamp(path) for path in sorted(paths)})

    def changed(self) -> str | None:
        for path, stamp in self.files.items():
            if _stamp(path) != stamp:
                return path
        return None


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
        if self.listener is None:
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
            for key, _events in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    self.accept()
                elif key.data == "signal":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup[0], 512)
                else:
                    self.caller_gone(key.data, key.fileobj)  # type: ignore[arg-type]
            self.reap()
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
        except (OSError, ValueError) as exc:
            log(f"bad request: {exc}")
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        refusal = self.refusal(request, fds)
        if refusal:
            log(f"refused {request.get('argv')}: {refusal}")
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"refused": refusal}).encode() + b"\n")
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        child = os.fork()
        if child == 0:
            self._child(conn, fds, request)  # never returns
        with contextlib.suppress(OSError):  # the child does it too: whichever runs first
            os.setpgid(child, child)
        for fd in fds:
            os.close(fd)
        # The command's name only: its arguments and environment may hold what the log must not.
        log(f"child {child}: baseimage {warm.first_command(list(request['argv'])) or ''}".rstrip())
        self.children[child] = conn
        self.started[child] = time.monotonic()
        self.selector.register(conn, selectors.EVENT_READ, child)
        try:
            conn.sendall(json.dumps({"pid": child}).encode() + b"\n")
        except OSError:
            self.caller_gone(child, conn)

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
        return ""

    def caller_gone(self, child: int, conn: socket.socket) -> None:
        """The caller's end became readable: it sends nothing after its request, so it is gone."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        log(f"the caller of {child} went away: SIGTERM to its process group")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGTERM)

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
                conn.sendall(json.dumps(ended).encode() + b"\n")
            conn.close()
            self.last = time.monotonic()

    def _child(self, conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
        code = 70
        try:
            os.setpgid(0, 0)
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
            conn.close()
            _become_the_command(fds, request)
        except BaseException:  # the command never started: say why, on its stderr
            with contextlib.suppress(Exception):
                os.write(2, f"error: the warm process could not start the command:\n{traceback.format_exc()}".encode())
            os._exit(code)
        code = _run(list(request["argv"]))
        _finish()
        if code == INTERRUPTED:  # as the interpreter ends after an uncaught KeyboardInterrupt
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
    encoding, errors = sys.stdout.encoding, sys.stdout.errors or "strict"
    # As the interpreter makes them: stdout line-buffered on a terminal, stderr always.
    streams = {
        "stdin": _stream(0, encoding, errors, line_buffering=False),
        "stdout": _stream(1, encoding, errors, line_buffering=os.isatty(1)),
        "stderr": _stream(2, encoding, "backslashreplace", line_buffering=True),
    }
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    # Logging as before the imports: the command configures it first, then Prefect over it.
    for handler in logging.root.handlers[:]:
        logging.root.removeHandler(handler)


def _stream(fd: int, encoding: str, errors: str, line_buffering: bool) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=line_buffering)


def _run(argv: list[str]) -> int:
    from baseimage import cli

    try:
        return cli.run_here(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return INTERRUPTED
    except BaseException:  # as the interpreter would: the traceback, status 1
        traceback.print_exc()
        return 1


def _finish() -> None:
    """What the interpreter does on the way out, before the process ends: wait for the threads
    that are not daemons, run the exit handlers, flush the standard streams."""
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -P -m baseimage.warm_server SOCKET", file=sys.stderr)
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
    started = time.monotonic()
    missing = preload()
    for name in missing:
        log(f"not preloaded: {name}")
    if threading.active_count() != 1:
        log(f"imports started threads {[t.name for t in threading.enumerate()]}: forking would not be safe; exiting")
        return 1
    warm.imported_early, warm.preconfigured_logging = True, warm.logging_key()
    gc.collect()
    gc.freeze()  # what the imports built is never collected in a child: nor walked, nor copied for it
    idle = float(os.environ.get(warm.IDLE_ENV) or DEFAULT_IDLE_S)
    server = Server(path, Stamps.now(), idle, lock=lock)
    server.open()
    state = warm.state_file()
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"pid": os.getpid(), "socket": str(path), "started": time.time()}))
    log(f"ready on {path} after {time.monotonic() - started:.1f} s ({len(server.stamps.files)} files watched)")
    try:
        server.serve()
    finally:
        server.close_listener()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()
        log("exited")
    return 0


if __name__ == "__main__":
    sys.exit(main())
