"""``baseimage scan``: offline it lists parsed references and says the registry was unreachable;
with mirrors to a seeded registry it reports the right digests, CUDA versions and EOL flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from baseimage.cli import build_parser, main
from baseimage.printing import print_problem
from tests.conftest import REPO_ROOT
from tests.support.http_endpoint import Endpoint, Reply
from tests.support.registry_server import LocalRegistry
from tests.support.seed import Seeded

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "dockerfiles"
REQUIRED_KEYS = {
    "file",
    "line",
    "image",
    "tag",
    "digest",
    "cuda_version",
    "end_of_life",
    "platforms",
    "skip_reason",
}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> list[dict[str, object]]:
    assert main(["scan", "--json", *argv]) == code
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_offline_scan_lists_parsed_references(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    rows = run_json(capsys, code=3)  # every lookup failed: the scan is incomplete
    assert [(r["file"], r["line"], r["image"]) for r in rows] == [
        ("dockerfiles/training/Dockerfile", 4, "nvidia/cuda:12.6.0-runtime-ubuntu22.04"),
        ("dockerfiles/training/Dockerfile.ngc", 3, "nvcr.io/nvidia/pytorch:25.04-py3"),
        ("dockerfiles/training/Dockerfile.cuda126", 4, "nvidia/cuda:12.6.0-runtime-ubuntu22.04"),
    ]
    for row in rows:
        assert row.keys() >= REQUIRED_KEYS
        assert row["registry_status"] == "unreachable"
        assert row["digest"] is None and row["end_of_life"] is None and row["platforms"] == []
    assert rows[0]["cuda"] == {
        "version": "12.6.0",
        "extra": None,
        "flavor": "runtime",
        "os": "ubuntu",
        "os_version": "22.04",
    }
    assert rows[1]["ngc"] == {"release": "25.04", "python": 3, "variant": None}


def test_offline_table_says_the_registry_was_unreachable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    assert main(["scan"]) == 3
    captured = capsys.readouterr()
    assert "dockerfiles/training/Dockerfile:4" in captured.out
    assert "unreachable" in captured.out
    assert "registry docker.io was unreachable" in captured.err
    assert "registry nvcr.io was unreachable" in captured.err
    assert "incomplete: 2 of 2 registry lookups failed" in captured.err


def test_scan_of_paths_without_registry(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "--no-registry", str(FIXTURES))
    assert len(rows) == 43  # one per FROM of tests/fixtures/dockerfiles (Containerfiles included)
    assert {r["registry_status"] for r in rows} == {"skipped"}
    by_file = {(Path(str(r["file"])).name, r["line"]): r for r in rows}
    assert by_file[("scratch.Dockerfile", 1)]["skip_reason"] == "scratch: no base image"
    assert by_file[("arg_tag.Dockerfile", 4)]["tag"] == "12.6.0-runtime-ubuntu22.04"


def test_bad_mirror_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["scan", "--mirror", "docker.io"])
    assert info.value.code == 2
    assert "'docker.io': expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5000" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "docker.io=https://ci:s3cret-token@mirror.example",
            "mirror for docker.io: put no credentials in the URL; use registries.credentials.mirror.example",
        ),
        ("docker.io=ci:s3cret-token@mirror.example", "a value with credentials in it: expected REGISTRY=URL"),
    ],
)
def test_a_mirror_with_credentials_is_a_usage_error_that_never_repeats_them(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: --mirror took a URL with credentials in it, which then reached the scan's
    warnings, the report's error rows and pull references; the policy file already refused it."""
    with pytest.raises(SystemExit) as info:
        main(["scan", "--mirror", value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "s3cret-token" not in err


def test_bad_config_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("images: []\nfleet: {min_driver: x}\n")
    assert main(["scan", "--config", str(bad)]) == 2
    assert f"{bad}:2: fleet.min_driver: Input should be a valid integer" in capsys.readouterr().err


def test_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'}: no such file or directory" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "scan" in subcommands
    for name in subcommands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert f"usage: baseimage {name}" in capsys.readouterr().out


MINIMAL = "images:\n  - name: training\n    dockerfile: Dockerfile\n    track: cuda\n"


@pytest.mark.parametrize(
    "message",
    [
        "platform 'linux' is not 'os/arch[/variant]'",
        "String should match pattern '^*$'",
        "value [bold]x[/bold] and [/x] and :smile: and [link=http://a]b[/link]",
        "\\[escaped] and a trailing backslash \\",
    ],
)
def test_problems_print_literally(message: str) -> None:
    console = Console(record=True, width=400, color_system=None)
    print_problem(console, "error", message)
    assert console.export_text() == f"error: {message}\n"


def test_bad_platform_prints_its_brackets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(MINIMAL + "registries:\n  platform: linux\n")
    assert main(["scan", "--config", str(bad), "--no-registry"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6: registries.platform: platform 'linux' is not 'os/arch[/variant]'" in err


def test_pattern_message_keeps_every_character(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("images:\n  - name: Training\n    dockerfile: D\n    track: cuda\n")
    assert main(["scan", "--config", str(bad), "--no-registry"]) == 2
    assert "images[0].name: String should match pattern '^[a-z0-9][a-z0-9-]*$'" in capsys.readouterr().err


def test_dockerfile_text_with_markup_prints_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM [/x][bold]oops\n")
    config = tmp_path / "policy.yaml"
    config.write_text(MINIMAL)
    assert main(["scan", "--config", str(config), "--no-registry", str(tmp_path / "Dockerfile")]) == 0
    assert "[/x][bold]oops" in capsys.readouterr().out


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(MINIMAL + "registries:\n  attempts: 1\n" + extra)
    return path


def test_not_found_is_a_finding_not_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nvidia/cuda:9.9.9-base-ubuntu22.04\n")
    with Endpoint(lambda req: Reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')) as ep:
        rows = run_json(
            capsys, "--config", str(_config(tmp_path)), "--mirror", f"docker.io={ep.url}", str(tmp_path), code=0
        )
    assert [r["registry_status"] for r in rows] == ["not found"]


def test_a_failed_lookup_exits_3_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM nvidia/cuda:12.6.3-base-ubuntu22.04\nFROM nvidia/cuda:9.9.9-base-ubuntu22.04\n"
    )

    def handle(req: object) -> Reply:
        if "9.9.9" in req.path:  # type: ignore[attr-defined]
            return Reply(404)
        return Reply(200, b'{"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": 5, "layers": []}')

    with Endpoint(handle) as ep:
        args = ["scan", "--config", str(_config(tmp_path)), "--mirror", f"docker.io={ep.url}", str(tmp_path)]
        assert main(args) == 3
    captured = capsys.readouterr()
    assert "config: expected an object, got int 5" in captured.err
    assert "incomplete: 1 of 2 registry lookups failed" in captured.err
    assert "Traceback" not in captured.err


def test_unreachable_mirror_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n")
    with Endpoint(lambda req: Reply()) as ep:
        closed = ep.url  # nothing listens there once the endpoint is gone
    config = _config(tmp_path, f"  mirrors:\n    docker.io: {closed}\n")
    assert main(["scan", "--config", str(config), str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert f"mirror {closed} for docker.io was unreachable" in err
    assert "use --mirror docker.io=URL where a mirror exists" not in err


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BASEIMAGE_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "baseimage.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.docker
def test_scan_with_mirrors_reports_digests_and_eol(registry: LocalRegistry, seeded: Seeded) -> None:
    done = _cli(
        "scan",
        "--mirror",
        f"docker.io={registry.url}",
        "--mirror",
        f"nvcr.io={registry.url}",
        "--json",
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    main_row, ngc_row, pinned_row = rows
    expected = seeded["nvidia/cuda:12.6.0-runtime-ubuntu22.04"]
    assert main_row["digest"] == pinned_row["digest"] == expected.digest
    assert main_row["cuda_version"] == "12.6.0" and main_row["end_of_life"] is False
    assert main_row["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert main_row["registry_status"] == "ok"
    assert ngc_row["digest"] == seeded["nvidia/pytorch:25.04-py3"].digest
    assert ngc_row["cuda_version"] == "12.9.0"


@pytest.mark.docker
def test_scan_of_given_paths_finds_the_eol_image(tmp_path: Path, registry: LocalRegistry, seeded: Seeded) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text(
        "ARG CUDA=12.1.0\nFROM nvidia/cuda:${CUDA}-runtime-ubuntu22.04 AS old\n"
        "FROM nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04\nFROM old\nFROM nvidia/cuda:12.6.3-runtime-ubuntu22.04\n"
    )
    (tmp_path / "svc" / "Dockerfile.bak").write_text("FROM nvidia/cuda:11.8.0-base-ubuntu22.04\n")
    (tmp_path / "ngc.Dockerfile").write_text(
        "FROM nvcr.io/nvidia/pytorch:24.10-py3\nFROM nvidia/cuda:9.9.9-base-ubuntu22.04\n"
    )
    done = _cli(
        "scan",
        str(tmp_path),
        "--mirror",
        f"docker.io={registry.url}",
        "--mirror",
        f"nvcr.io={registry.url}",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = {(Path(r["file"]).name, r["line"]): r for r in json.loads(done.stdout)}
    assert set(rows) == {
        ("ngc.Dockerfile", 1),
        ("ngc.Dockerfile", 2),
        ("Dockerfile", 2),
        ("Dockerfile", 3),
        ("Dockerfile", 4),
        ("Dockerfile", 5),
    }
    eol = rows[("Dockerfile", 2)]
    assert (eol["end_of_life"], eol["cuda_version"]) == (True, "12.1.0")
    assert eol["digest"] == seeded["nvidia/cuda:12.1.0-runtime-ubuntu22.04"].digest
    assert rows[("Dockerfile", 3)]["end_of_life"] is False
    assert rows[("Dockerfile", 3)]["cudnn_version"] == "9.5.1.17-1"
    assert rows[("Dockerfile", 4)]["skip_reason"] == "refers to the earlier build stage 'old'"
    assert rows[("ngc.Dockerfile", 1)]["cuda_version"] == "12.6.2"
    missing = rows[("ngc.Dockerfile", 2)]
    assert missing["registry_status"] == "not found" and missing["digest"] is None
