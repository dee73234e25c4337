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


def content_digest(data: bytes, like: str) -> str:
    """The digest of `data` with the algorithm of the digest `like` (sha256 unless sha512)."""
    if like.startswith("sha512:"):
        return "sha512:" + hashlib.sha512(data).hexdigest()
    return sha256_digest(data)


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


_DIGEST_HEX = {"sha256": 64, "sha512": 128}
_MISSING = object()


def is_digest(value: object) -> bool:
    """A ``sha256:``/``sha512:`` digest with the right number of lower-case hex digits."""
    if not isinstance(value, str):
        return False
    algorithm, sep, hexpart = value.partition(":")
    size = _DIGEST_HEX.get(algorithm)
    return bool(sep) and size == len(hexpart) and all(c in "0123456789abcdef" for c in hexpart)


def _got(value: object) -> str:
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return f"{type(value).__name__} {value!r:.40}"
    return f"{type(value).__name__}"


def _wrong(url: str, where: str, expected: str, value: object) -> RegistryProtocolError:
    return RegistryProtocolError(f"{url}: {where}: expected {expected}, got {_got(value)}", url=url)


def load_json_object(body: bytes, what: str, url: str) -> dict[str, Any]:
    """Strict JSON (no NaN/Infinity), which must be an object; anything else names the URL."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, >4300-digit ints, nesting
        reason = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise RegistryProtocolError(f"{url}: {what} is not valid JSON ({reason:.200})", url=url) from exc
    if not isinstance(data, dict):
        raise RegistryProtocolError(f"{url}: {what} is not a JSON object", url=url)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _string(data: dict[str, Any], key: str, url: str, where: str, default: str | None = None) -> str:
    value = data.get(key, _MISSING)
    if value is _MISSING and default is not None:
        return default
    if not isinstance(value, str):
        raise _wrong(url, where, "a string", value)
    return value


def _platform(raw: object, url: str, where: str) -> Platform:
    if not isinstance(raw, dict):
        raise _wrong(url, where, "an object", raw)
    os_ = _string(raw, "os", url, f"{where}.os")
    arch = _string(raw, "architecture", url, f"{where}.architecture")
    variant = raw.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise _wrong(url, f"{where}.variant", "a string", variant)
    return Platform(os_, arch, variant or None)


def _descriptor(raw: object, url: str, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _wrong(url, where, "an object", raw)
    digest = raw.get("digest", _MISSING)
    if not is_digest(digest):
        shown = f"{digest!r:.80}" if isinstance(digest, str) else _got(digest)
        raise RegistryProtocolError(
            f"{url}: {where}.digest: expected a digest (sha256:<64 hex> or sha512:<128 hex>), got {shown}", url=url
        )
    size = raw.get("size", _MISSING)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _wrong(url, f"{where}.size", "a non-negative integer", size)
    media_type = _string(raw, "mediaType", url, f"{where}.mediaType", default="")
    platform = raw.get("platform")
    parsed = _platform(platform, url, f"{where}.platform") if platform is not None else None
    return Descriptor(media_type, str(digest), size, parsed)


def _list(data: dict[str, Any], key: str, url: str) -> list[Any]:
    value = data.get(key, _MISSING)
    if not isinstance(value, list):
        raise _wrong(url, key, "a list", value)
    return value


def parse_manifest(body: bytes, content_type: str | None, url: str) -> Manifest:
    """Parse a manifest or index response; the media type comes from the body, else the header."""
    data = load_json_object(body, "manifest", url)
    media_type = _string(data, "mediaType", url, "mediaType", default="")
    if not media_type:
        media_type = (content_type or "").split(";")[0].strip()
    if not media_type:
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    digest = sha256_digest(body)
    if media_type in INDEX_TYPES:
        if "manifests" not in data:
            raise RegistryProtocolError(f"{url}: index without a 'manifests' list", url=url)
        entries = _list(data, "manifests", url)
        return Manifest(
            media_type, digest, manifests=tuple(_descriptor(m, url, f"manifests[{i}]") for i, m in enumerate(entries))
        )
    if media_type in MANIFEST_TYPES:
        if "config" not in data or "layers" not in data:
            raise RegistryProtocolError(f"{url}: manifest without 'config' and 'layers'", url=url)
        layers = _list(data, "layers", url)
        return Manifest(
            media_type,
            digest,
            config=_descriptor(data["config"], url, "config"),
            layers=tuple(_descriptor(layer, url, f"layers[{i}]") for i, layer in enumerate(layers)),
        )
    raise RegistryProtocolError(f"{url}: unsupported manifest media type {media_type!r:.100}", url=url)


def _strings(value: object, url: str, where: str) -> tuple[str, ...]:
    """A JSON list of strings (null or absent: empty)."""
    if value is None or value is _MISSING:
        return ()
    if not isinstance(value, list):
        raise _wrong(url, where, "a list of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong(url, f"{where}[{i}]", "a string", item)
    return tuple(value)


def parse_config(body: bytes, digest: str, url: str) -> ImageConfig:
    """Parse an image config blob (OCI or Docker v2 config)."""
    data = load_json_object(body, "image config", url)
    inner = data.get("config")
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise _wrong(url, "config", "an object", inner)
    env: dict[str, str] = {}
    for item in _strings(inner.get("Env"), url, "config.Env"):
        key, _, value = item.partition("=")
        env[key] = value
    labels_raw = inner.get("Labels")
    if labels_raw is None:
        labels_raw = {}
    if not isinstance(labels_raw, dict):
        raise _wrong(url, "config.Labels", "an object of strings", labels_raw)
    labels: dict[str, str] = {}
    for key, value in labels_raw.items():
        if not isinstance(value, str):
            raise _wrong(url, f"config.Labels.{key:.80}", "a string", value)
        labels[key] = value
    created = None
    if isinstance(data.get("created"), str):
        try:
            created = datetime.fromisoformat(data["created"].replace("Z", "+00:00"))
        except ValueError:
            created = None  # informational only; a registry's odd date is not worth failing over
    return ImageConfig(
        digest=digest,
        os=_string(data, "os", url, "os", default=""),
        architecture=_string(data, "architecture", url, "architecture", default=""),
        env=env,
        labels=labels,
        created=created,
        entrypoint=_strings(inner.get("Entrypoint"), url, "config.Entrypoint"),
        cmd=_strings(inner.get("Cmd"), url, "config.Cmd"),
    )
