"""Faulty registries, unit tier: every answer is typed or a project error naming the URL.

Wrong-shape JSON, bad ``Retry-After``, bodies cut short, redirect loops, realms that are not
URLs, tag lists asked for in one large page; each against a scripted endpoint (and the fault
proxy) on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasks.errors import RegistryProtocolError, RegistryTransientError
from tasks.http import RetryPolicy, retry_after_seconds
from tasks.registry.auth import TokenCache
from tasks.registry.client import Endpoint as RegistryEndpoint
from tasks.registry.client import RegistryClient
from tasks.registry.models import (
    DOCKER_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    parse_config,
    parse_manifest,
    sha256_digest,
)
from tasks.registry.snapshot import RecordingTransport, ReplayTransport
from tests.registry.test_protocol import make_client, manifest_reply
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.http_endpoint import Endpoint, Reply, Request

URL = "http://127.0.0.1:1/v2/x/manifests/t"
GOOD_DESCRIPTOR = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10}


def manifest(**changes: Any) -> bytes:
    data: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": "sha256:" + "c" * 64, "size": 2},
        "layers": [{"mediaType": "x", "digest": "sha256:" + "d" * 64, "size": 7}],
    }
    data.update(changes)
    return json.dumps(data).encode()


# ---------------------------------------------------------------- wrong-shape manifests and configs


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (manifest(config={"digest": "sha256:" + "c" * 64, "size": None}), "config.size: expected a non-negative"),
        (
            manifest(config={"digest": "sha256:" + "c" * 64}),
            "config.size: expected a non-negative integer, got nothing",
        ),
        (manifest(config={"digest": "sha256:" + "c" * 64, "size": -1}), "config.size: expected a non-negative"),
        (manifest(config={"digest": "sha256:" + "c" * 64, "size": True}), "config.size: expected a non-negative"),
        (manifest(config={"digest": "sha256:" + "c" * 64, "size": "2"}), "config.size: expected a non-negative"),
        (manifest(config={"digest": 5, "size": 2}), "config.digest: expected a digest"),
        (manifest(config={"digest": "sha256:../../x", "size": 2}), "config.digest: expected a digest"),
        (manifest(config={"digest": "md5:" + "c" * 32, "size": 2}), "config.digest: expected a digest"),
        (manifest(config=5), "config: expected an object"),
        (manifest(layers=5), "layers: expected a list"),
        (manifest(layers=[5]), "layers[0]: expected an object"),
        (manifest(layers=[{"digest": "sha256:" + "d" * 64, "size": 1, "mediaType": 5}]), "layers[0].mediaType"),
        (manifest(mediaType=5), "mediaType: expected a string"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": {}}).encode(), "manifests: expected a list"),
        (
            json.dumps({"mediaType": OCI_INDEX, "manifests": [{**GOOD_DESCRIPTOR, "platform": 5}]}).encode(),
            "manifests[0].platform: expected an object",
        ),
        (
            json.dumps(
                {"mediaType": OCI_INDEX, "manifests": [{**GOOD_DESCRIPTOR, "platform": {"os": 1, "architecture": "a"}}]}
            ).encode(),
            "manifests[0].platform.os: expected a string",
        ),
        (
            json.dumps({"mediaType": OCI_INDEX, "manifests": [{**GOOD_DESCRIPTOR, "size": None}]}).encode(),
            "manifests[0].size: expected a non-negative integer, got null",
        ),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"size": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_wrong_shape_manifest_is_a_protocol_error_naming_url_and_field(body: bytes, message: str) -> None:
    with pytest.raises(RegistryProtocolError) as info:
        parse_manifest(body, None, URL)
    assert str(info.value).startswith(f"{URL}: ")
    assert message in str(info.value)
    assert info.value.url == URL


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"config": {"Env": 1}}, "config.Env: expected a list of strings"),
        ({"config": {"Env": [1]}}, "config.Env[0]: expected a string"),
        ({"config": {"Labels": []}}, "config.Labels: expected an object of strings"),
        ({"config": {"Labels": {"a": 1}}}, "config.Labels.a: expected a string"),
        ({"config": {"Entrypoint": "sh"}}, "config.Entrypoint: expected a list of strings"),
        ({"config": {"Cmd": [None]}}, "config.Cmd[0]: expected a string"),
        ({"config": 5}, "config: expected an object"),
        ({"os": 5}, "os: expected a string"),
        ({"architecture": ["amd64"]}, "architecture: expected a string"),
        ([], "image config is not a JSON object"),
    ],
)
def test_wrong_shape_config_is_a_protocol_error(config: Any, message: str) -> None:
    with pytest.raises(RegistryProtocolError) as info:
        parse_config(json.dumps(config).encode(), "sha256:" + "c" * 64, URL)
    assert str(info.value).startswith(f"{URL}: ")
    assert message in str(info.value)


def test_config_nulls_mean_absent() -> None:
    config = parse_config(
        json.dumps(
            {"os": "linux", "architecture": "amd64", "config": {"Env": None, "Labels": None, "Cmd": None}}
        ).encode(),
        "sha256:" + "c" * 64,
        URL,
    )
    assert (config.env, config.labels, config.cmd, config.entrypoint) == ({}, {}, (), ())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"tags": 5}', "tags: expected a list of strings, got int"),
        (b'{"tags": [1]}', "tags[0]: expected a tag, got 1"),
        (b'{"tags": ["a/b"]}', "tags[0]: expected a tag, got 'a/b'"),
        (b'{"tags": ["\xd9\xa1"]}', "tags[0]: expected a tag"),
        (b"[]", "tag list is not a JSON object"),
        (b"<html>", "tag list is not valid JSON"),
    ],
)
def test_wrong_shape_tag_list(body: bytes, message: str) -> None:
    from tasks.registry.client import parse_tag_list

    with pytest.raises(RegistryProtocolError) as info:
        parse_tag_list(body, URL)
    assert str(info.value).startswith(f"{URL}: ")
    assert message in str(info.value)


@pytest.mark.parametrize("body", [b'{"tags": null}', b"{}", b'{"name": "x", "tags": []}'])
def test_empty_tag_lists(body: bytes) -> None:
    from tasks.registry.client import parse_tag_list

    assert parse_tag_list(body, URL) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"token": 5}', "'token': expected a non-empty string"),
        (b'{"token": ""}', "answered no token"),
        (b"{}", "answered no token"),
        (b'{"token": "t", "expires_in": "soon"}', "'expires_in': expected a number of seconds"),
        (b'{"token": "t", "expires_in": Infinity}', "not valid JSON"),
        (b'{"token": "t", "expires_in": true}', "'expires_in': expected a number of seconds"),
        (b"[1]", "not a JSON object"),
        (b"tok", "not valid JSON"),
    ],
)
def test_wrong_shape_token_answer(body: bytes, message: str) -> None:
    from tasks.registry.auth import parse_token

    with pytest.raises(RegistryProtocolError) as info:
        parse_token(body, "https://auth.example/token")
    assert "https://auth.example/token" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("body", "token", "expires"),
    [
        (b'{"token": "t"}', "t", 60),
        (b'{"access_token": "a", "expires_in": 300}', "a", 300),
        (b'{"token": "t", "expires_in": 1e12}', "t", 86400),  # a day at most
        (b'{"token": "t", "expires_in": 3}', "t", 60),
    ],
)
def test_token_answers(body: bytes, token: str, expires: int) -> None:
    from tasks.registry.auth import parse_token

    assert parse_token(body, "https://auth.example/token") == (token, expires)


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    "value",
    ["²", "٣", "1.5", "-1", "0x10", "1e3", "Sun, 06 Nov 99999 08:49:37 GMT", "Mon, 32 Foo 2020", "\x00", "9" * 400],
)
def test_malformed_retry_after_is_ignored(value: str) -> None:
    seconds = retry_after_seconds(value)
    assert seconds is None or seconds >= 0


def test_naive_http_date_is_utc() -> None:
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:47 -0000", now=784111777.0) == 10.0


@pytest.mark.parametrize("value", ["²", "soon", "Sun, 06 Nov 99999 08:49:37 GMT"])
def test_malformed_retry_after_falls_back_to_backoff(value: str) -> None:
    answers = iter([Reply(503, b"busy", {"Retry-After": value}), manifest_reply()])
    sleeps: list[float] = []
    with Endpoint(lambda req: next(answers)) as ep:
        assert make_client(ep.url, sleeps=sleeps).get_manifest("nvidia/cuda", "t") is not None
        assert len(ep.requests) == 2
    assert sleeps == [RetryPolicy().backoff]


# ---------------------------------------------------------------- bodies cut short, redirects, realms


def test_body_cut_mid_response_is_retried() -> None:
    with Endpoint(lambda req: manifest_reply()) as ep, FaultProxy(ep.url) as proxy:
        proxy.inject(Fault.cut(times=1))
        sleeps: list[float] = []
        assert make_client(proxy.url, sleeps=sleeps).get_manifest("nvidia/cuda", "t") is not None
        assert proxy.count("/manifests/") == 2
        assert sleeps == [0.5]


def test_body_cut_every_time_is_transient_after_the_attempts() -> None:
    with Endpoint(lambda req: manifest_reply()) as ep, FaultProxy(ep.url) as proxy:
        proxy.inject(Fault.cut(times=None))
        with pytest.raises(RegistryTransientError) as info:
            make_client(proxy.url, attempts=3).get_manifest("nvidia/cuda", "t")
        assert proxy.count("/manifests/") == 3
    assert f"GET {proxy.url}/v2/nvidia/cuda/manifests/t: response cut short" in str(info.value)
    assert "after 3 attempts" in str(info.value)


def test_redirect_loop_is_an_error_naming_the_url() -> None:
    with Endpoint(lambda req: manifest_reply()) as ep, FaultProxy(ep.url) as proxy:
        proxy.inject(Fault.redirect_loop())
        with pytest.raises(RegistryProtocolError) as info:
            make_client(proxy.url).get_manifest("nvidia/cuda", "t")
        received = proxy.count("/manifests/")
    url = f"{proxy.url}/v2/nvidia/cuda/manifests/t"
    assert str(info.value).startswith(f"GET {url}: more than 10 redirects")
    assert info.value.url == url
    assert received == 11  # the request and 10 redirects, then it stops


@pytest.mark.parametrize(
    "realm",
    ["not a url", "ftp://auth.example/token", "file:///etc/passwd", "http://", "//no-scheme/token", "https://[x/t"],
)
def test_realm_that_is_not_an_http_url_is_a_protocol_error(realm: str) -> None:
    def handle(req: Request) -> Reply:
        return Reply(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})

    with Endpoint(handle) as ep:
        with pytest.raises(RegistryProtocolError) as info:
            make_client(ep.url).get_manifest("nvidia/cuda", "t")
        assert len(ep.requests) == 1
    assert f"{ep.url}/v2/nvidia/cuda/manifests/t" in str(info.value)
    assert "realm" in str(info.value) and "is not an http(s) URL" in str(info.value)


def test_other_request_failures_are_registry_errors() -> None:
    """A Location header with a scheme requests cannot follow is an error, not a traceback."""
    with (
        Endpoint(lambda req: Reply(307, headers={"Location": "ftp://x/y"})) as ep,
        pytest.raises(RegistryProtocolError, match=r"/v2/a/b/manifests/t: cannot follow the answer"),
    ):
        make_client(ep.url).get_manifest("a/b", "t")


def test_manifest_with_null_size_through_the_proxy() -> None:
    def handle(req: Request) -> Reply:
        return manifest_reply()

    with Endpoint(handle) as ep, FaultProxy(ep.url) as proxy:
        proxy.inject(Fault.null_size())
        with pytest.raises(RegistryProtocolError, match=r"\.size: expected a non-negative integer, got null"):
            make_client(proxy.url).get_manifest("nvidia/cuda", "t")
        assert proxy.count("/manifests/") == 1  # a protocol error is not retried


def test_config_with_wrong_shape_through_a_client() -> None:
    body = json.dumps({"config": {"Env": 1}}).encode()
    with (
        Endpoint(lambda req: Reply(200, body)) as ep,
        pytest.raises(RegistryProtocolError, match=r"config\.Env: expected a list of strings"),
    ):
        make_client(ep.url).get_config("a/b", Descriptor(DOCKER_CONFIG, sha256_digest(body), len(body)))


# ---------------------------------------------------------------- tag lists: one large page


def capped(tags: list[str], cap: int | None, reject_over: int | None = None) -> Any:
    def handle(req: Request) -> Reply:
        n = int(req.query["n"][0])
        if reject_over is not None and n > reject_over:
            return Reply(400, b'{"errors":[{"code":"PAGINATION_NUMBER_INVALID"}]}')
        n = min(n, cap) if cap else n
        last = req.query.get("last", [""])[0]
        rest = [t for t in sorted(tags) if t > last]
        headers = {"Content-Type": "application/json"}
        if len(rest) > n:
            headers["Link"] = f'</v2/nvidia/cuda/tags/list?n={n}&last={rest[n - 1]}>; rel="next"'
        return Reply(200, json.dumps({"name": "nvidia/cuda", "tags": rest[:n]}).encode(), headers)

    return handle


TAGS_1200 = [f"12.{i // 100}.{i % 100}-runtime-ubuntu22.04" for i in range(1200)]


def test_registry_that_honours_n_needs_one_request_for_1200_tags() -> None:
    with Endpoint(capped(TAGS_1200, None)) as ep:
        assert make_client(ep.url).list_tags("nvidia/cuda") == sorted(TAGS_1200)
        assert len(ep.requests) == 1
        assert ep.requests[0].query["n"] == ["10000"]


def test_registry_that_caps_n_is_paged_through() -> None:
    with Endpoint(capped(TAGS_1200, 100)) as ep:
        assert make_client(ep.url).list_tags("nvidia/cuda") == sorted(TAGS_1200)
        assert len(ep.requests) == 12


def test_registry_that_refuses_a_large_n_gets_a_smaller_one() -> None:
    with Endpoint(capped(TAGS_1200, None, reject_over=1000)) as ep:
        client = make_client(ep.url)
        assert client.list_tags("nvidia/cuda") == sorted(TAGS_1200)
        assert [r.query["n"][0] for r in ep.requests] == ["10000", "1000", "1000"]
        ep.requests.clear()
        client.list_tags("nvidia/cuda")  # the accepted size is remembered
        assert [r.query["n"][0] for r in ep.requests] == ["1000", "1000"]


def test_link_to_another_host_is_refused() -> None:
    def handle(req: Request) -> Reply:
        return Reply(200, b'{"tags": ["a"]}', {"Link": '<http://127.0.0.2:9/v2/x/tags/list?last=a>; rel="next"'})

    with Endpoint(handle) as ep, pytest.raises(RegistryProtocolError, match="points at another host"):
        make_client(ep.url).list_tags("x")


def test_endless_pagination_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tasks.registry.client.MAX_PAGES", 20)

    def handle(req: Request) -> Reply:
        last = int(req.query.get("last", ["0"])[0])
        return Reply(200, json.dumps({"tags": [f"t{last}"]}).encode(), {"Link": f'<?last={last + 1}>; rel="next"'})

    with Endpoint(handle) as ep, pytest.raises(RegistryProtocolError, match="more than 20 pages"):
        make_client(ep.url).list_tags("x")


def test_snapshot_recorded_with_100_tag_pages_still_replays(tmp_path: Path) -> None:
    """Snapshots made before the page size grew (the bundled one asks n=100) answer n=10000."""
    with Endpoint(capped(TAGS_1200[:150], None)) as ep:
        recorder = RecordingTransport(tmp_path, retry=RetryPolicy(attempts=1))
        client = RegistryClient(RegistryEndpoint("test.local", ep.url), recorder, TokenCache())
        assert client.list_tags("nvidia/cuda", page_size=100) == sorted(TAGS_1200[:150])
        recorder.save()
    replay = ReplayTransport(tmp_path, retry=RetryPolicy(attempts=1))
    replayed = RegistryClient(RegistryEndpoint("test.local", ep.url), replay, TokenCache())
    assert replayed.list_tags("nvidia/cuda") == sorted(TAGS_1200[:150])
