"""One run's view of every registry: mirrors, credentials, a shared transport and memoisation.

Within a session no request is made twice: tag lists, manifests and configs are memoised by
what they name (concurrent callers of the same key wait for the first). Answers and
deterministic failures (not found, auth, protocol errors) are kept; transient failures are not,
so a retry (a Prefect task retry) asks again. A registry that could not be reached is not tried
again for `unreachable_ttl_s` seconds.

Credentials are keyed by the host they are for: ``credentials[registry]`` goes only to that
registry's own endpoint, a mirror gets ``credentials[mirror host:port]`` and never the upstream
registry's (see `RegistrySession.endpoint`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from tasks.errors import RegistryError, RegistryProtocolError, RegistryTransientError, RegistryUnreachableError
from tasks.http import HttpTransport
from tasks.images.reference import ImageReference
from tasks.registry import dockerhub, nvcr
from tasks.registry.auth import Credentials, TokenCache, realm_origin
from tasks.registry.client import Endpoint, RegistryClient
from tasks.registry.models import Descriptor, ImageConfig, Manifest, Platform

T = TypeVar("T")
LINUX_AMD64 = Platform("linux", "amd64")


class Memo:
    """Thread-safe memo with in-flight de-duplication. Failures are remembered too, except
    transient ones: every caller waiting on that computation gets the error, the next asks again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[Hashable, Future[object]] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:  # re-raised below and to every waiter
                if isinstance(exc, RegistryTransientError):
                    with self._lock:
                        self._futures.pop(key, None)
                future.set_exception(exc)
        return future.result()  # type: ignore[return-value]


@dataclass(frozen=True)
class ImageInfo:
    """What the registry says about one reference, read without pulling layers."""

    reference: ImageReference
    digest: str
    media_type: str
    platforms: tuple[Platform, ...]
    config: ImageConfig | None
    compressed_size: int

    @property
    def env(self) -> dict[str, str]:
        return self.config.env if self.config else {}

    @property
    def cuda_version(self) -> str | None:
        return self.env.get("CUDA_VERSION")

    @property
    def end_of_life(self) -> bool:
        """NVIDIA sets ``NVIDIA_CUDA_END_OF_LIFE`` (non-empty) on runtime images of EOL releases."""
        return bool(self.env.get("NVIDIA_CUDA_END_OF_LIFE"))


def endpoint_url_for_mirror(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"mirror URL {url!r} must be http:// or https:// with a host")
    return url.rstrip("/")


# Registries whose API host, token service or credential rules differ from the reference's name:
# one module each (tasks/registry/dockerhub.py, nvcr.py); any other registry is its own host.
KNOWN_REGISTRIES: dict[str, Callable[[Credentials | None, frozenset[tuple[str, str, int]]], Endpoint]] = {
    dockerhub.NAME: dockerhub.endpoint,
    nvcr.NAME: nvcr.endpoint,
}


class RegistrySession:
    """Registry access for one run; build one per flow run or CLI call."""

    def __init__(
        self,
        mirrors: Mapping[str, str] | None = None,
        credentials: Mapping[str, Credentials] | None = None,
        transport: HttpTransport | None = None,
        platform: Platform = LINUX_AMD64,
        token_realms: Iterable[str] = (),
        unreachable_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mirrors = {k: endpoint_url_for_mirror(v) for k, v in (mirrors or {}).items()}
        self.credentials = {k.lower(): v for k, v in (credentials or {}).items()}
        self.transport = transport or HttpTransport()
        self.tokens = TokenCache()
        self.platform = platform
        self.token_realms = frozenset(o for o in (realm_origin(r) for r in token_realms) if o is not None)
        self.unreachable_ttl_s = unreachable_ttl_s
        self._clock = clock
        self._memo = Memo()
        self._unreachable: dict[str, tuple[RegistryUnreachableError, float]] = {}

    def endpoint(self, registry: str) -> Endpoint:
        """Where `registry`'s API is reached: its mirror if configured, else its own host.

        A mirror is another host: it gets the credentials configured for the mirror's own
        ``host[:port]``, never the upstream registry's."""
        if registry in self.mirrors:
            url = self.mirrors[registry]
            netloc = (urlsplit(url).netloc.rpartition("@")[2]).lower()
            return Endpoint(registry, url, self.credentials.get(netloc), None, self.token_realms)
        credentials = self.credentials.get(registry.lower())
        known = KNOWN_REGISTRIES.get(registry)
        if known is not None:
            return known(credentials, self.token_realms)
        host = registry.split(":")[0]
        # Docker itself talks plain HTTP to loopback registries; everything else is HTTPS.
        scheme = "http" if host in ("localhost", "127.0.0.1", "[::1]") else "https"
        return Endpoint(registry, f"{scheme}://{registry}", credentials, None, self.token_realms)

    def mirror(self, registry: str) -> str | None:
        """The mirror URL `registry` is reached through, if any."""
        return self.mirrors.get(registry)

    def client(self, registry: str) -> RegistryClient:
        return self._memo.get(
            ("client", registry),
            lambda: RegistryClient(self.endpoint(registry), self.transport, self.tokens),
        )

    def _guarded(self, registry: str, call: Callable[[], T]) -> T:
        known = self._unreachable.get(registry)
        if known is not None and self._clock() - known[1] < self.unreachable_ttl_s:
            raise known[0]
        try:
            return call()
        except RegistryUnreachableError as exc:
            self._unreachable[registry] = (exc, self._clock())
            raise

    def tags(self, registry: str, repository: str) -> list[str] | None:
        """All tags of a repository (None when the repository does not exist)."""
        return self._memo.get(
            ("tags", registry, repository),
            lambda: self._guarded(registry, lambda: self.client(registry).list_tags(repository)),
        )

    def manifest(self, registry: str, repository: str, reference: str) -> Manifest | None:
        return self._memo.get(
            ("manifest", registry, repository, reference),
            lambda: self._guarded(registry, lambda: self.client(registry).get_manifest(repository, reference)),
        )

    def config(self, registry: str, repository: str, descriptor: Descriptor) -> ImageConfig:
        return self._memo.get(
            ("config", registry, repository, descriptor.digest),
            lambda: self._guarded(registry, lambda: self.client(registry).get_config(repository, descriptor)),
        )

    def inspect(self, ref: ImageReference) -> ImageInfo | None:
        """Digest, platforms and the config of this session's platform; None if not found."""
        top = self.manifest(ref.registry, ref.repository, ref.reference)
        if top is None:
            return None
        manifest: Manifest | None = top
        platforms: tuple[Platform, ...] = ()
        if top.is_index:
            platforms = top.platforms
            chosen = next((d for d in top.manifests if d.platform and d.platform.matches(self.platform)), None)
            manifest = self.manifest(ref.registry, ref.repository, chosen.digest) if chosen else None
            if chosen and manifest is None:
                raise RegistryProtocolError(f"{ref}: index names {chosen.digest} for {self.platform}, which is missing")
        config = None
        if manifest is not None and manifest.config is not None:
            config = self.config(ref.registry, ref.repository, manifest.config)
            if not top.is_index:
                platforms = (Platform(config.os, config.architecture),)
        return ImageInfo(
            reference=ref,
            digest=top.digest,
            media_type=top.media_type,
            platforms=platforms,
            config=config,
            compressed_size=manifest.compressed_size if manifest else 0,
        )


__all__ = ["ImageInfo", "Memo", "RegistryError", "RegistrySession"]
