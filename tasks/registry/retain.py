"""Keep what a rollback and a rebuild need in a registry the user owns (`registries.retain_to`):
a base image is copied there by digest through the registry API (every platform of an index,
blobs mounted when both sides are one registry, else streamed; manifests PUT as the exact bytes,
so the copy has the source's digest), no Docker daemon needed. A released image exists only on
the Docker host that built it, so it is pushed from there.

A copy lives at ``<retain_to>/<repository>`` (``<host>/<repository>`` for registries other than
Docker Hub), tagged ``<tag>--<digest prefix>``: tagged, so a registry garbage collection keeps it;
one tag per digest, so a re-pushed upstream tag never overwrites what was kept."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.deploy.ledger import BASE, RELEASE, RetainedImage
from tasks.dockerfile.parser import parse_dockerfile
from tasks.errors import BaseImageError, RegistryError
from tasks.images.reference import DOCKER_HUB, ImageReference, parse_reference
from tasks.registry.push import PushClient, RawManifest
from tasks.registry.session import RegistrySession

log = logging.getLogger(__name__)
KEPT_ENV = ("CUDA_VERSION", "NVIDIA_REQUIRE_CUDA", "NVIDIA_CUDA_END_OF_LIFE", "NV_CUDNN_VERSION")


class RetainError(BaseImageError):
    """An image could not be kept; the message names it and the retain registry."""


@dataclass(frozen=True)
class RetainTarget:
    registry: str  # host[:port]
    prefix: str  # path inside it ("" for none)

    @classmethod
    def parse(cls, text: str) -> RetainTarget:
        host, _, prefix = text.strip("/").partition("/")
        return cls(host, prefix.strip("/"))

    def repository(self, source: ImageReference) -> str:
        path = source.repository
        if source.registry != DOCKER_HUB:
            path = f"{re.sub(r'[^a-z0-9.]+', '-', source.registry.lower())}/{path}"
        return f"{self.prefix}/{path}" if self.prefix else path

    def __str__(self) -> str:
        return f"{self.registry}/{self.prefix}" if self.prefix else self.registry


def copy_tag(tag: str | None, digest: str) -> str:
    """``12.6.0-runtime-ubuntu22.04--3f2a9c1b0d4e``: the source tag and the digest it had."""
    short = digest.partition(":")[2][:12]
    head = (tag or "digest")[: 128 - len(short) - 2]
    return f"{head}--{short}"


@dataclass
class CopyStats:
    manifests: int = 0
    blobs_present: int = 0
    blobs_mounted: int = 0
    blobs_copied: int = 0


def _copy_manifest(
    src: PushClient, dst: PushClient, source: ImageReference, repo: str, reference: str, stats: CopyStats
) -> RawManifest:
    manifest = src.manifest(source.repository, reference)
    if manifest is None:
        raise RetainError(f"{source.name}@{reference}: not in the registry any more: nothing to copy")
    for child in manifest.children:
        _copy_manifest(src, dst, source, repo, child, stats)
    same_registry = src.endpoint.url == dst.endpoint.url
    for digest, _size in manifest.blobs:
        if dst.has_blob(repo, digest, "pull,push"):
            stats.blobs_present += 1
        elif same_registry and dst.mount(repo, digest, source.repository):
            stats.blobs_mounted += 1
        else:
            dst.upload(repo, digest, src.blob_chunks(source.repository, digest))
            stats.blobs_copied += 1
    dst.put_manifest(repo, manifest.digest, manifest)
    stats.manifests += 1
    return manifest


def copy_image(
    session: RegistrySession, source: ImageReference, target: RetainTarget, digest: str | None = None
) -> tuple[str, str, CopyStats]:
    """Copy `source` (at `digest` when given, else what its tag names now) to `target`;
    returns (digest, the copy's pullable reference, what was transferred)."""
    src = PushClient(session.endpoint(source.registry), session.transport, session.tokens)
    dst = PushClient(session.endpoint(target.registry), session.transport, session.tokens)
    repo = target.repository(source)
    stats = CopyStats()
    try:
        top = _copy_manifest(src, dst, source, repo, digest or source.reference, stats)
        dst.put_manifest(repo, copy_tag(source.tag, top.digest), top)
    except RegistryError as exc:
        raise RetainError(f"copying {source} to {target}: {exc}") from exc
    return top.digest, f"{target.registry}/{repo}@{top.digest}", stats


def kept_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: env[k] for k in KEPT_ENV if k in env}


def retain_base(
    session: RegistrySession,
    source: ImageReference,
    target: RetainTarget,
    *,
    release: str | None = None,
    release_image_id: str | None = None,
    run: str | None = None,
) -> RetainedImage:
    """One base copied by digest (what its tag names now), with the env a watch compares later."""
    digest, copy, stats = copy_image(session, source, target, source.digest)
    info = session.inspect(parse_reference(f"{target.registry}/{target.repository(source)}@{digest}"))
    log.info(
        "kept %s as %s (%d manifests; blobs: %d copied, %d mounted, %d there already)",
        source,
        copy,
        stats.manifests,
        stats.blobs_copied,
        stats.blobs_mounted,
        stats.blobs_present,
    )
    return RetainedImage(
        str(source), digest, copy, BASE, release, release_image_id, kept_env(info.env if info else {}), run=run
    )


def bases_in(text: str, path: str, build_args: Mapping[str, str]) -> list[ImageReference]:
    """The registry images a Dockerfile's FROMs name (stages, ``scratch`` and unresolved ARGs left out)."""
    found = []
    for base in parse_dockerfile(text, path, build_args).bases:
        if base.reference is not None and base.reference not in found:
            found.append(base.reference)
    return found


def push_release(
    client: Any, image: str, target: RetainTarget, credentials: tuple[str, str] | None = None, run: str | None = None
) -> RetainedImage:
    """Push the locally built release `image` to `target` through the Docker host that has it."""
    import docker.errors

    ref = parse_reference(image)
    repo = f"{target.registry}/{target.repository(ref)}"
    local = client.images.get(image)
    tag = ref.tag or "latest"
    local.tag(repo, tag)
    auth = {"username": credentials[0], "password": credentials[1]} if credentials else None
    try:
        for line in client.images.push(repo, tag, stream=True, decode=True, auth_config=auth):
            if "error" in line:
                raise RetainError(f"pushing {image} to {repo}: {line.get('error')}")
    except docker.errors.APIError as exc:
        raise RetainError(f"pushing {image} to {repo}: {exc.explanation or exc}") from exc
    local.reload()
    digests = [d for d in local.attrs.get("RepoDigests") or [] if d.startswith(f"{repo}@")]
    if not digests:
        raise RetainError(f"pushed {image} to {repo}, but the Docker host recorded no digest for it")
    digest = digests[0].partition("@")[2]
    env = dict(e.split("=", 1) for e in (local.attrs.get("Config") or {}).get("Env") or [] if "=" in e)
    return RetainedImage(image, digest, f"{repo}@{digest}", RELEASE, image, str(local.id), kept_env(env), run=run)
