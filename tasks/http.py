"""The project's HTTP layer (registries, NVIDIA's manifest, the PyTorch and package indexes, OSV,
GitHub, webhooks): status sorted in one place, retries with back-off, bounded concurrency.

429, 5xx, timeouts and connection errors are transient and retried (honouring ``Retry-After``);
401/403 are auth problems for the caller to handle; 404 is "not found", not an error. Failures
are the neutral `HttpError` kinds; `speaking_as` re-raises them as the caller's own family
(`RegistryError` for the registry client, `SourceError` for the research sources).
"""

from __future__ import annotations

import email.utils
import enum
import http.client
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC

import requests
import urllib3.exceptions

from tasks.errors import HttpError, HttpProtocolError, HttpTransientError, HttpUnreachableError, recast

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
# A body that ends before its Content-Length (or its last chunk): the connection was cut mid-answer.
_CUT_SHORT = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    http.client.IncompleteRead,
)


class Outcome(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not found"
    AUTH = "auth"
    TRANSIENT = "transient"
    CLIENT_ERROR = "client error"


def classify(status: int) -> Outcome:
    """The one place that decides what an HTTP status means for a registry call."""
    if status == 429 or status >= 500:
        return Outcome.TRANSIENT
    if status in (401, 403):
        return Outcome.AUTH
    if status == 404:
        return Outcome.NOT_FOUND
    if 200 <= status < 400:
        return Outcome.OK
    return Outcome.CLIENT_ERROR


_SECONDS = re.compile(r"[0-9]{1,9}", re.ASCII)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse ``Retry-After`` (delta seconds or an HTTP date); None when absent or unreadable,
    so the caller falls back to its own back-off."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": RFC 5322 for "UTC, source unknown"
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


@dataclass
class RetryPolicy:
    attempts: int = 4  # total tries, the first included
    backoff: float = 0.5  # first delay; doubles each retry
    max_delay: float = 30.0  # cap for back-off and for Retry-After

    def delay(self, attempt: int, retry_after: float | None) -> float:
        base = float(self.backoff * 2 ** (attempt - 1))
        if retry_after is not None:
            base = max(base, retry_after)
        return min(base, self.max_delay)


@dataclass
class HttpTransport:
    """A requests session shared by one run's registry clients; counts every request it sends."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (5.0, 30.0)
    max_concurrency: int = 8
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)
    sent: list[tuple[str, str]] = field(default_factory=list)

    max_redirects: int = MAX_REDIRECTS

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self.session.headers["User-Agent"] = "baseimage/0.1 (+registry client)"
        # requests drops Authorization when a redirect leaves the host (Session.rebuild_auth);
        # the bound turns a redirect loop into TooManyRedirects, reported with the URL below.
        self.session.max_redirects = self.max_redirects

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        body: bytes | None,
    ) -> requests.Response:
        """One HTTP exchange; subclasses record or replay it (snapshots)."""
        return self.session.request(method, url, headers=headers, auth=auth, data=body, timeout=self.timeout)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        body: bytes | None = None,
    ) -> requests.Response:
        """Send with retries on transient failures; returns the final non-transient response."""
        last_problem = ""
        unreachable = False
        for attempt in range(1, self.retry.attempts + 1):
            retry_after = None
            try:
                with self._slots:
                    with self._lock:
                        self.sent.append((method, url))
                    response = self.send(method, url, dict(headers or {}), auth, body)
            except _CUT_SHORT as exc:
                last_problem, unreachable = f"response cut short ({_root_cause(exc)})", False
            except requests.TooManyRedirects as exc:
                raise HttpProtocolError(
                    f"{method} {url}: more than {self.max_redirects} redirects (a redirect loop?)", url=url
                ) from exc
            except requests.ConnectionError as exc:
                last_problem, unreachable = f"cannot connect ({_root_cause(exc)})", True
                if _is_name_resolution(exc):
                    break  # the host has no address here: retrying cannot help
            except requests.Timeout:
                last_problem, unreachable = f"timed out after {self.timeout[1]:g} s", False
            except (requests.RequestException, ValueError) as exc:  # bad URL or Location, bad header
                raise HttpProtocolError(
                    f"{method} {url}: cannot follow the answer ({type(exc).__name__}: {str(exc)[:200]})", url=url
                ) from exc
            else:
                if classify(response.status_code) is not Outcome.TRANSIENT:
                    return response
                last_problem, unreachable = f"HTTP {response.status_code}", False
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.retry.attempts:
                delay = self.retry.delay(attempt, retry_after)
                log.info("%s %s: %s; retry %d in %.1f s", method, url, last_problem, attempt, delay)
                self.sleep(delay)
        error = HttpUnreachableError if unreachable else HttpTransientError
        raise error(
            f"{method} {url}: {last_problem} after {attempt} attempt{'s' if attempt > 1 else ''}; "
            "check the network or the mirror in config/policy.yaml",
            url=url,
        )


def _is_name_resolution(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror) or type(seen).__name__ == "NameResolutionError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        nxt = exc.__cause__ or exc.__context__
        assert nxt is not None
        exc = nxt
    text = str(exc)
    return text.split("] ", 1)[-1] if text else type(exc).__name__


@contextmanager
def speaking_as(family: str) -> Iterator[None]:
    """Re-raise the transport's neutral errors inside the block as `family`'s ("registry" or
    "source"): the same kind (transient, unreachable, protocol) and message."""
    try:
        yield
    except HttpError as exc:
        again = recast(exc, family)
        if again is exc:
            raise
        raise again from exc
