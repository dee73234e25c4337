"""Credentials go only to the host they are for (issue 11): a registry's own endpoint and its own
token realm, a mirror only its own credentials, never plain http to a host that is not loopback,
never a token realm on another host unless it is listed in ``registries.token_realms``.

Each test looks at what the servers on 127.0.0.1 actually received."""

from __future__ import annotations

import base64
import logging

import pytest

from tasks.errors import RegistryAuthError
from tasks.http import HttpTransport, RetryPolicy
from tasks.images.reference import parse_reference
from tasks.registry.auth import Challenge, Credentials, TokenCache, plain_http_refusal, token_request
from tasks.registry.session import RegistrySession
from tests.conftest import AUTH
from tests.registry.test_protocol import manifest_reply
from tests.support.fault_proxy import FaultProxy
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.registry_server import LocalRegistry

SECRET = "s3cr3t-registry-password"
CREDS = Credentials("me", SECRET)
BASIC = "Basic " + base64.b64encode(f"me:{SECRET}".encode()).decode()


def transport(**kwargs: object) -> HttpTransport:
    return HttpTransport(retry=RetryPolicy(attempts=1), timeout=(2.0, 5.0), **kwargs)  # type: ignore[arg-type]


def token_server() -> Endpoint:
    return Endpoint(lambda req: Reply(200, b'{"token": "tok", "expires_in": 300}'))


def bearer_registry(realm: list[str]) -> Endpoint:
    def handle(req: Request) -> Reply:
        if req.headers.get("authorization") != "Bearer tok":
            return Reply(401, headers={"WWW-Authenticate": f'Bearer realm="{realm[0]}",service="svc"'})
        return manifest_reply()

    return Endpoint(handle)


def basic_registry() -> Endpoint:
    def handle(req: Request) -> Reply:
        if req.headers.get("authorization") != BASIC:
            return Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return manifest_reply()

    return Endpoint(handle)


# ---------------------------------------------------------------- the rules, as a table


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://registry.example", False),
        ("http://127.0.0.1:5000", False),
        ("http://localhost:5000", False),
        ("http://[::1]:5000", False),
        ("http://127.8.9.1", False),
        ("http://registry.example:5000", True),
        ("http://10.0.0.1", True),
        ("ftp://registry.example", True),
    ],
)
def test_plain_http_rule(url: str, refused: bool) -> None:
    assert (plain_http_refusal(url) is not None) is refused


@pytest.mark.parametrize(
    ("registry", "realm", "trusted", "sent"),
    [
        ("https://nvcr.io/v2/x", "https://nvcr.io/proxy_auth", (), True),
        ("https://nvcr.io/v2/x", "https://nvcr.io:443/proxy_auth", (), True),  # same origin, port spelt out
        ("https://reg.example/v2/x", "https://auth.example/token", (), False),
        ("https://reg.example/v2/x", "https://reg.example:8443/token", (), False),  # another port
        ("https://reg.example/v2/x", "http://reg.example/token", (), False),  # another scheme (and plain http)
        ("https://reg.example/v2/x", "https://auth.example/token", (("https", "auth.example", 443),), True),
        ("https://reg.example/v2/x", "http://auth.example/token", (("http", "auth.example", 80),), False),
        ("http://127.0.0.1:5000/v2/x", "http://127.0.0.1:5000/token", (), True),
        ("http://127.0.0.1:5000/v2/x", "http://127.0.0.1:5001/token", (), False),
    ],
)
def test_realm_rule(registry: str, realm: str, trusted: tuple[tuple[str, str, int], ...], sent: bool) -> None:
    ask = token_request(Challenge("bearer", {"realm": realm}), registry, CREDS, frozenset(trusted))
    assert (ask.credentials is not None) is sent
    assert (ask.refusal is None) is sent
    assert SECRET not in (ask.refusal or "")


# ---------------------------------------------------------------- what loopback servers received


def test_own_realm_gets_the_credentials() -> None:
    realm: list[str] = []

    def handle(req: Request) -> Reply:
        if req.path == "/token":
            return Reply(200, b'{"token": "tok"}')
        if req.headers.get("authorization") != "Bearer tok":
            return Reply(401, headers={"WWW-Authenticate": f'Bearer realm="{realm[0]}",service="svc"'})
        return manifest_reply()

    with Endpoint(handle) as reg:
        realm.append(f"{reg.url}/token")
        host = reg.url.removeprefix("http://")
        session = RegistrySession(credentials={host: CREDS}, transport=transport())
        assert session.manifest(host, "nvidia/cuda", "t") is not None
        token_requests = [r for r in reg.requests if r.path == "/token"]
    assert [r.headers.get("authorization") for r in token_requests] == [BASIC]


def test_foreign_realm_gets_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    realm: list[str] = []
    with token_server() as tokens, bearer_registry(realm) as reg:
        realm.append(f"{tokens.url}/token")
        host = reg.url.removeprefix("http://")
        session = RegistrySession(credentials={host: CREDS}, transport=transport())
        with caplog.at_level(logging.WARNING):
            assert session.manifest(host, "nvidia/cuda", "t") is not None  # the anonymous token works
        assert len(tokens.requests) == 1
        assert "authorization" not in tokens.requests[0].headers
    assert "not the registry's own host; list it under registries.token_realms" in caplog.text
    assert SECRET not in caplog.text


def test_listed_token_realm_gets_the_credentials() -> None:
    realm: list[str] = []
    with token_server() as tokens, bearer_registry(realm) as reg:
        realm.append(f"{tokens.url}/token")
        host = reg.url.removeprefix("http://")
        session = RegistrySession(credentials={host: CREDS}, transport=transport(), token_realms=[f"{tokens.url}"])
        assert session.manifest(host, "nvidia/cuda", "t") is not None
        assert [r.headers.get("authorization") for r in tokens.requests] == [BASIC]


def test_mirror_gets_no_upstream_credentials() -> None:
    with basic_registry() as mirror:
        session = RegistrySession(
            mirrors={"docker.io": mirror.url}, credentials={"docker.io": CREDS}, transport=transport()
        )
        with pytest.raises(RegistryAuthError, match="anonymously"):
            session.manifest("docker.io", "nvidia/cuda", "t")
        assert mirror.requests and all("authorization" not in r.headers for r in mirror.requests)


def test_mirror_gets_its_own_credentials() -> None:
    other = Credentials("docker-hub-user", "docker-hub-password")
    with basic_registry() as mirror:
        host = mirror.url.removeprefix("http://")
        session = RegistrySession(
            mirrors={"docker.io": mirror.url}, credentials={"docker.io": other, host: CREDS}, transport=transport()
        )
        assert session.manifest("docker.io", "nvidia/cuda", "t") is not None
        sent = {r.headers.get("authorization") for r in mirror.requests}
    assert sent == {None, BASIC}  # the first 401, then the mirror's own credentials


def test_plain_http_to_a_remote_host_gets_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    """A mirror at http://registry.example: requests go through an HTTP proxy on 127.0.0.1, which
    sees exactly what would have gone over the wire."""
    with basic_registry() as wire:
        plain = transport()
        plain.session.proxies = {"http": wire.url}
        session = RegistrySession(
            mirrors={"docker.io": "http://registry.example:5000"},
            credentials={"registry.example:5000": CREDS},
            transport=plain,
        )
        with caplog.at_level(logging.WARNING), pytest.raises(RegistryAuthError):
            session.manifest("docker.io", "nvidia/cuda", "t")
        assert wire.requests and all("authorization" not in r.headers for r in wire.requests)
    assert "registry.example:5000 is plain http and not loopback" in caplog.text
    assert SECRET not in caplog.text


def test_plain_http_realm_gets_no_credentials_even_when_listed() -> None:
    with token_server() as wire:
        plain = transport()
        plain.session.proxies = {"http": wire.url}  # http://auth.example is reached through it
        tokens = TokenCache()
        challenge = Challenge("bearer", {"realm": "http://auth.example/token", "service": "svc"})
        trusted = frozenset({("http", "auth.example", 80)})
        token = tokens.fetch(plain, challenge, "repository:x:pull", CREDS, "https://reg.example/v2/x", trusted)
        assert token == "tok"
        assert [r.headers.get("authorization") for r in wire.requests] == [None]


# ---------------------------------------------------------------- the real registry, behind a recorder


@pytest.mark.docker
def test_real_registry_as_a_mirror_gets_only_its_own_credentials(auth_registry: LocalRegistry) -> None:
    ref = parse_reference("nvidia/cuda:12.6.3-runtime-ubuntu22.04")
    with FaultProxy(auth_registry.url) as recorder:
        upstream_only = RegistrySession(
            mirrors={"docker.io": recorder.url}, credentials={"docker.io": Credentials(*AUTH)}, transport=transport()
        )
        with pytest.raises(RegistryAuthError):
            upstream_only.inspect(ref)
        assert recorder.requests and all("authorization" not in r.headers for r in recorder.requests)
        recorder.clear()
        own = RegistrySession(
            mirrors={"docker.io": recorder.url},
            credentials={"docker.io": CREDS, recorder.host: Credentials(*AUTH)},
            transport=transport(),
        )
        info = own.inspect(ref)
        assert info is not None and info.cuda_version == "12.6.3"
        expected = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()
        assert {r.headers.get("authorization") for r in recorder.requests} <= {None, expected}
        assert any(r.headers.get("authorization") == expected for r in recorder.requests)
