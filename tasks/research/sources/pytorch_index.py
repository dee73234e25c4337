"""The PyTorch wheel index, the research source read per base (the `WheelIndex` of
tasks/research/sources/base.py): PEP 503 HTML pages (PEP 691 JSON when offered) under
``<base>/cuXYZ/<package>/``; which versions exist for a CUDA variant, Python and platform."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from packaging.version import InvalidVersion, Version

from tasks.errors import SourceProtocolError
from tasks.http import HttpTransport, Outcome, classify, speaking_as
from tasks.secrets import redact_url

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, text/html;q=0.5"
_WHEEL = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-(?P<python>[a-z0-9_.]+)-(?P<abi>[a-z0-9_.]+)"
    r"-(?P<platform>[a-z0-9_.]+)\.whl$"
)
LINUX_X86 = ("linux_x86_64", "manylinux")
PUBLIC_HOST = "download.pytorch.org"


@dataclass(frozen=True)
class Wheel:
    package: str
    version: Version  # public part; `variant` holds the local part (cu126)
    variant: str | None
    python: str  # cp311
    abi: str
    platform: str
    filename: str
    url: str

    def fits(self, python: str, platform_prefixes: tuple[str, ...] = LINUX_X86) -> bool:
        tag = "cp" + python.replace(".", "")
        return (
            tag in self.python.split(".")
            and self.abi in (tag, "abi3", "none")
            and any(p in self.platform for p in platform_prefixes)
            and "x86_64" in self.platform
        )


def parse_filename(filename: str, url: str) -> Wheel | None:
    match = _WHEEL.match(unquote(filename))
    if match is None:
        return None
    try:
        version = Version(match["version"])
    except InvalidVersion:
        return None
    return Wheel(
        match["name"].replace("_", "-").lower(),
        Version(version.public),
        version.local,
        match["python"],
        match["abi"],
        match["platform"],
        unquote(filename),
        url,
    )


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text.strip()))
            self._href = None


def parse_page(body: bytes, content_type: str, page_url: str) -> list[Wheel]:
    """Wheels listed on one project page (HTML or PEP 691 JSON)."""
    wheels = []
    if content_type.startswith(JSON_TYPE) or content_type.startswith("application/json"):
        try:
            files = json.loads(body)["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceProtocolError(f"{page_url}: not a PEP 691 project page ({exc})", url=page_url) from exc
        for item in files:
            wheel = parse_filename(str(item["filename"]), urljoin(page_url, str(item["url"])))
            if wheel:
                wheels.append(wheel)
        return wheels
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href, text in parser.links:
        name = text or href.rsplit("/", 1)[-1].split("#")[0]
        wheel = parse_filename(name, urljoin(page_url, href))
        if wheel:
            wheels.append(wheel)
    return wheels


def variant_for(minor: tuple[int, int]) -> str:
    return f"cu{minor[0]}{minor[1]}"


class PyTorchIndex:
    """One run's reader of the index, shared by its threads: each page is fetched and parsed once
    (concurrent readers of one page wait for the first)."""

    def __init__(self, base_url: str, transport: HttpTransport) -> None:
        from tasks.registry.session import Memo

        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self._pages = Memo()

    @property
    def where(self) -> str:
        """The index as the review's sources line names it: the public index in full, any other as
        its scheme and host only (a private index may carry a token in its user, path or query)."""
        parts = urlsplit(self.base_url)
        public = parts.hostname == PUBLIC_HOST and not (parts.username or parts.password or parts.query)
        return self.base_url if public and parts.scheme == "https" else redact_url(self.base_url)

    def wheels(self, variant: str, package: str) -> list[Wheel] | None:
        """Wheels of `package` under `variant` (e.g. cu126), or None when the page is absent."""
        url = f"{self.base_url}/{variant}/{package}/"
        return self._pages.get(url, lambda: self._fetch(url))

    def prefetch(self, pages: Sequence[tuple[str, str]]) -> None:
        """Fetch the (variant, package) pages concurrently, bounded by the transport's
        concurrency, so a reader that walks them one by one waits for one round trip, not one per
        page. A page that fails is remembered and raises again where it is read."""
        wanted = list(dict.fromkeys(pages))
        if len(wanted) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(len(wanted), self.transport.max_concurrency)) as pool:
            for done in [pool.submit(self.wheels, variant, package) for variant, package in wanted]:
                with contextlib.suppress(Exception):
                    done.result()

    @speaking_as("source")
    def _fetch(self, url: str) -> list[Wheel] | None:
        response = self.transport.request("GET", url, headers={"Accept": ACCEPT})
        outcome = classify(response.status_code)
        if outcome is Outcome.NOT_FOUND:
            return None
        if outcome is not Outcome.OK:
            raise SourceProtocolError(f"GET {url}: HTTP {response.status_code}", url=url)
        return parse_page(response.content, response.headers.get("Content-Type", "text/html"), url)

    def versions(self, variant: str, package: str, python: str) -> list[Version]:
        """Versions of `package` with a wheel for `python` on Linux x86_64, newest first."""
        found = {w.version for w in self.wheels(variant, package) or [] if w.fits(python)}
        return sorted(found, reverse=True)
