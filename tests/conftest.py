"""Test tiers and the real parts they start.

- unit (no marker): hermetic; any socket to a non-loopback address fails the test.
- ``docker``: a real Docker daemon and real local registries. Under ``CI=true`` a missing
  daemon or registry binary fails the test; it never skips.
- ``gpu``: needs an NVIDIA GPU; ``online``: the real internet. Neither runs in CI.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry_server import LocalRegistry
from tests.support.seed import RegistryWriter, Seeded, seed
from tests.support.universe import cuda_images, universe

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The command line starts a persistent local Prefect server when no PREFECT_API_URL is set (see
# baseimage/local_server.py); tests run their own servers, so commands they start use a temporary
# one unless a test asks for the local server (tests/test_local_server.py).
os.environ.setdefault("BASEIMAGE_SERVER", "off")
# Nor does a command hand itself to a warm process (baseimage/warm.py) one of the developer's own
# commands left running: tests/test_warm.py starts its own and turns this back on.
os.environ.setdefault("BASEIMAGE_WARM", "off")
TEST_LABEL = "baseimage.test"
AUTH = ("ci-user", "ci-password-not-secret")
REPO_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- network guard (unit tier)

_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _loopback(host: Any) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise ConnectionRefusedError(f"tests may only connect to 127.0.0.1, not {address[0]}")
    return _real_connect(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _network_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("online"):
        return
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


# ---------------------------------------------------------------- docker tier


def _unavailable(what: str) -> None:
    message = f"{what} (docker tier)"
    if IN_CI:
        pytest.fail(f"{message}: in CI the docker tier must run; scripts/test starts dockerd", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client of the real daemon; containers and images the tests make are removed by label."""
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # any failure here means "no daemon" to the tier logic
        _unavailable(f"Docker daemon not reachable: {exc}")
    yield client
    import docker.errors

    for label in (TEST_LABEL, "baseimage.validation"):  # also what an aborted flow left behind
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        # An image built FROM another labelled image must go first: retry until none is left.
        for _round in range(5):
            images = client.images.list(filters={"label": label})
            if not images:
                break
            for image in images:
                try:
                    client.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    continue  # it has dependent child images: removed in a later round
    client.close()


def _registry(tmp_path_factory: pytest.TempPathFactory, name: str, auth: tuple[str, str] | None) -> LocalRegistry:
    try:
        return LocalRegistry(tmp_path_factory.mktemp(name), auth=auth).start()
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """Anonymous real registry on 127.0.0.1, seeded with the whole fixture universe."""
    reg = _registry(tmp_path_factory, "registry-anon", None)
    reg.seeded = seed(RegistryWriter(reg.url), universe())
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """htpasswd (basic auth) real registry, seeded with the Ubuntu 22.04 CUDA images."""
    reg = _registry(tmp_path_factory, "registry-auth", AUTH)
    images = [i for i in cuda_images() if i.tag.endswith("ubuntu22.04")]
    reg.seeded = seed(RegistryWriter(reg.url, auth=AUTH), images)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def seeded(registry: LocalRegistry) -> Seeded:
    assert registry.seeded is not None
    return registry.seeded


# ---------------------------------------------------------------- tier accounting

_docker_outcomes: dict[str, int] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "docker" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _docker_outcomes[report.outcome] = _docker_outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _docker_outcomes:
        return
    parts = ", ".join(f"{n} {k}" for k, n in sorted(_docker_outcomes.items()))
    terminalreporter.write_line(f"docker tier: {sum(_docker_outcomes.values())} tests ran ({parts})")
