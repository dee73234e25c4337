"""The hashes a package index gives for every file of one version, for ``--hash`` lines: the
project page ``<index>/<name>/`` as PEP 691 JSON (``files[].hashes``) or PEP 503 HTML (the
``#sha256=`` fragment of each link). Credentials in an index URL (``https://user:token@host/``)
are sent as HTTP basic auth and never appear in a message; each page is fetched once a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit, urlunsplit

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from tasks.errors import BaseImageError
from tasks.http import HttpTransport, Outcome, classify
from tasks.secrets import Redactor
from tasks.update.requirements import HashAnswer

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, text/html;q=0.5"
Files = list[tuple[str, dict[str, str]]]  # (filename, algorithm -> hex digest)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: Files = []
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._href is None:
            return
        path, _, fragment = self._href.partition("#")
        name = self._text.strip() or unquote(path.rsplit("/", 1)[-1])
        algorithm, eq, digest = fragment.partition("=")
        self.files.append((name, {algorithm: digest} if eq and digest else {}))
        self._href = None


def parse_project_page(body: bytes, content_type: str, url: str) -> Files:
    """The files of one project page (PEP 691 JSON or PEP 503 HTML) with their hashes."""
    if content_type.split(";")[0].strip() in (JSON_TYPE, "application/json"):
        try:
            data = json.loads(body)
            files = data["files"]
            return [(str(f["filename"]), {str(k): str(v) for k, v in (f.get("hashes") or {}).items()}) for f in files]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BaseImageError(f"{url}: not a PEP 691 project page ({type(exc).__name__})") from exc
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    return parser.files


def _version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


class IndexHashes:
    """A HashSource that asks the indexes over `transport` (one request per page and run)."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport
        self._pages: dict[str, Files | str | None] = {}  # None: no such project; str: why not read

    def _page(self, index: str, package: str) -> Files | str | None:
        parts = urlsplit(index.rstrip("/") + f"/{canonicalize_name(package)}/")
        auth = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        if url not in self._pages:
            try:
                response = self.transport.request("GET", url, headers={"Accept": ACCEPT}, auth=auth)
                outcome = classify(response.status_code)
                if outcome is Outcome.NOT_FOUND:
                    self._pages[url] = None
                elif outcome is not Outcome.OK:
                    self._pages[url] = f"{url} answered HTTP {response.status_code}"
                else:
                    kind = response.headers.get("Content-Type", "text/html")
                    self._pages[url] = parse_project_page(response.content, kind, url)
            except BaseImageError as exc:
                self._pages[url] = str(exc)
        return self._pages[url]

    def hashes(self, package: str, version: str, indexes: Sequence[str], algorithms: Sequence[str]) -> HashAnswer:
        shown = Redactor()
        if not indexes:
            return HashAnswer(why="the file names no index to ask (--no-index)")
        wanted = SpecifierSet(f"=={version}")
        found: list[tuple[str, dict[str, str]]] = []
        asked = []
        for index in indexes:
            page = self._page(index, package)
            asked.append(shown.redact(index))
            if isinstance(page, str):
                return HashAnswer(why=f"the index could not be read ({shown.redact(page)})", source=", ".join(asked))
            for filename, digests in page or []:
                file_version = _version(filename)
                if file_version is not None and wanted.contains(file_version, prereleases=True):
                    found.append((filename, digests))
        source = ", ".join(asked)
        if not found:
            return HashAnswer(why=f"no file of {package} {version} is listed on {source}", source=source)
        values = set()
        for filename, digests in found:
            for algorithm in algorithms:
                if not digests.get(algorithm):
                    return HashAnswer(why=f"{filename} on {source} is listed without a {algorithm} hash", source=source)
                values.add(f"{algorithm}:{digests[algorithm]}")
        return HashAnswer(tuple(sorted(values)), source=source)
