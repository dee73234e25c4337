"""Property tests: the registry response parsers turn arbitrary JSON (and arbitrary bytes and
headers) into typed values or a RegistryProtocolError, never anything else."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import RegistryProtocolError
from tasks.http import retry_after_seconds
from tasks.registry.auth import parse_challenge, parse_token, token_request
from tasks.registry.client import parse_tag_list
from tasks.registry.models import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, parse_config, parse_manifest

URL = "http://127.0.0.1:5000/v2/nvidia/cuda/manifests/t"
# Bounded and repeatable: no example database written into the checkout.
BOUNDED = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
KEYS = [
    "mediaType",
    "config",
    "layers",
    "manifests",
    "digest",
    "size",
    "platform",
    "os",
    "architecture",
    "variant",
    "Env",
    "Labels",
    "Entrypoint",
    "Cmd",
    "created",
    "tags",
    "token",
    "access_token",
    "expires_in",
    "schemaVersion",
]
# Objects built from the keys the parsers read, so the strategies reach past the first check.
shaped = st.recursive(
    scalars | st.sampled_from([OCI_MANIFEST, OCI_INDEX, DOCKER_LIST, "sha256:" + "a" * 64, "linux", "A=b"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=30,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


def _only_protocol_errors(call: Any) -> None:
    try:
        call()
    except RegistryProtocolError as exc:
        if not str(exc):
            raise AssertionError("a protocol error without a message") from exc


@BOUNDED
@given(bodies, st.sampled_from([None, OCI_MANIFEST, OCI_INDEX, DOCKER_LIST, "text/html", ""]))
def test_manifest_parser(body: bytes, content_type: str | None) -> None:
    def call() -> None:
        manifest = parse_manifest(body, content_type, URL)
        assert all(isinstance(d.size, int) and d.size >= 0 for d in (*manifest.layers, *manifest.manifests))
        assert manifest.compressed_size >= 0

    _only_protocol_errors(call)


@BOUNDED
@given(bodies)
def test_config_parser(body: bytes) -> None:
    def call() -> None:
        config = parse_config(body, "sha256:" + "c" * 64, URL)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in config.env.items())
        assert all(isinstance(v, str) for v in config.labels.values())

    _only_protocol_errors(call)


@BOUNDED
@given(bodies)
def test_tag_list_parser(body: bytes) -> None:
    _only_protocol_errors(lambda: [t.encode("ascii") for t in parse_tag_list(body, URL)])


@BOUNDED
@given(bodies)
def test_token_parser(body: bytes) -> None:
    def call() -> None:
        token, expires = parse_token(body, "https://auth.example/token")
        assert token and 60 <= expires <= 86400

    _only_protocol_errors(call)


@BOUNDED
@given(st.text(max_size=80))
def test_challenge_and_realm(header: str) -> None:
    challenge = parse_challenge(header)
    if challenge is not None:
        _only_protocol_errors(lambda: token_request(challenge, URL, None))


@BOUNDED
@given(st.text(max_size=40))
def test_retry_after(value: str) -> None:
    seconds = retry_after_seconds(value)
    assert seconds is None or seconds >= 0
