"""A client for one registry endpoint: tags with pagination, manifests, config blobs.

Auth follows the challenge the registry sends: Bearer (token from realm/service/scope, cached),
Basic (configured credentials), or anonymous. Responses become typed objects in `models`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from tasks.errors import RegistryAuthError, RegistryError, RegistryProtocolError
from tasks.registry.auth import Challenge, Credentials, TokenCache, parse_challenge
from tasks.registry.http import HttpTransport, Outcome, classify
from tasks.registry.models import (
    ACCEPT_MANIFESTS,
    Descriptor,
    ImageConfig,
    Manifest,
    parse_config,
    parse_manifest,
    sha256_digest,
)

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class Endpoint:
    """Where a registry's API lives and what is known about its auth up front."""

    name: str  # the registry as written in references: docker.io, nvcr.io, 127.0.0.1:5000
    url: str  # base URL of the API: https://registry-1.docker.io
    credentials: Credentials | None = None
    challenge: Challenge | None = None  # a known bearer challenge saves the first 401


class RegistryClient:
    """Read-only registry API client; every call goes through one shared transport."""

    def __init__(self, endpoint: Endpoint, transport: HttpTransport, tokens: TokenCache) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.tokens = tokens
        self._challenge = endpoint.challenge
        self._use_basic = False  # learnt from the first Basic challenge, so later calls skip the 401

    def _url(self, path: str) -> str:
        return self.endpoint.url.rstrip("/") + path

    def _send(self, method: str, url: str, repo: str, accept: str | None) -> requests.Response | None:
        """One logical call: auth as challenged, 404 → None, other failures raise."""
        headers = {"Accept": accept} if accept else {}
        scope = f"repository:{repo}:pull"
        for _round in range(2):
            basic = self.endpoint.credentials.as_tuple() if self._use_basic and self.endpoint.credentials else None
            if self._challenge is not None and self._challenge.scheme == "bearer":
                token = self.tokens.fetch(self.transport, self._challenge, scope, self.endpoint.credentials)
                headers["Authorization"] = f"Bearer {token}"
            response = self.transport.request(method, url, headers=headers, auth=basic)
            outcome = classify(response.status_code)
            if outcome is Outcome.OK:
                return response
            if outcome is Outcome.NOT_FOUND:
                return None
            if outcome is Outcome.AUTH and _round == 0:
                challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
                if challenge and challenge.scheme == "bearer" and response.status_code == 401:
                    self._challenge = challenge
                    continue
                if challenge and challenge.scheme == "basic" and self.endpoint.credentials:
                    self._use_basic = True
                    continue
            if outcome is Outcome.AUTH:
                how = "with the configured credentials" if self.endpoint.credentials else "anonymously"
                raise RegistryAuthError(
                    f"{self.endpoint.name} refused {method} {url} {how} "
                    f"(HTTP {response.status_code}); set credentials for {self.endpoint.name} "
                    "under registries: in config/policy.yaml",
                    url=url,
                    status=response.status_code,
                )
            raise RegistryError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:200]}",
                url=url,
                status=response.status_code,
            )
        raise RegistryAuthError(f"{self.endpoint.name}: authentication loop on {url}", url=url)

    def list_tags(self, repo: str, page_size: int = 100) -> list[str] | None:
        """Every tag of `repo` (following ``Link`` pagination), or None if the repo is unknown."""
        url: str | None = self._url(f"/v2/{repo}/tags/list?n={page_size}")
        tags: list[str] = []
        seen_urls: set[str] = set()
        while url and url not in seen_urls:
            seen_urls.add(url)
            response = self._send("GET", url, repo, "application/json")
            if response is None:
                return tags or None
            try:
                page = json.loads(response.content).get("tags") or []
            except (ValueError, AttributeError) as exc:
                raise RegistryProtocolError(f"{url}: tag list is not valid JSON ({exc})", url=url) from exc
            tags.extend(str(t) for t in page)
            match = _NEXT_LINK.search(response.headers.get("Link", ""))
            url = urljoin(url, match[1]) if match else None
        return tags

    def get_manifest(self, repo: str, reference: str) -> Manifest | None:
        """The manifest or index `reference` (tag or digest) names, or None when absent."""
        url = self._url(f"/v2/{repo}/manifests/{reference}")
        response = self._send("GET", url, repo, ACCEPT_MANIFESTS)
        if response is None:
            return None
        manifest = parse_manifest(response.content, response.headers.get("Content-Type"), url)
        served = response.headers.get("Docker-Content-Digest")
        expected = reference if reference.startswith("sha256:") else served
        if expected and expected.startswith("sha256:") and expected != manifest.digest:
            raise RegistryProtocolError(f"{url}: body digest {manifest.digest} does not match {expected}", url=url)
        return manifest

    def head_manifest(self, repo: str, reference: str) -> str | None:
        """The digest of `reference` from a HEAD request, or None when absent."""
        url = self._url(f"/v2/{repo}/manifests/{reference}")
        response = self._send("HEAD", url, repo, ACCEPT_MANIFESTS)
        if response is None:
            return None
        return response.headers.get("Docker-Content-Digest")

    def get_config(self, repo: str, descriptor: Descriptor) -> ImageConfig:
        """The image config blob a manifest points at, verified against its digest."""
        url = self._url(f"/v2/{repo}/blobs/{descriptor.digest}")
        response = self._send("GET", url, repo, None)
        if response is None:
            raise RegistryError(f"{url}: config blob is missing from the registry", url=url, status=404)
        if descriptor.digest.startswith("sha256:") and sha256_digest(response.content) != descriptor.digest:
            raise RegistryProtocolError(f"{url}: config blob does not match its digest", url=url)
        return parse_config(response.content, descriptor.digest, url)
