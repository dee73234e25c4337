"""A static PEP 503 tree like download.pytorch.org/whl, generated from config/data/pytorch.yaml
and served over HTTP on 127.0.0.1 (empty wheel files: the review reads names, not contents)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from tasks.research.facts import load_facts

PLATFORM = {"cu118": "linux_x86_64", "cu121": "linux_x86_64", "cu124": "linux_x86_64"}


def build_tree(root: Path, extra: dict[str, list[str]] | None = None) -> Path:
    """Pages ``<variant>/torch/`` and ``<variant>/torchvision/`` for every release and variant."""
    facts = load_facts()
    pages: dict[tuple[str, str], list[str]] = {}
    for release in facts.torch_releases:
        low, high = (int(v.split(".")[1]) for v in release.python)
        for variant in release.cuda:
            platform = PLATFORM.get(variant, "manylinux_2_28_x86_64")
            for minor in range(low, high + 1):
                tag = f"cp3{minor}"
                for package, version in (
                    ("torch", release.torch),
                    ("torchvision", release.torchvision),
                ):
                    pages.setdefault((variant, package), []).append(
                        f"{package}-{version}+{variant}-{tag}-{tag}-{platform}.whl"
                    )
    for variant, files in (extra or {}).items():
        for name in files:
            pages.setdefault((variant, name.split("-")[0]), []).append(name)
    for (variant, package), files in pages.items():
        page = root / variant / package
        page.mkdir(parents=True, exist_ok=True)
        links = "\n".join(f'    <a href="/whl/{variant}/{quote(f)}#sha256={"0" * 64}">{f}</a><br/>' for f in files)
        (page / "index.html").write_text(f"<!DOCTYPE html>\n<html>\n  <body>\n{links}\n  </body>\n</html>\n")
    return root


class StaticIndex:
    """``with StaticIndex(tree) as index: index.url`` (ends in /whl, like the real one)."""

    def __init__(self, tree: Path) -> None:
        self.parent = tree.parent / "srv"
        (self.parent).mkdir(exist_ok=True)
        link = self.parent / "whl"
        if not link.exists():
            link.symlink_to(tree, target_is_directory=True)
        handler = functools.partial(_Quiet, directory=str(self.parent))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.requests: list[str] = []
        self.server.requests = self.requests  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/whl"

    def __enter__(self) -> StaticIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
