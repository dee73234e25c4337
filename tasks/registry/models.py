"""Typed registry objects parsed at the boundary: manifests, indexes, platforms, image configs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasks.errors import RegistryProtocolError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT_MANIFESTS = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64/v8`` → Platform('linux', 'arm64', 'v8')."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not 'os/arch[/variant]'")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, wanted: Platform) -> bool:
        return (self.os, self.architecture) == (wanted.os, wanted.architecture) and (
            wanted.variant is None or self.variant == wanted.variant
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclass(frozen=True)
class Manifest:
    """An image manifest or an index (manifest list); `digest` is of the exact bytes served."""

    media_type: str
    digest: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return tuple(d.platform for d in self.manifests if d.platform is not None)

    @property
    def compressed_size(self) -> int:
        return sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class ImageConfig:
    """What an image config blob says without pulling a layer: env, labels, created, platform."""

    digest: str
    os: str
    architecture: str
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    created: datetime | None = None
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


def _load(body: bytes, what: str, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryProtocolError(f"{url}: {what} is not valid JSON ({exc})", url=url) from exc
    if not isinstance(data, dict):
        raise RegistryProtocolError(f"{url}: {what} is not a JSON object", url=url)
    return data


def _descriptor(raw: Any, url: str) -> Descriptor:
    if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str):
        raise RegistryProtocolError(f"{url}: descriptor without a digest: {raw!r:.200}", url=url)
    platform = raw.get("platform")
    parsed = None
    if isinstance(platform, dict) and platform.get("os") and platform.get("architecture"):
        parsed = Platform(str(platform["os"]), str(platform["architecture"]), platform.get("variant"))
    return Descriptor(str(raw.get("mediaType", "")), raw["digest"], int(raw.get("size", 0)), parsed)


def parse_manifest(body: bytes, content_type: str | None, url: str) -> Manifest:
    """Parse a manifest or index response; the media type comes from the body, else the header."""
    data = _load(body, "manifest", url)
    media_type = data.get("mediaType") or (content_type or "").split(";")[0].strip()
    if not media_type:
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    digest = sha256_digest(body)
    if media_type in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise RegistryProtocolError(f"{url}: index without a 'manifests' list", url=url)
        return Manifest(media_type, digest, manifests=tuple(_descriptor(m, url) for m in entries))
    if media_type in MANIFEST_TYPES:
        layers = data.get("layers")
        if "config" not in data or not isinstance(layers, list):
            raise RegistryProtocolError(f"{url}: manifest without 'config' and 'layers'", url=url)
        return Manifest(
            media_type,
            digest,
            config=_descriptor(data["config"], url),
            layers=tuple(_descriptor(layer, url) for layer in layers),
        )
    raise RegistryProtocolError(f"{url}: unsupported manifest media type {media_type!r}", url=url)


def parse_config(body: bytes, digest: str, url: str) -> ImageConfig:
    """Parse an image config blob (OCI or Docker v2 config)."""
    data = _load(body, "image config", url)
    inner = data.get("config") or {}
    if not isinstance(inner, dict):
        raise RegistryProtocolError(f"{url}: 'config' is not an object", url=url)
    env: dict[str, str] = {}
    for item in inner.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    created = None
    if isinstance(data.get("created"), str):
        try:
            created = datetime.fromisoformat(data["created"].replace("Z", "+00:00"))
        except ValueError:
            created = None
    return ImageConfig(
        digest=digest,
        os=str(data.get("os", "")),
        architecture=str(data.get("architecture", "")),
        env=env,
        labels={str(k): str(v) for k, v in (inner.get("Labels") or {}).items()},
        created=created,
        entrypoint=tuple(inner.get("Entrypoint") or ()),
        cmd=tuple(inner.get("Cmd") or ()),
    )
