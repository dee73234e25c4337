"""``--hash`` values of a changed pin refreshed from a real index on 127.0.0.1 (PEP 691 JSON and
PEP 503 HTML fragments), removed and said so when the index offers none; credentials in the
index URL are sent as basic auth and never shown."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tasks.http import HttpTransport, RetryPolicy
from tasks.update.hashes import IndexHashes
from tasks.update.requirements import RequirementChanges, edit_requirements

PLAN = RequirementChanges("cu126", None, "2.13.0", "0.28.0", "cupy-cuda12x", "14.2.0", "1.26.0")
TORCH = [
    ("torch-2.13.0+cu126-cp311-cp311-manylinux_2_28_x86_64.whl", "1" * 64),
    ("torch-2.13.0+cu126-cp312-cp312-manylinux_2_28_x86_64.whl", "2" * 64),
    ("torch-2.12.0+cu126-cp311-cp311-manylinux_2_28_x86_64.whl", "9" * 64),
]
ORT = [
    ("onnxruntime_gpu-1.26.0-cp311-cp311-manylinux_2_27_x86_64.whl", "3" * 64),
    ("onnxruntime_gpu-1.26.0.tar.gz", "4" * 64),
    ("onnxruntime_gpu-1.20.1-cp311-cp311-manylinux_2_27_x86_64.whl", "5" * 64),
]


class Index:
    """`/json/<name>/` answers PEP 691, `/html/<name>/` PEP 503; `/private/` wants basic auth."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                index.requests.append((self.path, auth))
                kind, _, name = self.path.strip("/").partition("/")
                if kind == "private" and auth != "Basic " + base64.b64encode(b"deploy:s3cr3t-t0ken").decode():
                    self.send_response(401)
                    self.end_headers()
                    return
                files = {"torch": TORCH, "onnxruntime-gpu": ORT}.get(name.split("/")[-1])
                if files is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if kind in ("json", "private"):
                    listed = [{"filename": f, "url": f"/files/{f}", "hashes": {"sha256": h}} for f, h in files]
                    body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": listed}).encode()
                    kind_header = "application/vnd.pypi.simple.v1+json"
                elif kind == "nohash":
                    body = json.dumps({"files": [{"filename": f, "url": f, "hashes": {}} for f, _h in files]}).encode()
                    kind_header = "application/vnd.pypi.simple.v1+json"
                else:
                    links = "".join(f'<a href="/files/{f}#sha256={h}">{f}</a><br/>' for f, h in files)
                    body = f"<html><body>{links}</body></html>".encode()
                    kind_header = "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind_header)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def index() -> Iterator[Index]:
    found = Index()
    yield found
    found.server.shutdown()
    found.server.server_close()


def hashed(index_url: str) -> str:
    return (
        f"--index-url {index_url}\n"
        "torch==2.5.1+cu124 \\\n"
        "    --hash=sha256:aaaa \\\n"
        "    --hash=sha256:bbbb\n"
        "onnxruntime-gpu==1.20.1 --hash=sha256:cccc\n"
    )


def transport() -> HttpTransport:
    return HttpTransport(retry=RetryPolicy(attempts=1), sleep=lambda _s: None)


@pytest.mark.parametrize("kind", ["json", "html"])
def test_the_hashes_of_a_changed_pin_come_from_the_index(index: Index, kind: str) -> None:
    url = f"{index.url}/{kind}"
    source = IndexHashes(transport())
    edit = edit_requirements(hashed(url), "requirements.txt", PLAN, hashes=source, indexes=[url])
    assert edit.text == (
        f"--index-url {url}\n"
        "torch==2.13.0+cu126 \\\n"
        f"    --hash=sha256:{'1' * 64} \\\n"  # the cp311 and cp312 wheels of 2.13.0+cu126, nothing of 2.12.0
        f"    --hash=sha256:{'2' * 64}\n"
        f"onnxruntime-gpu==1.26.0 --hash=sha256:{'3' * 64} --hash=sha256:{'4' * 64}\n"
    )
    assert edit.notes == (
        f"requirements.txt:2: torch==2.13.0+cu126: --hash values refreshed from {url} (2 files)",
        f"requirements.txt:5: onnxruntime-gpu==1.26.0: --hash values refreshed from {url} (2 files)",
    )
    again = edit_requirements(hashed(url), "requirements.txt", PLAN, hashes=source, indexes=[url])
    assert again == edit
    assert [p for p, _a in index.requests] == [f"/{kind}/torch/", f"/{kind}/onnxruntime-gpu/"], "one request per page"


def test_an_index_without_hashes_means_they_are_removed_and_said_so(index: Index) -> None:
    url = f"{index.url}/nohash"
    edit = edit_requirements(hashed(url), "requirements.txt", PLAN, hashes=IndexHashes(transport()), indexes=[url])
    assert "--hash" not in edit.text
    assert edit.text.splitlines()[1:] == ["torch==2.13.0+cu126", "onnxruntime-gpu==1.26.0"]
    assert "is listed without a sha256 hash" in edit.notes[0]
    assert "pip's hash-checking mode needs them" in edit.notes[0]


def test_an_index_that_cannot_be_read_means_removed_with_the_reason(index: Index) -> None:
    url = f"{index.url}/private"  # needs credentials that are not given
    edit = edit_requirements(hashed(url), "requirements.txt", PLAN, hashes=IndexHashes(transport()), indexes=[url])
    assert "--hash" not in edit.text
    assert "the index could not be read" in edit.notes[0] and "HTTP 401" in edit.notes[0]


def test_credentials_in_the_index_url_are_sent_as_basic_auth_and_never_shown(index: Index) -> None:
    host = index.url.removeprefix("http://")
    url = f"http://deploy:s3cr3t-t0ken@{host}/private"
    edit = edit_requirements(hashed(url), "requirements.txt", PLAN, hashes=IndexHashes(transport()), indexes=[url])
    assert f"--hash=sha256:{'1' * 64}" in edit.text
    assert edit.text.startswith(f"--index-url {url}\n"), "the file keeps what the user wrote"
    assert all("s3cr3t-t0ken" not in note and "deploy" not in note for note in edit.notes)
    assert "http://***@127.0.0.1" in edit.notes[0]
    assert all(path.startswith("/private/") and auth and auth.startswith("Basic ") for path, auth in index.requests)


def test_a_version_no_index_lists_removes_the_hashes(index: Index) -> None:
    url = f"{index.url}/json"
    plan = RequirementChanges(onnxruntime_gpu="1.99.0")
    edit = edit_requirements(hashed(url), "requirements.txt", plan, hashes=IndexHashes(transport()), indexes=[url])
    assert "onnxruntime-gpu==1.99.0\n" in edit.text
    assert f"no file of onnxruntime-gpu 1.99.0 is listed on {url}" in edit.notes[0]
