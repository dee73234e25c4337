"""A client for one registry endpoint: tags with pagination, manifests, config blobs.

Auth follows the challenge the registry sends: Bearer (token from realm/service/scope, cached),
Basic (configured credentials), or anonymous. Responses become typed objects in `models`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from tasks.errors import RegistryAuthError, RegistryError, RegistryProtocolError
from tasks.http import HttpTransport, Outcome, classify, speaking_as
from tasks.registry.auth import Challenge, Credentials, TokenCache, origin, parse_challenge, plain_http_refusal
from tasks.registry.models import (
    ACCEPT_MANIFESTS,
    Descriptor,
    ImageConfig,
    Manifest,
    content_digest,
    is_digest,
    load_json_object,
    parse_config,
    parse_manifest,
)

log = logging.getLogger(__name__)

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# Docker's tag grammar (ASCII only): what a registry may list.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
# Page sizes tried for tag lists, largest first: one request where the registry honours `n`;
# a registry that refuses a size (HTTP 400) is asked with the next one, remembered per client.
PAGE_SIZES = (10000, 1000, 100)
MAX_PAGES = 1000


def parse_tag_list(body: bytes, url: str) -> list[str]:
    """One ``tags/list`` page: its tags (``"tags": null`` or absent is an empty page)."""
    data = load_json_object(body, "tag list", url)
    tags = data.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise RegistryProtocolError(f"{url}: tags: expected a list of strings, got {type(tags).__name__}", url=url)
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise RegistryProtocolError(f"{url}: tags[{i}]: expected a tag, got {tag!r:.80}", url=url)
    return tags


@dataclass(frozen=True)
class Endpoint:
    """Where a registry's API lives and what is known about its auth up front."""

    name: str  # the registry as written in references: docker.io, nvcr.io, 127.0.0.1:5000
    url: str  # base URL of the API: https://registry-1.docker.io
    credentials: Credentials | None = None
    challenge: Challenge | None = None  # a known bearer challenge saves the first 401
    # Token realms on other hosts that may receive `credentials` (scheme, host, port).
    trusted_realms: frozenset[tuple[str, str, int]] = frozenset()


class ChallengedCalls:
    """What the read client and the push client share: one endpoint's credentials (never sent
    over plain http to a host that is not loopback), the auth its challenges asked for (a bearer
    token per scope, or Basic once a Basic challenge was seen), and one call through it."""

    def __init__(self, endpoint: Endpoint, transport: HttpTransport, tokens: TokenCache) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.tokens = tokens
        self._challenge: Challenge | None = endpoint.challenge
        self._use_basic = False  # learnt from the first Basic challenge, so later calls skip the 401
        self._credentials = endpoint.credentials
        refusal = plain_http_refusal(endpoint.url) if endpoint.credentials else None
        if refusal is not None:
            log.warning("not sending the credentials for %s to %s: %s", endpoint.name, endpoint.url, refusal)
            self._credentials = None

    def _auth(self, scope: str, challenged_by: str) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The Authorization header (a bearer token for `scope`) or Basic credentials to send;
        `challenged_by` is the URL that sent the challenge, for the realm check."""
        headers: dict[str, str] = {}
        basic = self._credentials.as_tuple() if self._use_basic and self._credentials else None
        if self._challenge is not None and self._challenge.scheme == "bearer":
            token = self.tokens.fetch(
                self.transport,
                self._challenge,
                scope,
                self._credentials,
                challenged_by,
                self.endpoint.trusted_realms,
            )
            headers["Authorization"] = f"Bearer {token}"
        return headers, basic

    def _exchange(
        self,
        method: str,
        url: str,
        scope: str,
        refused: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        ok: tuple[int, ...] = (),
        challenged_by: str | None = None,
    ) -> requests.Response | None:
        """One logical call with auth as challenged: a status in `ok` or 2xx is the response, 404
        is None, a refusal is a RegistryAuthError ending with `refused` (what to configure),
        anything else a RegistryError."""
        for _round in range(2):
            auth_headers, basic = self._auth(scope, challenged_by or url)
            response = self.transport.request(
                method, url, headers={**(headers or {}), **auth_headers}, auth=basic, body=body
            )
            outcome = classify(response.status_code)
            if outcome is Outcome.OK or response.status_code in ok:
                return response
            if outcome is Outcome.NOT_FOUND:
                return None
            if outcome is Outcome.AUTH and _round == 0:
                challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
                if challenge and challenge.scheme == "bearer" and response.status_code == 401:
                    self._challenge = challenge
                    continue
                if challenge and challenge.scheme == "basic" and self._credentials:
                    self._use_basic = True
                    continue
            if outcome is Outcome.AUTH:
                how = "with the configured credentials" if self._credentials else "anonymously"
                raise RegistryAuthError(
                    f"{self.endpoint.name} refused {method} {url} {how} (HTTP {response.status_code}); {refused}",
                    url=url,
                    status=response.status_code,
                )
            raise RegistryError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:200]}",
                url=url,
                status=response.status_code,
            )
        raise RegistryAuthError(f"{self.endpoint.name}: authentication loop on {url}", url=url)


class RegistryClient(ChallengedCalls):
    """Read-only registry API client; every call goes through one shared transport."""

    def __init__(self, endpoint: Endpoint, transport: HttpTransport, tokens: TokenCache) -> None:
        super().__init__(endpoint, transport, tokens)
        self._page_size: int | None = None  # the largest tag-list page this registry accepted

    def _url(self, path: str) -> str:
        return self.endpoint.url.rstrip("/") + path

    @speaking_as("registry")
    def _send(self, method: str, url: str, repo: str, accept: str | None) -> requests.Response | None:
        """One logical call: auth as challenged, 404 → None, other failures raise."""
        return self._exchange(
            method,
            url,
            f"repository:{repo}:pull",
            f"set credentials for {self.endpoint.name} under registries: in config/policy.yaml",
            headers={"Accept": accept} if accept else {},
        )

    def list_tags(self, repo: str, page_size: int | None = None) -> list[str] | None:
        """Every tag of `repo` (following ``Link`` pagination), or None if the repo is unknown.

        The first page asks for `page_size` tags (default: the largest of `PAGE_SIZES` this
        registry accepts, so one request where it honours ``n``); later pages follow ``Link``."""
        start = PAGE_SIZES.index(self._page_size) if self._page_size in PAGE_SIZES else 0
        sizes = [page_size] if page_size else list(PAGE_SIZES[start:])
        response: requests.Response | None = None
        url = ""
        for i, size in enumerate(sizes):
            url = self._url(f"/v2/{repo}/tags/list?n={size}")
            try:
                response = self._send("GET", url, repo, "application/json")
            except RegistryError as exc:
                if exc.status == 400 and i + 1 < len(sizes):
                    continue  # this registry refuses a page that large: ask for a smaller one
                raise
            self._page_size = size
            break
        if response is None:
            return None
        tags: list[str] = []
        seen_urls = {url}
        while True:
            tags.extend(parse_tag_list(response.content, url))
            match = _NEXT_LINK.search(response.headers.get("Link", ""))
            if not match:
                return tags
            following = urljoin(url, match[1])
            if origin(following) != origin(url):
                raise RegistryProtocolError(f"{url}: the Link to the next page points at another host", url=url)
            if following in seen_urls:
                return tags
            if len(seen_urls) >= MAX_PAGES:
                raise RegistryProtocolError(f"{url}: tag list of more than {MAX_PAGES} pages", url=url)
            seen_urls.add(following)
            url = following
            page = self._send("GET", url, repo, "application/json")
            if page is None:
                return tags
            response = page

    def get_manifest(self, repo: str, reference: str) -> Manifest | None:
        """The manifest or index `reference` (tag or digest) names, or None when absent."""
        url = self._url(f"/v2/{repo}/manifests/{reference}")
        response = self._send("GET", url, repo, ACCEPT_MANIFESTS)
        if response is None:
            return None
        manifest = parse_manifest(response.content, response.headers.get("Content-Type"), url)
        served = response.headers.get("Docker-Content-Digest")
        expected = reference if is_digest(reference) else served
        if expected and is_digest(expected) and content_digest(response.content, expected) != expected:
            raise RegistryProtocolError(f"{url}: body digest {manifest.digest} does not match {expected}", url=url)
        return manifest

    def head_manifest(self, repo: str, reference: str) -> str | None:
        """The digest of `reference` from a HEAD request, or None when absent."""
        url = self._url(f"/v2/{repo}/manifests/{reference}")
        response = self._send("HEAD", url, repo, ACCEPT_MANIFESTS)
        if response is None:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if digest is not None and not is_digest(digest):
            raise RegistryProtocolError(f"{url}: Docker-Content-Digest {digest!r:.80} is not a digest", url=url)
        return digest

    def get_config(self, repo: str, descriptor: Descriptor) -> ImageConfig:
        """The image config blob a manifest points at, verified against its digest."""
        url = self._url(f"/v2/{repo}/blobs/{descriptor.digest}")
        response = self._send("GET", url, repo, None)
        if response is None:
            raise RegistryError(f"{url}: config blob is missing from the registry", url=url, status=404)
        if content_digest(response.content, descriptor.digest) != descriptor.digest:
            raise RegistryProtocolError(f"{url}: config blob does not match its digest", url=url)
        return parse_config(response.content, descriptor.digest, url)
