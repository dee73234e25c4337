"""Copying an image by digest through the registry API between two real registries (docker
tier): a layer larger than one upload chunk goes up in PATCHed pieces and arrives intact, the
copy keeps the source's digest, a blob already there is not sent again, and within one registry
blobs are mounted instead of copied."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tasks.images.reference import parse_reference
from tasks.registry.models import OCI_CONFIG, OCI_MANIFEST
from tasks.registry.push import CHUNK
from tasks.registry.retain import RetainTarget, copy_image
from tasks.registry.session import RegistrySession
from tests.conftest import _unavailable
from tests.support.registry_server import LocalRegistry
from tests.support.seed import LAYER_TYPE, RegistryWriter, digest_of

pytestmark = pytest.mark.docker


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[LocalRegistry, LocalRegistry]]:
    try:
        a, b = LocalRegistry(tmp_path / "a").start(), LocalRegistry(tmp_path / "b").start()
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise
    yield a, b
    a.stop()
    b.stop()


def push_big_image(registry: LocalRegistry) -> tuple[str, bytes]:
    writer = RegistryWriter(registry.url)
    layer = os.urandom(CHUNK + 12345)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["CUDA_VERSION=12.6.3"]}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": writer.push_blob("nvidia/cuda", config), "size": len(config)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": writer.push_blob("nvidia/cuda", layer), "size": len(layer)}],
        }
    ).encode()
    return writer.push_manifest("nvidia/cuda", "big", manifest, OCI_MANIFEST), layer


def test_a_copy_keeps_the_digest_and_the_bytes(two: tuple[LocalRegistry, LocalRegistry]) -> None:
    source, keep = two
    digest, layer = push_big_image(source)
    session = RegistrySession()
    got, copy, stats = copy_image(
        session, parse_reference(f"{source.host}/nvidia/cuda:big"), RetainTarget.parse(f"{keep.host}/keep")
    )
    assert got == digest and copy == f"{keep.host}/keep/{source.host.replace(':', '-')}/nvidia/cuda@{digest}"
    assert (stats.manifests, stats.blobs_copied, stats.blobs_present, stats.blobs_mounted) == (1, 2, 0, 0)
    repo = f"keep/{source.host.replace(':', '-')}/nvidia/cuda"
    kept = requests.get(f"{keep.url}/v2/{repo}/blobs/{digest_of(layer)}", timeout=30).content
    assert kept == layer, "the layer arrived byte for byte (in more than one chunk)"
    assert requests.get(f"{keep.url}/v2/{repo}/tags/list", timeout=10).json()["tags"] == [f"big--{digest[7:19]}"]
    again = copy_image(
        session, parse_reference(f"{source.host}/nvidia/cuda:big"), RetainTarget.parse(f"{keep.host}/keep")
    )[2]
    assert (again.blobs_copied, again.blobs_present) == (0, 2), "what is there already is not sent again"


def test_within_one_registry_blobs_are_mounted(two: tuple[LocalRegistry, LocalRegistry]) -> None:
    source, _ = two
    digest, _layer = push_big_image(source)
    got, _, stats = copy_image(
        RegistrySession(), parse_reference(f"{source.host}/nvidia/cuda:big"), RetainTarget.parse(f"{source.host}/keep")
    )
    assert got == digest and (stats.blobs_mounted, stats.blobs_copied) == (2, 0)
