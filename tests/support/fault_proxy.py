"""A fault-injecting HTTP proxy on 127.0.0.1, put in front of a real registry (or any upstream):
it forwards each request and, where a `Fault` matches, answers for the registry instead: a bad
``Retry-After``, 503 bursts, a connection cut mid-body, ``"size": null`` manifests, a realm that
is not a URL, redirect loops, wrong-shape JSON. It records every request it received (headers
included, so tests can check which credentials reached it) and counts them.

    with FaultProxy(registry.url) as proxy:
        proxy.inject(Fault.burst(503, times=3, match="/manifests/"))
        ... --mirror docker.io={proxy.url} ...
        assert proxy.count("/manifests/") == 4
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    """One request as the proxy received it, and the fault (if any) that answered it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    fault: str | None = None


@dataclass
class Fault:
    """What to do instead of (or to) the upstream answer for requests whose path matches."""

    kind: str  # status | cut | null_size | realm | redirect | body | config_body
    match: str = ""  # regular expression searched in the request path ("" matches all)
    times: int | None = None  # how many matching requests it answers (None: all of them)
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    used: int = 0

    # ---------------------------------------------------------------- presets

    @classmethod
    def burst(cls, status: int = 503, *, times: int | None = None, match: str = "") -> Fault:
        """`times` answers of `status` (503, 429, ...) before the upstream answers again."""
        return cls("status", match, times, status=status, body=b'{"errors":[{"code":"UNAVAILABLE"}]}')

    @classmethod
    def retry_after(cls, value: str, *, status: int = 503, times: int | None = 1, match: str = "") -> Fault:
        """`status` with ``Retry-After: value`` (e.g. a value that is neither seconds nor a date)."""
        return cls("status", match, times, status=status, headers={"Retry-After": value}, body=b"busy")

    @classmethod
    def cut(cls, *, times: int | None = 1, match: str = "") -> Fault:
        """The upstream's headers (full Content-Length), half its body, then the connection closed."""
        return cls("cut", match, times)

    @classmethod
    def null_size(cls, *, times: int | None = None, match: str = "/manifests/") -> Fault:
        """The upstream manifest or index with every descriptor's ``size`` set to null."""
        return cls("null_size", match, times)

    @classmethod
    def realm(cls, realm: str, *, times: int | None = None, match: str = "") -> Fault:
        """401 with a bearer challenge naming `realm` (e.g. something that is not a URL)."""
        challenge = f'Bearer realm="{realm}",service="fault-proxy"'
        return cls("status", match, times, status=401, headers={"WWW-Authenticate": challenge})

    @classmethod
    def redirect_loop(cls, *, times: int | None = None, match: str = "") -> Fault:
        """307 back to the same URL, for ever."""
        return cls("redirect", match, times, status=307)

    @classmethod
    def replace_body(
        cls, body: bytes | Any, *, content_type: str | None = None, match: str, times: int | None = None
    ) -> Fault:
        """The upstream's status and headers with `body` (JSON-encoded unless bytes) instead of
        its own; ``Docker-Content-Digest`` recomputed, so only the shape is wrong."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content_type else {}
        return cls("body", match, times, headers=headers, body=raw)

    @classmethod
    def config_body(cls, body: bytes | Any, *, match: str = "/manifests/", times: int | None = None) -> Fault:
        """The upstream image manifest re-pointed at a config blob whose bytes are `body` (served
        by the proxy under its own digest), so the digest checks pass and only the shape is wrong."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return cls("config_body", match, times, body=raw)

    def takes(self, path: str) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        return re.search(self.match, path) is not None


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cut: bool = False


class FaultProxy:
    """``with FaultProxy(upstream_url) as proxy: proxy.url``; faults are checked in order."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the fault proxy only fronts loopback http upstreams, not {upstream}")
        self.upstream = upstream.rstrip("/")
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self.blobs: dict[str, bytes] = {}  # extra blobs served by digest (config_body)
        self._lock = threading.Lock()
        proxy = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = proxy._answer(self.command, parts.path, parts.query, headers, body)
                try:
                    self.send_response(answer.status)
                    for key, value in answer.headers:
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    if answer.cut:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(answer.body[: len(answer.body) // 2] if answer.cut else answer.body)
                    if answer.cut:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # ---------------------------------------------------------------- use

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def count(self, pattern: str = "", method: str | None = None) -> int:
        """Requests received whose path matches `pattern` (a regular expression)."""
        with self._lock:
            return sum(
                1 for r in self.requests if re.search(pattern, r.path) and (method is None or r.method == method)
            )

    def seen(self, pattern: str = "") -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if re.search(pattern, r.path)]

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------- internals

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> _Answer:
        with self._lock:
            fault = next((f for f in self.faults if f.takes(path)), None)
            if fault is not None:
                fault.used += 1
            self.requests.append(Seen(method, path, query, headers, fault.kind if fault else None))
        digest = path.rsplit("/blobs/", 1)[-1] if "/blobs/" in path else None
        if digest is not None and digest in self.blobs:
            data = self.blobs[digest]
            return _Answer(200, [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest)], data)
        if fault is not None and fault.kind == "status":
            return _Answer(fault.status, list(fault.headers.items()), fault.body)
        if fault is not None and fault.kind == "redirect":
            target = path + (f"?{query}" if query else "")
            return _Answer(307, [("Location", target)], b"")
        upstream = self._forward(method, path, query, headers, body)
        if fault is None or upstream.status >= 300:
            return upstream
        if fault.kind == "cut":
            upstream.cut = True
            return upstream
        if fault.kind == "body":
            return self._with_body(upstream, fault.body, fault.headers.get("Content-Type"))
        if fault.kind == "null_size":
            return self._with_body(upstream, _null_sizes(upstream.body), None)
        if fault.kind == "config_body":
            manifest = json.loads(upstream.body)
            digest = sha256_digest(fault.body)
            with self._lock:
                self.blobs[digest] = fault.body
            manifest["config"] = {**manifest["config"], "digest": digest, "size": len(fault.body)}
            return self._with_body(upstream, json.dumps(manifest).encode(), None)
        raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _with_body(self, answer: _Answer, body: bytes, content_type: str | None) -> _Answer:
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("docker-content-digest", "etag")]
        if content_type:
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"] + [("Content-Type", content_type)]
        headers.append(("Docker-Content-Digest", sha256_digest(body)))
        return _Answer(answer.status, headers, body)

    def _forward(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> _Answer:
        conn = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=30)
        try:
            send = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP and k != "host"}
            conn.request(method, path + (f"?{query}" if query else ""), body=body or None, headers=send)
            response = conn.getresponse()
            data = response.read()
            kept = []
            for key, value in response.getheaders():
                if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
                    continue
                kept.append((key, value.replace(self.upstream, self.url)))
            return _Answer(response.status, kept, data)
        finally:
            conn.close()


def _null_sizes(body: bytes) -> bytes:
    data = json.loads(body)
    for key in ("manifests", "layers"):
        for entry in data.get(key) or []:
            entry["size"] = None
    if isinstance(data.get("config"), dict):
        data["config"]["size"] = None
    return json.dumps(data).encode()
