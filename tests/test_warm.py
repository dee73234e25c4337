"""The warm process (baseimage/warm.py, baseimage/cli/warm_server.py): a command handed to it runs in
a forked child exactly as it would in its own process (output, exit status, working directory,
environment, the flow run on the server), Ctrl-C and a caller that goes away reach the command,
and whatever the warm process cannot vouch for (a changed source file, another environment, an
unsafe socket directory, `baseimage server`) runs in the caller's own process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baseimage import warm
from baseimage.cli.warm_server import Server, Stamps, prefect_files
from tests.conftest import REPO_ROOT
from tests.support.prefect_server import PrefectServer, prefect_api
from tests.support.repo import copy_managed
from tests.support.warm_process import start_warm, stop_warm

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| ", re.MULTILINE)
RUN_NAME = re.compile(r"([Ff]low run|[Tt]ask run) '[^']+'")


class Warm:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env

    def cli(
        self, *args: str, cwd: Path, warm_on: bool = True, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra or {})}
        if not warm_on:
            env[warm.ENV] = "off"
        return subprocess.run(
            [sys.executable, "-m", "baseimage.cli", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    @property
    def log(self) -> str:
        path = self.home / warm.LOG
        return path.read_text() if path.exists() else ""

    def children(self, command: str) -> list[int]:
        return [int(pid) for pid in re.findall(rf"child (\d+): baseimage {command}\n", self.log)]

    def wait_child(self, command: str, known: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.children(command)
            if len(found) > known:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no new child for {command} in the warm log:\n{self.log}")


@pytest.fixture(scope="module")
def warm_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warm]:
    home = tmp_path_factory.mktemp("warm") / "prefect-home"
    server = PrefectServer(home).start()
    env = server.env()
    env.pop(warm.ENV, None)
    env.update({warm.IDLE_ENV: "900", "BASEIMAGE_SERVER": "off"})
    try:
        start_warm(env)
        yield Warm(home, env)
    finally:
        stop_warm(env)
        server.stop()


def _comparable(text: str, *paths: Path) -> str:
    for path in paths:
        text = text.replace(str(path), "<out>")
    return RUN_NAME.sub(r"\1 <name>", CLOCK.sub("", UUID.sub("<id>", text)))


def test_a_review_through_the_warm_process_is_the_one_its_own_process_runs(warm_process: Warm, tmp_path: Path) -> None:
    # A copy of the repository as the working directory, its policy file found relative to it.
    repo = copy_managed(tmp_path / "repo")
    base = ["review", "--sources", "offline", "--no-banner", "--no-docs", "--json"]
    known = len(warm_process.children("review"))
    through = warm_process.cli(*base, "--out", str(tmp_path / "warm"), cwd=repo)
    assert warm_process.wait_child("review", known), "it ran in a child of the warm process"
    alone = warm_process.cli(*base, "--out", str(tmp_path / "alone"), cwd=repo, warm_on=False)
    assert len(warm_process.children("review")) == known + 1, "BASEIMAGE_WARM=off ran in its own process"

    assert through.returncode == alone.returncode == 10, through.stderr + alone.stderr
    assert _comparable(through.stdout, tmp_path / "warm") == _comparable(alone.stdout, tmp_path / "alone")
    assert _comparable(through.stderr, tmp_path / "warm") == _comparable(alone.stderr, tmp_path / "alone")
    report = json.loads(through.stdout)
    assert "dockerfiles/training/Dockerfile" in {image["file"] for image in report["images"]}
    assert sorted(p.name for p in (tmp_path / "warm").iterdir()) == sorted(
        p.name for p in (tmp_path / "alone").iterdir()
    )

    # Prefect's logging set up again for a caller whose settings differ from the warm process's.
    verbose = {"PREFECT_LOGGING_LEVEL": "INFO"}
    through = warm_process.cli(*base, "--out", str(tmp_path / "warm"), cwd=repo, extra=verbose)
    alone = warm_process.cli(*base, "--out", str(tmp_path / "alone"), cwd=repo, warm_on=False, extra=verbose)
    assert "Beginning flow run" in through.stderr
    # The same lines; their order follows the tasks running at once, in either process.
    assert sorted(_comparable(through.stderr, tmp_path / "warm").splitlines()) == sorted(
        _comparable(alone.stderr, tmp_path / "alone").splitlines()
    )

    # The flow runs are on the caller's server (PREFECT_API_URL from the caller's environment).
    runs = prefect_api.post(
        f"{warm_process.env['PREFECT_API_URL']}/flow_runs/filter",
        json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}},
        timeout=30,
    ).json()
    assert len(runs) >= 4


def test_bad_input_and_its_exit_status_are_the_same_through_the_warm_process(
    warm_process: Warm, tmp_path: Path
) -> None:
    known = len(warm_process.children("review"))
    through = warm_process.cli("review", "--sources", "sideways", cwd=tmp_path)
    alone = warm_process.cli("review", "--sources", "sideways", cwd=tmp_path, warm_on=False)
    assert warm_process.wait_child("review", known)
    assert through.returncode == alone.returncode == 2
    assert through.stderr == alone.stderr and "invalid choice: 'sideways'" in through.stderr
    assert through.stdout == alone.stdout == ""

    # The caller's environment, not the warm process's: a policy file named by BASEIMAGE_CONFIG.
    missing = tmp_path / "nowhere" / "policy.yaml"
    through = warm_process.cli("scan", "--no-registry", cwd=tmp_path, extra={"BASEIMAGE_CONFIG": str(missing)})
    alone = warm_process.cli(
        "scan", "--no-registry", cwd=tmp_path, warm_on=False, extra={"BASEIMAGE_CONFIG": str(missing)}
    )
    assert through.returncode == alone.returncode == 2, through.stderr
    assert str(missing) in through.stderr and through.stderr == alone.stderr


class BlackHole:
    """A loopback port that accepts connections and never answers: a registry that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _hanging(warm_process: Warm, *, warm_on: bool = True) -> tuple[subprocess.Popen[str], BlackHole]:
    """`baseimage history` against an API that never answers: it waits in its main thread."""
    hole = BlackHole()
    env = {**warm_process.env, "PREFECT_API_URL": f"{hole.url}/api"}
    if not warm_on:
        env[warm.ENV] = "off"
    caller = subprocess.Popen(
        [sys.executable, "-m", "baseimage.cli", "history"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a command typed at a terminal (a test runner in the background may have it ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return caller, hole


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _interrupted(caller: subprocess.Popen[str]) -> tuple[int, str]:
    time.sleep(1.5)  # inside its API request by now
    assert caller.poll() is None, "history waits on the black-hole API"
    caller.send_signal(signal.SIGINT)
    _out, err = caller.communicate(timeout=60)
    return caller.returncode, err


def test_ctrl_c_on_the_command_reaches_its_child(warm_process: Warm) -> None:
    known = len(warm_process.children("history"))
    caller, hole = _hanging(warm_process)
    try:
        child = warm_process.wait_child("history", known)
        through, err = _interrupted(caller)
        alone_caller, alone_hole = _hanging(warm_process, warm_on=False)
        try:
            alone, alone_err = _interrupted(alone_caller)
        finally:
            alone_hole.close()
    finally:
        hole.close()
    # Both end as a Python process ends on an uncaught KeyboardInterrupt: its traceback, then SIGINT.
    assert through == alone == -signal.SIGINT, err + alone_err
    assert "KeyboardInterrupt" in err and "KeyboardInterrupt" in alone_err
    assert _gone(child)
    assert f"child {child}: exit -2" in warm_process.log


def test_a_command_whose_caller_is_killed_is_stopped(warm_process: Warm) -> None:
    known = len(warm_process.children("history"))
    caller, hole = _hanging(warm_process)
    try:
        child = warm_process.wait_child("history", known)
        time.sleep(1.5)  # waiting for the API, where a command in its own process ends 143 on SIGTERM
        caller.kill()
        caller.wait(30)
        assert _gone(child), "SIGTERM reached the child of a caller that went away"
    finally:
        hole.close()
    assert f"the caller of {child} went away" in warm_process.log
    assert f"child {child}: exit 143" in warm_process.log  # the command's own SIGTERM handling


def test_server_commands_never_go_through_the_warm_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(warm.ENV, raising=False)
    monkeypatch.setattr(warm, "socket_path", lambda: pytest.fail("asked for the socket"))
    assert warm.run_warm(["-v", "server", "stop"]) is None
    monkeypatch.setenv(warm.ENV, "off")
    assert warm.run_warm(["review"]) is None


def test_a_socket_directory_others_can_enter_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / f"baseimage-{os.getuid()}"
    folder.mkdir(mode=0o700)
    assert warm.runtime_dir() == folder
    folder.chmod(0o755)
    assert warm.runtime_dir() is None and warm.socket_path() is None
    monkeypatch.delenv(warm.ENV, raising=False)
    assert warm.run_warm(["review"]) is None
    folder.rmdir()
    folder.symlink_to(tmp_path)
    assert warm.runtime_dir() is None


def _scripted(path: Path, answer: bytes) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        socket.recv_fds(conn, 1 << 20, 3)
        conn.sendall(answer)
        conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_refused_or_dropped_request_runs_in_the_callers_own_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(warm.ENV, raising=False)
    path = tmp_path / "w.sock"
    monkeypatch.setattr(warm, "socket_path", lambda: path)
    for answer in (b'{"refused": "stale: flows/migrate.py changed"}\n', b""):
        thread = _scripted(path, answer)
        assert warm.run_warm(["review"]) is None, answer
        thread.join(10)
        path.unlink()
    assert warm.run_warm(["review"]) is None, "no socket: nothing to connect to"


def test_a_changed_source_file_makes_the_warm_process_stale(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("x = 1\n")
    stamps = Stamps({str(module): (module.stat().st_mtime_ns, module.stat().st_size)})
    server = Server(tmp_path / "w.sock", stamps, idle_s=60)
    request = {"protocol": warm.PROTOCOL, "fingerprint": warm.fingerprint(), "env": dict(os.environ), "cwd": "/"}
    assert server.refusal(request, [0, 1, 2]) == ""
    module.write_text("x = 22\n")
    assert server.refusal(request, [0, 1, 2]) == f"stale: {module} changed"
    assert server.draining, "it takes no more commands"
    assert server.refusal(request, [0, 1, 2]).startswith("stale: ")
    fresh = Server(tmp_path / "w.sock", Stamps.now(), idle_s=60)
    assert fresh.refusal({**request, "fingerprint": "other"}, [0, 1, 2]).startswith("another interpreter")
    assert fresh.refusal(request, [0, 1]) == "no standard input, output and error passed"
    assert any(path.endswith("baseimage/warm.py") for path in Stamps.now().files), "product modules are watched"


def test_the_fingerprint_follows_the_environment_python_reads_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    before = warm.fingerprint()
    monkeypatch.setenv("BASEIMAGE_SOMETHING", "1")
    assert warm.fingerprint() == before, "the command's own variables travel with it"
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert warm.fingerprint() != before
    monkeypatch.delenv("PYTHONPATH")
    monkeypatch.setenv("PREFECT_HOME", "/another/home")
    assert warm.fingerprint() != before


def test_it_is_the_caller_side_that_imports_only_the_standard_library() -> None:
    code = "import sys; before = set(sys.modules); from baseimage import warm; print(sorted(set(sys.modules) - before))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    added = {name.split(".")[0] for name in eval(result.stdout)}  # noqa: S307 - a list of names we printed
    assert added - set(sys.stdlib_module_names) == {"baseimage"}, added


def test_an_unusable_temporary_directory_leaves_the_command_to_its_own_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(warm.ENV, raising=False)
    for base in (tmp_path / "missing" / "deeper", Path("/proc")):
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
        assert warm.runtime_dir() is None
        assert warm.run_warm(["review"]) is None
        assert warm.spawn() is None


def test_other_prefect_settings_run_in_the_callers_own_process(warm_process: Warm, tmp_path: Path) -> None:
    """Prefect reads task and flow defaults when a module declares them, in the warm process long
    before this caller: a caller with other PREFECT_* settings, or a Prefect settings file where it
    runs, is not one the warm process can stand in for."""
    known = len(warm_process.children("scan"))
    args = ("scan", "--no-registry", "--config", str(REPO_ROOT / "config" / "policy.yaml"))
    retries = warm_process.cli(*args, cwd=REPO_ROOT, extra={"PREFECT_TASKS_DEFAULT_RETRIES": "2"})
    assert retries.returncode == 0, retries.stderr
    assert "refused baseimage scan: other Prefect settings in the environment" in warm_process.log
    (tmp_path / "prefect.toml").write_text("[tasks]\ndefault_retries = 2\n")
    here = warm_process.cli(*args, cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    assert f"refused baseimage scan: Prefect settings in {tmp_path / 'prefect.toml'}" in warm_process.log
    assert len(warm_process.children("scan")) == known, "both ran in their own process"
    plain = warm_process.cli(*args, cwd=REPO_ROOT)
    assert plain.returncode == 0 and plain.stdout == retries.stdout == here.stdout
    assert len(warm_process.children("scan")) == known + 1


def test_a_child_killed_outright_ends_its_caller_the_same_way(warm_process: Warm) -> None:
    known = len(warm_process.children("history"))
    caller, hole = _hanging(warm_process)
    try:
        child = warm_process.wait_child("history", known)
        os.kill(child, signal.SIGKILL)
        caller.communicate(timeout=60)
    finally:
        hole.close()
    assert caller.returncode == -signal.SIGKILL


@pytest.fixture
def own_warm(tmp_path: Path) -> Iterator[Warm]:
    """A warm process of its own (its own Prefect home): for the tests that end it."""
    home = tmp_path / "own-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != warm.ENV}
    env.update(PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="WARNING", BASEIMAGE_SERVER="off")
    try:
        start_warm(env)
        yield Warm(home, env)
    finally:
        stop_warm(env)


def test_a_changed_prefect_profile_makes_the_warm_process_stale_and_it_exits(own_warm: Warm) -> None:
    args = ("scan", "--no-registry", "--config", str(REPO_ROOT / "config" / "policy.yaml"))
    before = own_warm.cli(*args, cwd=REPO_ROOT)
    assert before.returncode == 0 and len(own_warm.children("scan")) == 1
    (own_warm.home / "profiles.toml").write_text('active = "default"\n[profiles.default]\n')
    after = own_warm.cli(*args, cwd=REPO_ROOT)
    assert after.returncode == 0 and after.stdout == before.stdout
    assert len(own_warm.children("scan")) == 1, "the second ran in its own process"
    assert f"stale: {own_warm.home / 'profiles.toml'} changed" in own_warm.log
    deadline = time.monotonic() + 30
    while "exited" not in own_warm.log and time.monotonic() < deadline:
        time.sleep(0.1)
    assert own_warm.log.rstrip().endswith("exited")
    assert not list(own_warm.home.glob("baseimage-warm-*.json"))


def test_a_command_outlives_a_warm_process_that_dies_and_still_reports_its_status(own_warm: Warm) -> None:
    state = json.loads(next(own_warm.home.glob("baseimage-warm-*.json")).read_text())
    caller, hole = _hanging(own_warm)
    try:
        child = own_warm.wait_child("history", 0)
        time.sleep(1.5)
        os.kill(int(state["pid"]), signal.SIGKILL)
        assert _gone(int(state["pid"]))
        time.sleep(0.5)
        assert caller.poll() is None, "the command goes on without the warm process"
        caller.send_signal(signal.SIGINT)  # still reaches the child: the caller sends it itself
        _out, err = caller.communicate(timeout=60)
    finally:
        hole.close()
    assert caller.returncode == -signal.SIGINT, err
    assert "KeyboardInterrupt" in err and "lost touch" not in err
    assert _gone(child)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, wanted: set[str], timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while (state := _state(pid)) not in wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return state


def test_ctrl_z_stops_the_child_with_its_caller_and_fg_continues_both(warm_process: Warm) -> None:
    known = len(warm_process.children("history"))
    caller, hole = _hanging(warm_process)
    try:
        child = warm_process.wait_child("history", known)
        time.sleep(1.0)
        caller.send_signal(signal.SIGTSTP)
        assert _wait_state(caller.pid, {"T"}) == "T", "the caller stopped"
        assert _wait_state(child, {"T"}) == "T", "and its child with it"
        caller.send_signal(signal.SIGCONT)
        assert _wait_state(caller.pid, {"S", "R"}) in {"S", "R"}
        assert _wait_state(child, {"S", "R"}) in {"S", "R"}, "fg continued the child too"
        caller.send_signal(signal.SIGINT)
        caller.communicate(timeout=60)
    finally:
        hole.close()
    assert caller.returncode == -signal.SIGINT


def test_which_files_in_the_working_directory_hold_prefect_settings(tmp_path: Path) -> None:
    assert prefect_files(tmp_path) is None
    (tmp_path / ".env").write_text(
        "# PREFECT_ settings go here\nPREFECT_API_URL=http://127.0.0.1:4200/api\nCOMPOSE=x\n"
    )
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.prefect-other]\na = 1\n')
    assert prefect_files(tmp_path) is None, "per-command settings, comments and other tools are not Prefect's"
    (tmp_path / ".env").write_text("export PREFECT_TASKS_DEFAULT_RETRIES=3\n")
    assert prefect_files(tmp_path) == str(tmp_path / ".env")
    (tmp_path / ".env").unlink()
    (tmp_path / "pyproject.toml").write_text("[tool.prefect.tasks]\ndefault_retries = 3\n")
    assert prefect_files(tmp_path) == str(tmp_path / "pyproject.toml")
