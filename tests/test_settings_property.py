"""Property test: the config loader raises nothing but ConfigError on arbitrary YAML (random
text, random documents, random values merged into a valid policy file, random bytes)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseimage.settings import Settings, load_settings
from tasks.errors import ConfigError

MINIMAL: dict[str, Any] = {"images": [{"name": "training", "dockerfile": "Dockerfile", "track": "cuda"}]}
BOUNDED = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = [
    "images",
    "registries",
    "mirrors",
    "credentials",
    "token_realms",
    "platform",
    "fleet",
    "min_driver",
    "environments",
    "name",
    "dockerfile",
    "track",
    "username",
    "password_env",
    "version",
    "repository",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=16)
    | st.sampled_from(["linux", "linux/amd64", "[/x]", "http://", "https://a:b@c", "2024-02-30", "cuda", "*"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
# YAML's own syntax, so random text reaches anchors, aliases, tags, flow and block styles.
TOKENS = [*"ab:-[]{}&*!|>?,#'\"\n \t%@`\\0129.é\x85\u2028\x00", "!!binary ", "!!timestamp ", "<<: ", "&a ", "*a", "  "]
yaml_text = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


def _load(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_bytes(data)
        try:
            assert isinstance(load_settings(path), Settings)
        except ConfigError as exc:
            if not str(exc).strip():
                raise AssertionError("a ConfigError without a message") from exc


@BOUNDED
@given(yaml_text)
def test_random_yaml_text(text: str) -> None:
    _load(text.encode("utf-8", "surrogatepass"))


@BOUNDED
@given(values)
def test_random_documents(document: Any) -> None:
    _load(yaml.safe_dump(document, allow_unicode=True).encode())


@BOUNDED
@given(st.sampled_from(KEYS), values)
def test_random_values_in_a_valid_policy(key: str, value: Any) -> None:
    document = {**MINIMAL, key: value}
    _load(yaml.safe_dump(document, allow_unicode=True).encode())


@BOUNDED
@given(st.binary(max_size=80))
def test_random_bytes(data: bytes) -> None:
    _load(yaml.safe_dump(MINIMAL).encode() + data)
