"""The registry client against real registries (Debian's distribution 2.8) seeded by the tests."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from tasks.errors import RegistryAuthError
from tasks.http import HttpTransport
from tasks.images.reference import parse_reference
from tasks.registry.auth import Credentials
from tasks.registry.models import OCI_INDEX, Platform
from tasks.registry.session import RegistrySession
from tests.conftest import AUTH
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.registry_server import LocalRegistry
from tests.support.seed import Seeded
from tests.support.universe import cuda_images, ngc_images

pytestmark = pytest.mark.docker


def session_for(registry: LocalRegistry, **kwargs: object) -> RegistrySession:
    return RegistrySession(mirrors={"docker.io": registry.url, "nvcr.io": registry.url}, **kwargs)  # type: ignore[arg-type]


def test_anonymous_tag_list_has_the_whole_universe(registry: LocalRegistry) -> None:
    session = session_for(registry)
    tags = session.tags("docker.io", "nvidia/cuda")
    assert tags is not None and sorted(tags) == sorted(i.tag for i in cuda_images())
    assert len(tags) > 300
    ngc = session.tags("nvcr.io", "nvidia/pytorch")
    assert ngc is not None and set(ngc) == {i.tag for i in ngc_images()}
    assert session.tags("docker.io", "nvidia/does-not-exist") is None


def test_multi_arch_index_resolves_to_the_amd64_config(registry: LocalRegistry, seeded: Seeded) -> None:
    ref = parse_reference("nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04")
    info = session_for(registry).inspect(ref)
    expected = seeded["nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04"]
    assert info is not None
    assert info.media_type == OCI_INDEX
    assert info.digest == expected.digest
    assert info.platforms == (Platform("linux", "amd64"), Platform("linux", "arm64", "v8"))
    assert info.config is not None and info.config.digest == expected.config_digests["amd64"]
    assert info.config.architecture == "amd64"
    assert info.cuda_version == "12.6.3"
    assert info.env["NV_CUDNN_VERSION"] == "9.5.1.17-1"
    assert info.config.labels["com.nvidia.cudnn.version"] == "9.5.1.17-1"
    assert info.config.labels["maintainer"] == "NVIDIA CORPORATION <cudatools@nvidia.com>"
    assert info.env["NVIDIA_REQUIRE_CUDA"].startswith("cuda>=12.6 brand=unknown,driver>=470,driver<471")
    assert info.config.entrypoint == ("/opt/nvidia/nvidia_entrypoint.sh",)
    assert info.end_of_life is False
    assert info.compressed_size > 500_000


def test_arm64_platform_can_be_chosen(registry: LocalRegistry, seeded: Seeded) -> None:
    session = session_for(registry, platform=Platform("linux", "arm64"))
    info = session.inspect(parse_reference("nvidia/cuda:12.8.1-runtime-ubuntu24.04"))
    assert info is not None and info.config is not None
    assert info.config.architecture == "arm64"
    assert info.env["NVARCH"] == "sbsa"
    assert info.config.digest == seeded["nvidia/cuda:12.8.1-runtime-ubuntu24.04"].config_digests["arm64"]


@pytest.mark.parametrize(
    ("tag", "eol", "entrypoint"),
    [
        ("12.1.0-runtime-ubuntu22.04", True, True),
        ("12.1.0-cudnn8-devel-ubuntu22.04", True, True),
        ("12.1.0-base-ubuntu22.04", False, False),  # base images carry no EOL env (facts §1.3)
        ("12.0.0-runtime-ubuntu20.04", True, True),
        ("12.6.0-runtime-ubuntu22.04", False, True),  # superseded, but never rebuilt with the flag
        ("12.9.1-runtime-ubi9", False, True),
    ],
)
def test_end_of_life_flag_comes_from_the_config(registry: LocalRegistry, tag: str, eol: bool, entrypoint: bool) -> None:
    info = session_for(registry).inspect(parse_reference(f"nvidia/cuda:{tag}"))
    assert info is not None and info.config is not None
    assert info.end_of_life is eol
    assert bool(info.config.entrypoint) is entrypoint


def test_single_arch_manifest_reports_its_platform(registry: LocalRegistry, seeded: Seeded) -> None:
    info = session_for(registry).inspect(parse_reference("nvidia/cuda:12.6.0-runtime-ubuntu20.04"))
    assert info is not None
    assert info.platforms == (Platform("linux", "amd64"),)
    assert info.digest == seeded["nvidia/cuda:12.6.0-runtime-ubuntu20.04"].digest


def test_ngc_image_through_the_nvcr_mirror(registry: LocalRegistry, seeded: Seeded) -> None:
    info = session_for(registry).inspect(parse_reference("nvcr.io/nvidia/pytorch:25.04-py3"))
    assert info is not None
    assert info.digest == seeded["nvidia/pytorch:25.04-py3"].digest
    assert info.env["PYTORCH_VERSION"] == "2.7.0a0+79aa17489c"
    assert info.cuda_version == "12.9.0"


def test_missing_tag_is_none(registry: LocalRegistry) -> None:
    assert session_for(registry).inspect(parse_reference("nvidia/cuda:11.0-base-ubuntu20.04")) is None


def test_pinned_digest_is_looked_up_by_digest(registry: LocalRegistry, seeded: Seeded) -> None:
    digest = seeded["nvidia/cuda:12.4.1-runtime-ubuntu22.04"].digest
    info = session_for(registry).inspect(parse_reference(f"nvidia/cuda:12.4.1-runtime-ubuntu22.04@{digest}"))
    assert info is not None and info.digest == digest and info.cuda_version == "12.4.1"


def test_no_request_is_made_twice_in_a_session(registry: LocalRegistry) -> None:
    transport = HttpTransport()
    session = session_for(registry, transport=transport)
    refs = [
        "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
        "nvidia/cuda:12.6.3-runtime-ubuntu22.04",
        "docker.io/nvidia/cuda:12.6.3-runtime-ubuntu22.04",
        "nvidia/cuda:12.1.0-runtime-ubuntu22.04",
    ]
    for text in refs * 3:
        session.inspect(parse_reference(text))
    session.tags("docker.io", "nvidia/cuda")
    session.tags("docker.io", "nvidia/cuda")
    counts = Counter(transport.sent)
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    # two tags x (index + amd64 manifest + config) + one tag list
    assert len(transport.sent) == 7


def test_basic_auth_registry_with_credentials(auth_registry: LocalRegistry) -> None:
    session = RegistrySession(credentials={auth_registry.host: Credentials(*AUTH)})
    ref = parse_reference(f"{auth_registry.host}/nvidia/cuda:12.6.3-runtime-ubuntu22.04")
    info = session.inspect(ref)
    assert info is not None and info.cuda_version == "12.6.3"
    tags = session.tags(auth_registry.host, "nvidia/cuda")
    assert tags is not None and len(tags) > 100 and all(t.endswith("ubuntu22.04") for t in tags)


def test_basic_auth_registry_without_credentials_says_what_to_do(
    auth_registry: LocalRegistry,
) -> None:
    session = RegistrySession()
    with pytest.raises(RegistryAuthError) as info:
        session.inspect(parse_reference(f"{auth_registry.host}/nvidia/cuda:12.6.3-runtime-ubuntu22.04"))
    assert str(info.value) == (
        f"{auth_registry.host} refused GET {auth_registry.url}/v2/nvidia/cuda/manifests/"
        f"12.6.3-runtime-ubuntu22.04 anonymously (HTTP 401); set credentials for {auth_registry.host} "
        "under registries: in config/policy.yaml"
    )


def test_basic_auth_registry_with_wrong_password(auth_registry: LocalRegistry) -> None:
    session = RegistrySession(credentials={auth_registry.host: Credentials(AUTH[0], "wrong")})
    with pytest.raises(RegistryAuthError, match="with the configured credentials"):
        session.tags(auth_registry.host, "nvidia/cuda")


def test_pagination_over_the_real_tag_list(registry: LocalRegistry) -> None:
    """distribution 2.8 ignores ``n`` on tags/list (pagination arrived in v3), so a front that
    pages the real registry's answer by the spec's ``n``/``last``/``Link`` rules stands in; it
    caps a page at 100 tags, as many registries do, whatever ``n`` the client asks for."""
    real = requests.get(f"{registry.url}/v2/nvidia/cuda/tags/list?n=100", timeout=10)
    assert "Link" not in real.headers and len(real.json()["tags"]) > 300  # 2.8: one page
    cap: list[int | None] = [100]

    def paging_front(req: Request) -> Reply:
        n = min(int(req.query["n"][0]), cap[0] or 10**9)
        last = req.query.get("last", [""])[0]
        upstream = requests.get(f"{registry.url}{req.path}", timeout=10).json()["tags"]
        rest = [t for t in sorted(upstream) if t > last]
        headers = {"Content-Type": "application/json"}
        if len(rest) > n:
            headers["Link"] = f'<{req.path}?n={n}&last={rest[n - 1]}>; rel="next"'
        return Reply(200, json.dumps({"name": "nvidia/cuda", "tags": rest[:n]}).encode(), headers)

    with Endpoint(paging_front) as front:
        session = RegistrySession(mirrors={"docker.io": front.url})
        tags = session.tags("docker.io", "nvidia/cuda")
        assert tags == sorted(real.json()["tags"])
        assert len(front.requests) == -(-len(tags) // 100) >= 4
        assert front.requests[0].query["n"] == ["10000"]
        # A front that honours n: the whole list in one request.
        cap[0] = None
        front.requests.clear()
        assert RegistrySession(mirrors={"docker.io": front.url}).tags("docker.io", "nvidia/cuda") == tags
        assert len(front.requests) == 1
