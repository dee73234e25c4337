"""The command line's layout (#15): one module per command group under baseimage/cli/, the options
they share declared once (options.py), no command module importing another (only app.py, which
registers them, imports them all), nothing below the CLI importing it, and every registered group
listed by ``baseimage --help``."""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from baseimage.cli import build_parser, main
from baseimage.cli.app import GROUPS
from tests.conftest import REPO_ROOT

CLI = REPO_ROOT / "baseimage" / "cli"
SHARED = {"options", "common"}  # what every command group may import
# app registers the groups; __init__ and __main__ expose app; warm_server runs commands in the warm
# process (baseimage/warm.py).
ENTRY = {"__init__", "__main__", "app", "warm_server"}
COMMANDS = (  # as `baseimage --help` lists them
    "scan",
    "review",
    "snapshot",
    "migrate",
    "approve",
    "validate",
    "deploy",
    "rollback",
    "retain",
    "server",
    "history",
    "serve",
    "annual",
    "docs",
)
# The commands that run flows or read runs, so they get a Prefect API before they start.
NEEDS_API = {"review", "snapshot", "migrate", "approve", "validate", "annual", "rollback", "history", "serve"}


def _imported(path: Path, package: str) -> set[str]:
    """Every module `path` imports, anywhere in it (``from a import b`` counts a and a.b, since b may
    be a module); relative imports resolved against `package`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _cli_modules() -> dict[str, Path]:
    return {path.stem: path for path in sorted(CLI.glob("*.py"))}


def _command_modules() -> set[str]:
    return set(_cli_modules()) - SHARED - ENTRY


def test_a_command_module_imports_no_other_command_module() -> None:
    commands = _command_modules()
    assert {"scan", "review", "deploy"} <= commands, commands
    for stem, path in _cli_modules().items():
        if stem == "app":
            continue
        allowed = {"app", *SHARED} if stem in {"__init__", "__main__"} else SHARED
        if stem in {"__main__", "warm_server"}:  # `python -m baseimage.cli` and the warm process's child
            allowed = {*allowed, "the package (every group)"}  # run the package's entry, layout check first
        for name in _imported(path, "baseimage.cli"):
            if name == "baseimage.cli" or name.startswith("baseimage.cli."):
                part = name.split(".")[2] if name.count(".") >= 2 else "the package (every group)"
                assert part in allowed, f"{path.relative_to(REPO_ROOT)} imports {name}: go through options/common"


def test_every_command_module_is_registered() -> None:
    registered = {group.__name__.rsplit(".", 1)[1] for group in GROUPS}  # type: ignore[attr-defined]
    assert registered == _command_modules()


def test_nothing_below_the_cli_imports_it() -> None:
    below = [p for top in ("tasks", "flows", "deployments", "services") for p in (REPO_ROOT / top).rglob("*.py")]
    below += [p for p in (REPO_ROOT / "baseimage").glob("*.py")]
    assert below
    for path in below:
        package = ".".join(path.relative_to(REPO_ROOT).parent.parts)
        for name in _imported(path, package):
            assert not (name == "baseimage.cli" or name.startswith("baseimage.cli.")), (
                f"{path.relative_to(REPO_ROOT)} imports {name}: the command line sits above it"
            )


def test_config_is_declared_in_one_place() -> None:
    declared = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in sorted(CLI.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if '"--config"' in line or "'--config'" in line
    ]
    assert len(declared) == 1 and declared[0].startswith("baseimage/cli/options.py:"), declared


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not children and path:
        yield " ".join(path), parser
    for action in children:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


def test_help_lists_every_registered_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    listed = re.findall(r"^    (\S+)", capsys.readouterr().out, re.MULTILINE)
    registered: list[str] = []
    for group in GROUPS:
        sub = argparse.ArgumentParser().add_subparsers()
        group.add_parser(sub)
        registered += list(sub.choices)
    assert listed == registered == list(COMMANDS)


def test_every_command_and_only_the_flow_commands_get_an_api() -> None:
    leaves = dict(_leaves(build_parser()))
    assert {name.split()[0] for name in leaves} == set(COMMANDS)
    for name, parser in leaves.items():
        assert callable(parser.get_default("handler")), name
    assert {name for name, parser in leaves.items() if parser.get_default("needs_api")} == NEEDS_API


def test_the_process_entry_point_tunes_the_collector_and_main_leaves_it_alone() -> None:
    """`run` (the `baseimage` script and `python -m baseimage.cli`) raises the first generation's
    threshold for the command and freezes what is alive when it ends, so the final collection need
    not walk it (bench/review_scale.py: about 0.5 s of a 3-image review); `main`, which tests and
    other callers use in a process that goes on, changes neither."""
    probe = (
        "import gc, json, sys\n"
        "import baseimage.cli.app as app\n"
        "from baseimage import cli\n"
        "seen = {}\n"
        "def fake(argv=None):\n"
        "    seen['during'] = gc.get_threshold()[0]\n"
        "    return 0\n"
        "app.main = fake\n"
        "before = gc.get_threshold()\n"
        "cli.main([]); after_main = (gc.get_threshold(), gc.get_freeze_count())\n"
        "assert seen['during'] == before[0], seen\n"
        "cli.run()\n"
        "print(json.dumps({'before': before, 'after_main': after_main, 'during_run': seen['during'],"
        " 'frozen_after_run': gc.get_freeze_count()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["after_main"] == [seen["before"], 0]
    assert seen["during_run"] > seen["before"][0]
    assert seen["frozen_after_run"] > 0
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["baseimage"] == "baseimage.cli:run"
    assert "cli.run()" in (CLI / "__main__.py").read_text(encoding="utf-8")


@pytest.mark.parametrize(("preset", "telemetry"), [(None, False), ("0", True)])
def test_commands_turn_prefects_sdk_telemetry_off_unless_the_user_said_otherwise(
    tmp_path: Path, preset: str | None, telemetry: bool
) -> None:
    """Every command sets DO_NOT_TRACK (the switch Prefect's SDK analytics honour) before it
    imports Prefect, so Prefect itself decides that no usage event leaves the user's machine from
    an interactive terminal; a value the user set is kept. (CI variables are taken away: Prefect
    turns its telemetry off in CI by itself, which would hide the switch.)"""
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    probe = (
        "import os, sys\n"
        "from baseimage import cli\n"
        f"cli.main(['scan', '--no-registry', {str(tmp_path)!r}])\n"
        "assert 'prefect' not in sys.modules\n"
        "from prefect._internal.analytics.enabled import is_telemetry_enabled\n"
        "print(is_telemetry_enabled(), os.environ.get('DO_NOT_TRACK'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DO_NOT_TRACK" and k not in CI_ENV_VARS}
    if preset is not None:
        env["DO_NOT_TRACK"] = preset
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.stdout.split()[-2:] == [str(telemetry), preset or "1"], done.stdout + done.stderr


@pytest.mark.parametrize("command", ["review", "annual", "snapshot"])
def test_a_pytorch_index_with_credentials_is_refused_before_anything_runs(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in the policy file: a token in --pytorch-index would reach the report, and a migration
    writes the index base into requirements files."""
    from baseimage.cli import main
    from tests.support.repo import copy_managed

    # A repository of its own, so that a regression (the command running) never writes this
    # checkout's policy document or reports.
    repo = copy_managed(tmp_path / "repo", ("dockerfiles", "config"))
    argv = [command, "--pytorch-index", "https://ci:s3cret-token@mirror.example/whl"]
    argv += ["--config", str(repo / "config" / "policy.yaml")]
    argv += {"review": ["--no-docs", "--out", str(tmp_path / "out")], "annual": ["--out", str(tmp_path / "out")]}.get(
        command, [str(tmp_path / "snap")]
    )
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "--pytorch-index: put no credentials in the URL" in err and "s3cret-token" not in err
