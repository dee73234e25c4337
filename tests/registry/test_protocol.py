"""Registry client against a local scripted endpoint: bearer challenge and token caching,
basic auth, malformed JSON, 429-then-200, 5xx exhaustion, timeouts, pagination, redirects."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from tasks.errors import (
    RegistryAuthError,
    RegistryProtocolError,
    RegistryTransientError,
    RegistryUnreachableError,
)
from tasks.http import HttpTransport, Outcome, RetryPolicy, classify, retry_after_seconds
from tasks.registry.auth import Credentials, TokenCache, parse_challenge
from tasks.registry.client import Endpoint as RegistryEndpoint
from tasks.registry.client import RegistryClient
from tasks.registry.models import OCI_MANIFEST, sha256_digest
from tests.support.http_endpoint import Endpoint, Reply, Request

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "c" * 64,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "d" * 64,
                "size": 7,
            }
        ],
    }
).encode()


def manifest_reply() -> Reply:
    return Reply(
        200,
        MANIFEST,
        {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256_digest(MANIFEST)},
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(
    url: str,
    *,
    sleeps: list[float] | None = None,
    credentials: Credentials | None = None,
    attempts: int = 4,
    timeout: float = 5.0,
    clock: FakeClock | None = None,
    max_concurrency: int = 8,
) -> RegistryClient:
    recorded = sleeps if sleeps is not None else []
    transport = HttpTransport(
        retry=RetryPolicy(attempts=attempts, backoff=0.5),
        timeout=(2.0, timeout),
        sleep=recorded.append,
        max_concurrency=max_concurrency,
    )
    tokens = TokenCache(clock=clock) if clock else TokenCache()
    return RegistryClient(RegistryEndpoint("test.local", url, credentials), transport, tokens)


# ---------------------------------------------------------------- status sorting


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (204, Outcome.OK),
        (307, Outcome.OK),
        (400, Outcome.CLIENT_ERROR),
        (401, Outcome.AUTH),
        (403, Outcome.AUTH),
        (404, Outcome.NOT_FOUND),
        (405, Outcome.CLIENT_ERROR),
        (429, Outcome.TRANSIENT),
        (500, Outcome.TRANSIENT),
        (502, Outcome.TRANSIENT),
        (503, Outcome.TRANSIENT),
        (504, Outcome.TRANSIENT),
    ],
)
def test_classify(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 0 ", 0.0),
        ("soon", None),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value) == seconds


def test_retry_after_http_date_in_the_future() -> None:
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:47 GMT", now=784111777.0) == 10.0


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:nvidia/cuda:pull"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:nvidia/cuda:pull",
            },
        ),
        ('Basic realm="baseimage-test"', "basic", {"realm": "baseimage-test"}),
        (
            "Bearer realm=https://x/token, service=svc",
            "bearer",
            {"realm": "https://x/token", "service": "svc"},
        ),
        (
            'Bearer realm="a,b",scope="repository:a:pull,push"',
            "bearer",
            {"realm": "a,b", "scope": "repository:a:pull,push"},
        ),
    ],
)
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None and challenge.scheme == scheme and challenge.params == params


def test_credentials_never_show_the_password() -> None:
    creds = Credentials("user", "hunter2")
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds)


# ---------------------------------------------------------------- bearer


def bearer_registry(state: dict[str, int], *, expires_in: int = 300, require_basic: str | None = None) -> object:
    def handle(req: Request) -> Reply:
        if req.path == "/token":
            if require_basic and req.headers.get("authorization") != require_basic:
                return Reply(401, b'{"details":"incorrect username or password"}')
            state["tokens"] += 1
            assert req.query["service"] == ["test-registry"]
            token = f"tok{state['tokens']}"
            return Reply(200, json.dumps({"token": token, "expires_in": expires_in}).encode())
        if req.headers.get("authorization") != f"Bearer tok{state['tokens']}" or not state["tokens"]:
            challenge = (
                f'Bearer realm="{state_url(state)}/token",service="test-registry",scope="repository:nvidia/cuda:pull"'
            )
            return Reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        return manifest_reply()

    return handle


def state_url(state: dict[str, int]) -> str:
    return str(state["url"])  # type: ignore[index]


def test_bearer_challenge_token_is_fetched_once_and_reused() -> None:
    state: dict[str, int] = {"tokens": 0}
    with Endpoint(bearer_registry(state)) as ep:  # type: ignore[arg-type]
        state["url"] = ep.url  # type: ignore[assignment]
        client = make_client(ep.url)
        assert client.get_manifest("nvidia/cuda", "12.6.3-runtime-ubuntu22.04") is not None
        assert client.get_manifest("nvidia/cuda", "12.8.1-runtime-ubuntu22.04") is not None
        token_request = ep.requests[1]
        assert token_request.query["scope"] == ["repository:nvidia/cuda:pull"]
        assert ep.paths() == [
            "GET /v2/nvidia/cuda/manifests/12.6.3-runtime-ubuntu22.04",  # 401 + challenge
            "GET /token",
            "GET /v2/nvidia/cuda/manifests/12.6.3-runtime-ubuntu22.04",
            "GET /v2/nvidia/cuda/manifests/12.8.1-runtime-ubuntu22.04",  # token reused
        ]


def test_bearer_token_is_renewed_after_expiry() -> None:
    state: dict[str, int] = {"tokens": 0}
    clock = FakeClock()
    with Endpoint(bearer_registry(state, expires_in=60)) as ep:  # type: ignore[arg-type]
        state["url"] = ep.url  # type: ignore[assignment]
        client = make_client(ep.url, clock=clock)
        client.get_manifest("nvidia/cuda", "a")
        clock.now += 45  # still valid (renewal 10 s before expiry)
        client.get_manifest("nvidia/cuda", "b")
        assert state["tokens"] == 1
        clock.now += 10  # within the renewal margin: fetch a new one up front
        client.get_manifest("nvidia/cuda", "c")
        assert state["tokens"] == 2
        assert ep.paths()[-2:] == ["GET /token", "GET /v2/nvidia/cuda/manifests/c"]


def test_token_service_gets_basic_credentials() -> None:
    expected = "Basic " + base64.b64encode(b"$oauthtoken:ngc-key").decode()
    state: dict[str, int] = {"tokens": 0}
    with Endpoint(bearer_registry(state, require_basic=expected)) as ep:  # type: ignore[arg-type]
        state["url"] = ep.url  # type: ignore[assignment]
        client = make_client(ep.url, credentials=Credentials("$oauthtoken", "ngc-key"))
        assert client.get_manifest("nvidia/cuda", "x") is not None


def test_token_service_refusal_is_an_auth_error_without_the_secret() -> None:
    state: dict[str, int] = {"tokens": 0}
    with Endpoint(bearer_registry(state, require_basic="Basic nope")) as ep:  # type: ignore[arg-type]
        state["url"] = ep.url  # type: ignore[assignment]
        client = make_client(ep.url, credentials=Credentials("me", "s3cr3t-value"))
        with pytest.raises(RegistryAuthError) as info:
            client.get_manifest("nvidia/cuda", "x")
    assert str(info.value) == (
        f"token service {ep.url}/token refused the configured credentials for repository:nvidia/cuda:pull (HTTP 401)"
    )
    assert "s3cr3t" not in str(info.value)


def test_forbidden_after_token_is_a_clear_auth_error() -> None:
    def handle(req: Request) -> Reply:
        if req.path == "/token":
            return Reply(200, b'{"access_token": "t"}')
        if "authorization" not in req.headers:
            return Reply(401, headers={"WWW-Authenticate": f'Bearer realm="{url[0]}/token",service="s"'})
        return Reply(403, b'{"errors":[{"code":"DENIED"}]}')

    url: list[str] = []
    with Endpoint(handle) as ep:
        url.append(ep.url)
        with pytest.raises(RegistryAuthError) as info:
            make_client(ep.url).get_manifest("private/repo", "1")
    assert str(info.value) == (
        f"test.local refused GET {ep.url}/v2/private/repo/manifests/1 anonymously "
        "(HTTP 403); set credentials for test.local under registries: in "
        "config/policy.yaml"
    )


def test_basic_challenge_uses_credentials_and_remembers() -> None:
    expected = "Basic " + base64.b64encode(b"u:p").decode()

    def handle(req: Request) -> Reply:
        if req.headers.get("authorization") != expected:
            return Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return manifest_reply()

    with Endpoint(handle) as ep:
        client = make_client(ep.url, credentials=Credentials("u", "p"))
        client.get_manifest("a/b", "1")
        client.get_manifest("a/b", "2")
        assert len(ep.requests) == 3  # one 401, then credentials sent up front


# ---------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", OCI_MANIFEST, "manifest is not valid JSON"),
        (b"[1, 2]", OCI_MANIFEST, "manifest is not a JSON object"),
        (b'{"schemaVersion": 2}', OCI_MANIFEST, "manifest without 'config' and 'layers'"),
        (
            b'{"mediaType": "application/vnd.oci.image.index.v1+json"}',
            None,
            "index without a 'manifests' list",
        ),
        (
            b'{"mediaType": "application/x-weird", "x": 1}',
            None,
            "unsupported manifest media type 'application/x-weird'",
        ),
    ],
)
def test_malformed_manifest_is_a_protocol_error(body: bytes, content_type: str | None, message: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with (
        Endpoint(lambda req: Reply(200, body, headers)) as ep,
        pytest.raises(RegistryProtocolError) as info,
    ):
        make_client(ep.url).get_manifest("nvidia/cuda", "t")
    assert str(info.value).startswith(f"{ep.url}/v2/nvidia/cuda/manifests/t: {message}")


def test_malformed_tag_list_is_a_protocol_error() -> None:
    with (
        Endpoint(lambda req: Reply(200, b"<html>proxy error</html>")) as ep,
        pytest.raises(RegistryProtocolError, match=r"tags/list\?n=10000: tag list is not valid JSON"),
    ):
        make_client(ep.url).list_tags("nvidia/cuda")


def test_digest_mismatch_is_refused() -> None:
    with (
        Endpoint(lambda req: Reply(200, MANIFEST, {"Docker-Content-Digest": "sha256:" + "0" * 64})) as ep,
        pytest.raises(RegistryProtocolError, match="does not match sha256:0000"),
    ):
        make_client(ep.url).get_manifest("nvidia/cuda", "t")


def test_not_found_is_none_not_an_error() -> None:
    with Endpoint(lambda req: Reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')) as ep:
        client = make_client(ep.url)
        assert client.get_manifest("nvidia/cuda", "11.0-base") is None
        assert client.list_tags("nvidia/nothing") is None
        assert client.head_manifest("nvidia/cuda", "x") is None


# ---------------------------------------------------------------- transient failures


def test_429_then_200_honours_retry_after() -> None:
    answers = iter([Reply(429, b"slow down", {"Retry-After": "3"}), manifest_reply()])
    sleeps: list[float] = []
    with Endpoint(lambda req: next(answers)) as ep:
        assert make_client(ep.url, sleeps=sleeps).get_manifest("nvidia/cuda", "t") is not None
        assert len(ep.requests) == 2
    assert sleeps == [3.0]


def test_5xx_exhaustion_backs_off_then_fails() -> None:
    sleeps: list[float] = []
    with Endpoint(lambda req: Reply(503, b"unavailable")) as ep:
        with pytest.raises(RegistryTransientError) as info:
            make_client(ep.url, sleeps=sleeps).get_manifest("nvidia/cuda", "t")
        assert len(ep.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert str(info.value) == (
        f"GET {ep.url}/v2/nvidia/cuda/manifests/t: HTTP 503 after 4 attempts; "
        "check the network or the mirror in config/policy.yaml"
    )
    assert not isinstance(info.value, RegistryUnreachableError)


def test_retry_after_is_capped() -> None:
    sleeps: list[float] = []
    answers = iter([Reply(429, headers={"Retry-After": "86400"}), manifest_reply()])
    with Endpoint(lambda req: next(answers)) as ep:
        make_client(ep.url, sleeps=sleeps).get_manifest("nvidia/cuda", "t")
    assert sleeps == [30.0]


def test_timeouts_are_retried_then_reported() -> None:
    sleeps: list[float] = []
    with Endpoint(lambda req: Reply(200, MANIFEST, delay=0.6)) as ep:
        with pytest.raises(RegistryTransientError) as info:
            make_client(ep.url, sleeps=sleeps, attempts=2, timeout=0.2).get_manifest("nvidia/cuda", "t")
        assert len(ep.requests) == 2
    assert "timed out after 0.2 s after 2 attempts" in str(info.value)


def test_slow_then_fast_recovers() -> None:
    answers = iter([Reply(200, MANIFEST, delay=0.6), manifest_reply()])
    with Endpoint(lambda req: next(answers)) as ep:
        assert make_client(ep.url, timeout=0.2).get_manifest("nvidia/cuda", "t") is not None


def test_connection_refused_is_unreachable() -> None:
    with Endpoint(lambda req: Reply()) as ep:
        url = ep.url
    with pytest.raises(RegistryUnreachableError, match="cannot connect"):
        make_client(url, attempts=2).get_manifest("nvidia/cuda", "t")


def test_concurrency_is_bounded() -> None:
    with Endpoint(lambda req: Reply(200, MANIFEST, delay=0.1)) as ep:
        client = make_client(ep.url, max_concurrency=2)
        threads = [threading.Thread(target=client.get_manifest, args=("a/b", str(i))) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ep.requests) == 8
        assert ep.max_in_flight == 2


# ---------------------------------------------------------------- pagination and redirects


def paginated(tags: list[str], ignore_n: bool = False) -> object:
    """A registry that pages by the spec's n/last/Link and, like many, caps a page at 100 tags."""

    def handle(req: Request) -> Reply:
        n = min(100, int(req.query.get("n", ["1000"])[0]))
        last = req.query.get("last", [""])[0]
        remaining = sorted(t for t in tags if t > last)
        page = remaining if ignore_n else remaining[:n]
        headers = {"Content-Type": "application/json"}
        if not ignore_n and len(remaining) > n:
            headers["Link"] = f'</v2/nvidia/cuda/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return Reply(200, json.dumps({"name": "nvidia/cuda", "tags": page}).encode(), headers)

    return handle


def test_tag_pagination_follows_link_headers() -> None:
    tags = [f"12.{i // 10}.{i % 10}-runtime-ubuntu22.04" for i in range(250)]
    with Endpoint(paginated(tags)) as ep:  # type: ignore[arg-type]
        assert make_client(ep.url).list_tags("nvidia/cuda") == sorted(tags)
        assert [r.query.get("last", [""])[0] for r in ep.requests] == [
            "",
            sorted(tags)[99],
            sorted(tags)[199],
        ]
        assert ep.requests[0].query["n"] == ["10000"]  # the largest page first; the cap is the registry's


def test_registry_that_ignores_n_returns_everything_in_one_call() -> None:
    tags = [f"t{i:03d}" for i in range(150)]
    with Endpoint(paginated(tags, ignore_n=True)) as ep:  # type: ignore[arg-type]
        assert make_client(ep.url).list_tags("nvidia/cuda") == tags
        assert len(ep.requests) == 1


def test_blob_redirect_to_another_host_drops_authorization() -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["CUDA_VERSION=12.6.3"]}}).encode()
    digest = sha256_digest(config)
    with Endpoint(lambda req: Reply(200, config)) as storage:

        def handle(req: Request) -> Reply:
            if req.path == "/token":
                return Reply(200, b'{"token": "tok"}')
            if "authorization" not in req.headers:
                return Reply(
                    401,
                    headers={"WWW-Authenticate": f'Bearer realm="{reg_url[0]}/token",service="s"'},
                )
            return Reply(307, headers={"Location": f"{storage.url}/blob/{digest}"})

        reg_url: list[str] = []
        with Endpoint(handle) as ep:
            reg_url.append(ep.url)
            from tasks.registry.models import Descriptor

            got = make_client(ep.url).get_config("nvidia/cuda", Descriptor("x", digest, len(config)))
        assert got.env == {"CUDA_VERSION": "12.6.3"}
        assert storage.requests[0].path == f"/blob/{digest}"
        assert "authorization" not in storage.requests[0].headers
