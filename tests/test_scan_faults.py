"""``baseimage scan`` against the real seeded registry behind the fault-injecting proxy (issue 16):
for each fault, no traceback, the right exit code and status, and the requests counted.

The command runs as a subprocess (``python -m baseimage.cli``), as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_server import LocalRegistry
from tests.support.seed import Seeded

pytestmark = pytest.mark.docker

SINGLE = "nvidia/cuda:12.6.0-runtime-ubuntu20.04"  # a single-arch manifest: tag -> manifest -> config
MULTI = "nvidia/cuda:12.6.3-runtime-ubuntu22.04"  # an index: tag -> index -> amd64 manifest -> config
ATTEMPTS = 2


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.url) as front:
        yield front


def scan(tmp_path: Path, proxy_url: str, *images: str, attempts: int = ATTEMPTS) -> tuple[int, list[Any], str]:
    (tmp_path / "Dockerfile").write_text("".join(f"FROM {image}\n" for image in images))
    config = tmp_path / "policy.yaml"
    config.write_text(
        "images:\n  - name: svc\n    dockerfile: Dockerfile\n    track: cuda\n"
        f"registries:\n  attempts: {attempts}\n  timeout_s: 5\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BASEIMAGE_CONFIG"}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "baseimage.cli", "scan", "--config", str(config), "--json"),
            *("--mirror", f"docker.io={proxy_url}", str(tmp_path / "Dockerfile")),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    rows = json.loads(done.stdout) if done.stdout.strip() else []
    return done.returncode, rows, done.stderr


def test_no_fault_is_exit_0(tmp_path: Path, proxy: FaultProxy, seeded: Seeded) -> None:
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE, MULTI)
    assert code == 0
    assert [r["digest"] for r in rows] == [seeded[SINGLE].digest, seeded[MULTI].digest]
    assert proxy.count("/manifests/") == 3 and proxy.count("/blobs/") == 2


@pytest.mark.parametrize("value", ["²", "soon", "Sun, 06 Nov 99999 08:49:37 GMT"])
def test_bad_retry_after_falls_back_to_backoff(tmp_path: Path, proxy: FaultProxy, seeded: Seeded, value: str) -> None:
    proxy.inject(Fault.retry_after(value, times=1, match="/manifests/"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert code == 0
    assert rows[0]["registry_status"] == "ok" and rows[0]["digest"] == seeded[SINGLE].digest
    assert proxy.count("/manifests/") == 2  # the 503, then the retry


def test_503_burst_shorter_than_the_attempts_recovers(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.inject(Fault.burst(503, times=ATTEMPTS - 1, match="/manifests/"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert (code, rows[0]["registry_status"]) == (0, "ok")
    assert proxy.count("/manifests/") == ATTEMPTS


def test_503_burst_longer_than_the_attempts_is_exit_3(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.inject(Fault.burst(503, match="/manifests/"))
    code, rows, err = scan(tmp_path, proxy.url, SINGLE)
    assert code == 3
    assert rows[0]["registry_status"] == "error"
    assert f"HTTP 503 after {ATTEMPTS} attempts" in rows[0]["registry_error"]
    assert proxy.count("/manifests/") == ATTEMPTS  # exactly the configured attempts, no more
    assert "incomplete: 1 of 1 registry lookups failed" in err


def test_connection_cut_mid_body_is_retried(tmp_path: Path, proxy: FaultProxy, seeded: Seeded) -> None:
    proxy.inject(Fault.cut(times=1, match="/blobs/"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert (code, rows[0]["registry_status"]) == (0, "ok")
    assert rows[0]["cuda_version"] == "12.6.0"
    assert proxy.count("/blobs/") == 2


def test_connection_cut_every_time_is_exit_3(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.inject(Fault.cut(times=None, match="/manifests/"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert code == 3
    assert "response cut short" in rows[0]["registry_error"]
    assert proxy.count("/manifests/") == ATTEMPTS


def test_null_size_manifest_is_exit_3(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.inject(Fault.null_size())
    code, rows, err = scan(tmp_path, proxy.url, SINGLE)
    assert code == 3
    assert rows[0]["registry_status"] == "error"
    assert "config.size: expected a non-negative integer, got null" in rows[0]["registry_error"]
    assert proxy.count("/manifests/") == 1  # a protocol error is not retried
    assert "config.size: expected a non-negative integer, got null" in err


def test_realm_that_is_not_a_url_is_exit_3(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.inject(Fault.realm("not a url"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert code == 3
    assert "bearer challenge realm 'not a url' is not an http(s) URL" in rows[0]["registry_error"]
    assert proxy.count() == 1


def test_redirect_loop_is_exit_3(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.inject(Fault.redirect_loop(match="/manifests/"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert code == 3
    assert "more than 10 redirects" in rows[0]["registry_error"]
    assert proxy.count("/manifests/") == 11


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault.replace_body(
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": 5, "layers": []},
                match="/manifests/",
            ),
            "config: expected an object, got int 5",
        ),
        (Fault.config_body({"config": {"Env": 1}}), "config.Env: expected a list of strings, got int 1"),
        (
            Fault.config_body({"os": "linux", "config": {"Labels": ["x"]}}),
            "config.Labels: expected an object of strings",
        ),
        (Fault.replace_body(b"[1, 2]", match="/manifests/"), "manifest is not a JSON object"),
    ],
)
def test_wrong_shape_json_is_exit_3(tmp_path: Path, proxy: FaultProxy, fault: Fault, message: str) -> None:
    proxy.inject(fault)
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE)
    assert code == 3
    assert rows[0]["registry_status"] == "error"
    assert message in rows[0]["registry_error"]
    assert proxy.count("/manifests/") == 1


def test_one_fault_leaves_the_other_rows_alone(tmp_path: Path, proxy: FaultProxy, seeded: Seeded) -> None:
    proxy.inject(Fault.null_size(match="12.6.0-runtime-ubuntu20.04"))
    code, rows, _ = scan(tmp_path, proxy.url, SINGLE, MULTI, "nvidia/cuda:9.9.9-base-ubuntu22.04")
    assert code == 3
    assert [r["registry_status"] for r in rows] == ["error", "ok", "not found"]
    assert rows[1]["digest"] == seeded[MULTI].digest


def test_unreachable_mirror_is_named(tmp_path: Path, registry: LocalRegistry) -> None:
    with FaultProxy(registry.url) as gone:
        url = gone.url
    code, rows, err = scan(tmp_path, url, SINGLE)
    assert code == 3
    assert rows[0]["registry_status"] == "unreachable"
    assert f"mirror {url} for docker.io was unreachable" in err
