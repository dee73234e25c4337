"""A registry of a test's own (tests that delete or re-push tags must not touch the shared one),
seeded with a few fixture images, and the push side the tests use to re-push a tag."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tasks.registry.models import ACCEPT_MANIFESTS, OCI_MANIFEST
from tests.support.registry_server import LocalRegistry
from tests.support.seed import RegistryWriter, seed
from tests.support.universe import cuda_images


def private_registry(root: Path, tags: set[str]) -> LocalRegistry:
    """A running registry holding `nvidia/cuda:<tag>` for each of `tags` (fixture images)."""
    registry = LocalRegistry(root).start()
    images = [i for i in cuda_images() if i.tag in tags]
    assert {i.tag for i in images} == tags, tags - {i.tag for i in images}
    registry.seeded = seed(RegistryWriter(registry.url), images)
    return registry


def repush(registry: LocalRegistry, repository: str, tag: str, env_changes: dict[str, str]) -> str:
    """Push a new amd64 manifest under `tag` whose config differs in `env_changes` (as NVIDIA
    re-pushing a tag does); returns the new digest."""
    writer = RegistryWriter(registry.url)
    top = requests.get(
        f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS}, timeout=10
    )
    top.raise_for_status()
    body = top.json()
    if "manifests" in body:
        child = next(m for m in body["manifests"] if m["platform"]["architecture"] == "amd64")
        got = requests.get(
            f"{registry.url}/v2/{repository}/manifests/{child['digest']}",
            headers={"Accept": ACCEPT_MANIFESTS},
            timeout=10,
        )
        got.raise_for_status()
        body = got.json()
    config = requests.get(f"{registry.url}/v2/{repository}/blobs/{body['config']['digest']}", timeout=10).json()
    env = dict(item.split("=", 1) for item in config["config"]["Env"])
    env.update(env_changes)
    config["config"]["Env"] = [f"{k}={v}" for k, v in env.items()]
    blob = json.dumps(config, sort_keys=True).encode()
    body["config"] = {**body["config"], "digest": writer.push_blob(repository, blob), "size": len(blob)}
    manifest = json.dumps(body, sort_keys=True).encode()
    return writer.push_manifest(repository, tag, manifest, OCI_MANIFEST)


def delete_tag(registry: LocalRegistry, repository: str, tag: str) -> None:
    """Delete what `tag` names (distribution deletes by digest; started with deletes enabled)."""
    head = requests.head(
        f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS}, timeout=10
    )
    head.raise_for_status()
    digest = head.headers["Docker-Content-Digest"]
    done = requests.delete(f"{registry.url}/v2/{repository}/manifests/{digest}", timeout=10)
    assert done.status_code == 202, done.text
    gone = requests.head(
        f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS}, timeout=10
    )
    assert gone.status_code == 404, gone.status_code
