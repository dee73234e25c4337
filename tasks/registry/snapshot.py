"""Record every HTTP exchange of a run into a directory, and replay it later without a network:
``baseimage snapshot DIR`` records, ``baseimage review --offline DIR`` replays."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from tasks.errors import HttpUnreachableError, NotRecordedError
from tasks.http import HttpTransport

INDEX = "snapshot.json"


def _key(method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
    accept = headers.get("Accept", "")
    digest = hashlib.sha256(body).hexdigest()[:16] if body else ""
    return f"{method} {url} [{accept}] {digest}".strip()


_PAGE_SIZE = re.compile(r"([?&])n=\d+(&|(?= )|$)")


def _without_page_size(key: str) -> str | None:
    """A tag-list key with its ``n=`` removed (None for other keys): a snapshot recorded with
    another page size (older versions asked for 100 tags a page) still answers."""
    if "/tags/list" not in key:
        return None
    return _PAGE_SIZE.sub(lambda m: m[1] if m[2] else "", key).replace("?&", "?").replace("? ", " ")


def _response(status: int, headers: dict[str, str], content: bytes, url: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response._content = content
    response.url = url
    return response


def _redact_tokens(content: bytes) -> bytes:
    """Bearer tokens never go into a snapshot; replayed registries do not check them."""
    if b'"token"' not in content and b'"access_token"' not in content:
        return content
    try:
        data = json.loads(content)
    except ValueError:
        return content
    if isinstance(data, dict):
        for key in ("token", "access_token", "refresh_token"):
            if key in data:
                data[key] = "redacted-by-snapshot"
    return json.dumps(data).encode()


class RecordingTransport(HttpTransport):
    """Sends for real and writes each final exchange (auth tokens excluded) to `directory`."""

    def __init__(self, directory: Path, note: str = "", rewrite: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Recording through a mirror: store under the canonical URL the live client would ask.
        self.rewrite = dict(rewrite or {})
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, dict[str, Any]] = {}
        self._write_lock = threading.Lock()
        self.note = note

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        body: bytes | None,
    ) -> requests.Response:
        response = super().send(method, url, headers, auth, body)
        content = _redact_tokens(response.content)
        key = _key(method, self._canonical(url), headers, body)
        name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".body"
        keep = {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("content-type", "docker-content-digest", "link", "www-authenticate")
        }
        with self._write_lock:
            (self.directory / name).write_bytes(content)
            self._entries[key] = {"status": response.status_code, "headers": keep, "file": name}
        return response

    def _canonical(self, url: str) -> str:
        for prefix, canonical in self.rewrite.items():
            if url.startswith(prefix):
                return canonical + url[len(prefix) :]
        return url

    def add(
        self,
        method: str,
        url: str,
        status: int,
        content: bytes,
        headers: dict[str, str] | None = None,
        accept: str = "",
    ) -> None:
        """Put a synthesized exchange into the snapshot (e.g. a token answer)."""
        key = _key(method, url, {"Accept": accept} if accept else {}, None)
        name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".body"
        with self._write_lock:
            (self.directory / name).write_bytes(content)
            self._entries[key] = {"status": status, "headers": dict(headers or {}), "file": name}

    def save(self) -> Path:
        path = self.directory / INDEX
        data = {
            "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": self.note,
            "exchanges": self._entries,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
        return path


class ReplayTransport(HttpTransport):
    """Answers from a recorded directory; a request that was not recorded is "unreachable"."""

    def __init__(self, directory: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        index = directory / INDEX
        try:
            data = json.loads(index.read_text())
        except (OSError, ValueError) as exc:
            raise HttpUnreachableError(f"{index}: not a snapshot made by `baseimage snapshot` ({exc})") from exc
        self.directory = directory
        self.recorded = str(data.get("recorded", "unknown date"))
        self.note = str(data.get("note", ""))
        self._entries: dict[str, dict[str, Any]] = data["exchanges"]
        self._tag_pages = {k: v for k, v in ((_without_page_size(k), v) for k, v in self._entries.items()) if k}

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        body: bytes | None,
    ) -> requests.Response:
        key = _key(method, url, headers, body)
        entry = self._entries.get(key) or self._tag_pages.get(_without_page_size(key) or "")
        if entry is None:
            raise NotRecordedError(
                f"{method} {url}: not in the snapshot {self.directory} (recorded {self.recorded}); "
                "record a newer one with `baseimage snapshot DIR` where the registry is reachable, "
                "or use --sources live",
                url=url,
            )
        content = (self.directory / entry["file"]).read_bytes()
        return _response(int(entry["status"]), dict(entry["headers"]), content, url)
