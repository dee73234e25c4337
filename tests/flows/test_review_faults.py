"""`baseimage review` against the real seeded registry behind the fault-injecting proxy (issue 16):
for each fault, no traceback, the right exit code, and the requests counted. Beyond the
transport's own attempts, the research task is retried by Prefect on transient registry errors,
so a 503 burst longer than `registries.attempts` still completes the review."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.prefect_server import PrefectServer
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry

pytestmark = pytest.mark.docker
OSV = REPO_ROOT / "tests" / "fixtures" / "osv"
BASE = "nvidia/cuda:12.6.0-runtime-ubuntu20.04"  # single-arch: tag list, manifest, config
ATTEMPTS = 2


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIndex]:
    with StaticIndex(build_tree(tmp_path_factory.mktemp("pytorch") / "whl")) as served:
        yield served


@pytest.fixture(scope="module")
def nvidia() -> Iterator[Endpoint]:
    def handle(_req: Request) -> Reply:
        return Reply(404, b"not mirrored")

    with Endpoint(handle) as ep:
        yield ep


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The command runs as a user runs it, a subprocess, against a running server (as the local
    server gives it), so each review takes seconds."""
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-home")).start()
    yield srv
    srv.stop()


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.url) as front:
        yield front


def review(
    tmp_path: Path, proxy: FaultProxy, index: StaticIndex, nvidia: Endpoint, server: PrefectServer
) -> tuple[int, dict[str, Any], str]:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE}\n")
    config = tmp_path / "policy.yaml"
    config.write_text(f"""repository: .
images:
  - {{name: svc, dockerfile: Dockerfile, track: cuda}}
  - {{name: svc2, dockerfile: Dockerfile, track: cuda}}
registries: {{attempts: {ATTEMPTS}, timeout_s: 5, mirrors: {{docker.io: "{proxy.url}"}}}}
research: {{pytorch_index: "{index.url}", osv_db: "{OSV}", nvidia_support_url: "{nvidia.url}/cuda.yaml"}}
""")
    argv = [sys.executable, "-m", "baseimage.cli", "review", "--config", str(config), "--sources", "live"]
    argv += ["--no-banner", "--no-docs", "--out", str(tmp_path / "reports"), "--json"]
    done = subprocess.run(argv, env=server.env(), capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def test_no_fault(
    server: PrefectServer, tmp_path: Path, proxy: FaultProxy, index: StaticIndex, nvidia: Endpoint
) -> None:
    code, report, _ = review(tmp_path, proxy, index, nvidia, server)
    assert code in (0, 10) and all(not i["errors"] for i in report["images"]), report["images"][0]["errors"]
    assert [i["image"] for i in report["images"]] == ["svc", "svc2"], "every image listed"
    # Two images on one base: researched once (tag list, manifest, config).
    assert proxy.count("/tags/list") == 1 and proxy.count("/manifests/") == 1 and proxy.count("/blobs/") == 1


def test_bad_retry_after_falls_back_to_backoff(
    server: PrefectServer, tmp_path: Path, proxy: FaultProxy, index: StaticIndex, nvidia: Endpoint
) -> None:
    proxy.inject(Fault.retry_after("soon", times=1, match="/manifests/"))
    code, report, _ = review(tmp_path, proxy, index, nvidia, server)
    assert code in (0, 10) and not any(i["errors"] for i in report["images"])
    assert proxy.count("/manifests/") == 2


def test_a_503_burst_longer_than_the_attempts_is_retried_by_prefect(
    server: PrefectServer, tmp_path: Path, proxy: FaultProxy, index: StaticIndex, nvidia: Endpoint
) -> None:
    proxy.inject(Fault.burst(503, times=ATTEMPTS, match="/tags/list"))  # the first attempt's every try
    code, report, _ = review(tmp_path, proxy, index, nvidia, server)
    assert code in (0, 10) and not any(i["errors"] for i in report["images"]), report["images"]
    assert proxy.count("/tags/list") == ATTEMPTS + 1, "the task's retry asked again, once"


def test_a_503_that_never_ends_is_an_incomplete_review(
    server: PrefectServer, tmp_path: Path, proxy: FaultProxy, index: StaticIndex, nvidia: Endpoint
) -> None:
    proxy.inject(Fault.burst(503, match="/tags/list"))
    code, report, _ = review(tmp_path, proxy, index, nvidia, server)
    assert code == 3
    assert all(f"HTTP 503 after {ATTEMPTS} attempts" in i["errors"][0] for i in report["images"])
    assert proxy.count("/tags/list") == ATTEMPTS * 3, "the transport's attempts, for each of the task's 3 tries"


def test_a_body_cut_short_is_retried(
    server: PrefectServer, tmp_path: Path, proxy: FaultProxy, index: StaticIndex, nvidia: Endpoint
) -> None:
    proxy.inject(Fault.cut(times=1, match="/blobs/"))
    code, report, _ = review(tmp_path, proxy, index, nvidia, server)
    assert code in (0, 10) and not any(i["errors"] for i in report["images"])
    assert proxy.count("/blobs/") == 2


@pytest.mark.parametrize(
    ("fault", "message", "path", "count"),
    [
        (Fault.null_size(), "size: expected a non-negative integer, got null", "/manifests/", 1),
        (Fault.realm("not a url"), "is not an http(s) URL", "", 1),
        (Fault.redirect_loop(match="/manifests/"), "more than 10 redirects", "/manifests/", 11),
        (Fault.config_body({"config": {"Env": 1}}), "config.Env: expected a list of strings, got int 1", "/blobs/", 1),
    ],
    ids=["null-size", "bad-realm", "redirect-loop", "wrong-shape"],
)
def test_a_wrong_answer_is_an_incomplete_review_not_a_crash(
    server: PrefectServer,
    tmp_path: Path,
    proxy: FaultProxy,
    index: StaticIndex,
    nvidia: Endpoint,
    fault: Fault,
    message: str,
    path: str,
    count: int,
) -> None:
    proxy.inject(fault)
    code, report, _ = review(tmp_path, proxy, index, nvidia, server)
    assert code == 3, report["images"]
    assert all(message in " ".join(i["errors"]) for i in report["images"]), report["images"]
    assert proxy.count(path) == count, "a protocol error is not retried"
