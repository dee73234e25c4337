"""Seed a registry with the fixture universe through the registry API: the shared layer once,
then a config blob and a manifest per image and platform, an index for multi-arch tags.

Seconds, not minutes: no ``docker push`` per tag, requests in parallel on one keep-alive pool.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests

from tasks.registry.models import DOCKER_CONFIG, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from tasks.registry.session import Memo
from tests.support.rootfs import build_layer
from tests.support.universe import FixtureImage

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class RegistryWriter:
    """Just enough of the push side of the API to seed test registries."""

    url: str
    auth: tuple[str, str] | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        # The same blob pushed twice at once can leave it briefly unknown to distribution 2.8:
        # one push per digest, the others wait for it.
        self._pushed = Memo()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        if self.auth:
            self.session.auth = self.auth

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        return self._pushed.get((repo, digest), lambda: self._push_blob(repo, data, digest))

    def _push_blob(self, repo: str, data: bytes, digest: str) -> str:
        # Single-request monolithic upload (distribution spec: POST ...?digest=).
        done = self.session.post(
            f"{self.url}/v2/{repo}/blobs/uploads/?digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=60,
        )
        if done.status_code == 202:  # the registry wants the two-step upload
            location = urljoin(self.url, done.headers["Location"])
            sep = "&" if "?" in location else "?"
            done = self.session.put(
                f"{location}{sep}digest={digest}",
                data=data,
                timeout=60,
                headers={"Content-Type": "application/octet-stream"},
            )
        done.raise_for_status()
        return digest

    def push_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        response = self.session.put(
            f"{self.url}/v2/{repo}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
            timeout=30,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"push {repo}:{reference}: HTTP {response.status_code} {response.text}")
        return digest_of(body)


@dataclass
class SeededImage:
    repository: str
    tag: str
    digest: str  # what the tag resolves to (the index for multi-arch tags)
    platform_digests: dict[str, str]
    config_digests: dict[str, str]
    env: dict[str, str]


def _config(image: FixtureImage, arch: str, diff_id: str) -> bytes:
    env = dict(image.env)
    if arch == "arm64" and "NVARCH" in env:
        env["NVARCH"] = "sbsa"
    config: dict[str, object] = {
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": image.labels,
        "Cmd": image.cmd,
    }
    if image.entrypoint:
        config["Entrypoint"] = image.entrypoint
    body = {
        "created": image.created,
        "architecture": arch,
        "os": "linux",
        **({"variant": "v8"} if arch == "arm64" else {}),
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": image.created, "created_by": "baseimage test fixture"}],
    }
    return json.dumps(body, sort_keys=True).encode()


@dataclass
class Seeded:
    images: dict[str, SeededImage]  # keyed by "repository:tag"
    seconds: float

    def __getitem__(self, key: str) -> SeededImage:
        return self.images[key]


def seed(writer: RegistryWriter, images: list[FixtureImage], workers: int = 8) -> Seeded:
    """Push every image through the API, in parallel."""
    layer, diff_id = build_layer()
    for repo in sorted({i.repository for i in images}):
        writer.push_blob(repo, layer)
    layer_desc = {"mediaType": LAYER_TYPE, "digest": digest_of(layer), "size": len(layer)}

    def push(image: FixtureImage) -> SeededImage:
        arches = ["amd64", "arm64"] if image.multi_arch else ["amd64"]
        platform_digests: dict[str, str] = {}
        config_digests: dict[str, str] = {}
        entries = []
        for arch in arches:
            config = _config(image, arch, diff_id)
            config_digests[arch] = writer.push_blob(image.repository, config)
            # Docker v2 config media type for single-arch images, OCI for index children:
            # both kinds occur on Docker Hub and the client must read both.
            manifest = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": OCI_CONFIG if image.multi_arch else DOCKER_CONFIG,
                    "digest": config_digests[arch],
                    "size": len(config),
                },
                "layers": [layer_desc],
            }
            body = json.dumps(manifest, sort_keys=True).encode()
            reference = digest_of(body) if image.multi_arch else image.tag
            platform_digests[arch] = writer.push_manifest(image.repository, reference, body, OCI_MANIFEST)
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": platform_digests[arch],
                    "size": len(body),
                    "platform": {
                        "architecture": arch,
                        "os": "linux",
                        **({"variant": "v8"} if arch == "arm64" else {}),
                    },
                }
            )
        if image.multi_arch:
            index = json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, sort_keys=True
            ).encode()
            digest = writer.push_manifest(image.repository, image.tag, index, OCI_INDEX)
        else:
            digest = platform_digests["amd64"]
        return SeededImage(image.repository, image.tag, digest, platform_digests, config_digests, image.env)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        seeded = list(pool.map(push, images))
    return Seeded({f"{s.repository}:{s.tag}": s for s in seeded}, time.monotonic() - started)
