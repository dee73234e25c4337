"""The write side of the registry API for one endpoint, beside the read-only client (whose read
paths stay as they are): manifests as exact bytes (so a copy keeps its digest), blob existence,
cross-repository mount, chunked upload, manifest and index PUT. Auth follows the challenge as
the client does, asking for ``pull,push`` on the repository written to.

Blobs are streamed in chunks (`CHUNK` bytes in memory at a time): a CUDA layer is gigabytes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from tasks.errors import RegistryError, RegistryProtocolError
from tasks.http import speaking_as
from tasks.registry.client import ChallengedCalls
from tasks.registry.models import ACCEPT_MANIFESTS, content_digest, is_digest, load_json_object

log = logging.getLogger(__name__)
CHUNK = 16 * 1024 * 1024


@dataclass(frozen=True)
class RawManifest:
    body: bytes
    media_type: str
    digest: str

    @property
    def children(self) -> list[str]:
        """Digests of the manifests an index names (empty for an image manifest)."""
        data = load_json_object(self.body, "manifest", self.digest)
        return [str(m["digest"]) for m in data.get("manifests") or []]

    @property
    def blobs(self) -> list[tuple[str, int]]:
        """(digest, size) of the config and layers of an image manifest."""
        data = load_json_object(self.body, "manifest", self.digest)
        found = [data["config"]] if isinstance(data.get("config"), dict) else []
        found += [layer for layer in data.get("layers") or [] if isinstance(layer, dict)]
        return [(str(d["digest"]), int(d.get("size") or 0)) for d in found]


class PushClient(ChallengedCalls):
    """Read exact manifests and blobs from, and write them to, one registry endpoint."""

    def url(self, path: str) -> str:
        return self.endpoint.url.rstrip("/") + path

    @speaking_as("registry")
    def send(
        self,
        method: str,
        url: str,
        repo: str,
        actions: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        ok: tuple[int, ...] = (),
    ) -> requests.Response | None:
        """One call with auth as challenged; 404 -> None (unless in `ok`), other failures raise."""
        return self._exchange(
            method,
            url,
            f"repository:{repo}:{actions}",
            f"set registries.credentials.{self.endpoint.name} in config/policy.yaml (it needs {actions})",
            headers=headers,
            body=body,
            ok=ok,
            challenged_by=self.endpoint.url,
        )

    def manifest(self, repo: str, reference: str) -> RawManifest | None:
        """The exact bytes `reference` names (digest-checked), or None when absent."""
        url = self.url(f"/v2/{repo}/manifests/{reference}")
        response = self.send("GET", url, repo, "pull", {"Accept": ACCEPT_MANIFESTS})
        if response is None:
            return None
        body = response.content
        served = response.headers.get("Docker-Content-Digest")
        expected = reference if is_digest(reference) else (served if is_digest(served) else None)
        digest = content_digest(body, expected or "sha256:")
        if expected and digest != expected:
            raise RegistryProtocolError(f"{url}: body digest {digest} does not match {expected}", url=url)
        data = load_json_object(body, "manifest", url)
        media_type = str(data.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0])
        if not media_type:
            raise RegistryProtocolError(f"{url}: manifest has no media type", url=url)
        return RawManifest(body, media_type, digest)

    def put_manifest(self, repo: str, reference: str, manifest: RawManifest) -> str:
        """PUT the exact bytes under `reference` (a tag or its digest); the digest must not change."""
        url = self.url(f"/v2/{repo}/manifests/{reference}")
        response = self.send("PUT", url, repo, "pull,push", {"Content-Type": manifest.media_type}, manifest.body)
        if response is None:
            raise RegistryError(f"PUT {url}: HTTP 404 (a blob or manifest it names is missing)", url=url, status=404)
        served = response.headers.get("Docker-Content-Digest")
        if served and served != manifest.digest:
            raise RegistryProtocolError(f"PUT {url}: stored as {served}, not {manifest.digest}", url=url)
        return manifest.digest

    def has_blob(self, repo: str, digest: str, actions: str = "pull") -> bool:
        return self.send("HEAD", self.url(f"/v2/{repo}/blobs/{digest}"), repo, actions) is not None

    def mount(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount on this registry; False when it started an upload instead."""
        url = self.url(f"/v2/{repo}/blobs/uploads/?mount={digest}&from={from_repo}")
        response = self.send("POST", url, repo, "pull,push", {"Content-Length": "0"}, b"", ok=(202,))
        if response is not None and response.status_code == 202 and response.headers.get("Location"):
            # An upload was opened instead: cancel it, the caller copies the blob.
            self.send("DELETE", urljoin(url, response.headers["Location"]), repo, "pull,push", ok=(204, 202))
        return response is not None and response.status_code == 201

    def blob_chunks(self, repo: str, digest: str) -> Iterator[bytes]:
        """The blob's bytes in chunks (streamed: a HEAD first settles auth, then one GET)."""
        url = self.url(f"/v2/{repo}/blobs/{digest}")
        if self.send("HEAD", url, repo, "pull") is None:
            raise RegistryError(f"{url}: blob is missing from the registry", url=url, status=404)
        headers, basic = self._auth(repo, "pull")
        try:
            response = self.transport.session.get(
                url, headers=headers, auth=basic, stream=True, timeout=self.transport.timeout
            )
        except requests.RequestException as exc:
            raise RegistryError(f"GET {url}: {type(exc).__name__}: {exc}", url=url) from exc
        if response.status_code != 200:
            raise RegistryError(f"GET {url}: HTTP {response.status_code}", url=url, status=response.status_code)
        try:
            yield from response.iter_content(CHUNK)
        except requests.RequestException as exc:
            raise RegistryError(f"GET {url}: cut short ({type(exc).__name__})", url=url) from exc
        finally:
            response.close()

    def upload(self, repo: str, digest: str, chunks: Iterator[bytes]) -> None:
        """Chunked upload (POST, PATCH per chunk, PUT with the digest); the registry checks it."""
        start = self.url(f"/v2/{repo}/blobs/uploads/")
        opened = self.send("POST", start, repo, "pull,push", {"Content-Length": "0"}, b"", ok=(202,))
        if opened is None or "Location" not in opened.headers:
            raise RegistryProtocolError(f"POST {start}: no upload location", url=start)
        location = urljoin(start, opened.headers["Location"])
        offset = 0
        buffer = b""
        for chunk in _sized(chunks, CHUNK):
            buffer = chunk
            if len(chunk) < CHUNK:
                break  # the last (short) chunk goes with the PUT
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            patched = self.send("PATCH", location, repo, "pull,push", headers, chunk, ok=(202,))
            if patched is None or "Location" not in patched.headers:
                raise RegistryProtocolError(f"PATCH {location}: no upload location", url=location)
            location = urljoin(location, patched.headers["Location"])
            offset += len(chunk)
            buffer = b""
        sep = "&" if "?" in location else "?"
        done = self.send(
            "PUT",
            f"{location}{sep}digest={digest}",
            repo,
            "pull,push",
            {"Content-Type": "application/octet-stream"},
            buffer,
        )
        if done is None:
            raise RegistryError(f"PUT {location}: HTTP 404 (upload lost)", url=location, status=404)


def _sized(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a byte stream into pieces of exactly `size` (the last may be shorter, or empty)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    yield pending
