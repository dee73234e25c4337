"""Registry cost of reviewing a fleet: N Dockerfiles over B distinct bases, reviewed through a
loopback proxy that adds a fixed latency to every request. Reports, as ratios against bounds
computed in the same run:

- requests made / the minimum needed (one tag list per repository; per base its manifest or
  index, the platform manifest for an index, and the config blob);
- wall time / the critical-path bound: latency x max(dependent round trips, requests /
  concurrency), plus the same review's time with no added latency, measured first in the same
  run (parsing, the local registry and the proxy cost CPU on a 2-core machine).

    python bench/review_fleet.py [--dockerfiles 200] [--bases 25] [--latency-ms 50] [--concurrency 8]

Needs Debian's docker-registry (scripts/test installs it). Targets: requests 1.0, time <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.dockerfile.parser import read_dockerfile
from tasks.http import HttpTransport
from tasks.registry.session import RegistrySession
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.registry_server import LocalRegistry
from tests.support.seed import RegistryWriter, seed
from tests.support.universe import FixtureImage, cuda_images

DEPTH = 4  # tag list -> index (or manifest) -> platform manifest -> config


@dataclass
class Result:
    dockerfiles: int
    bases: int
    latency_s: float
    concurrency: int
    requests: int
    minimum: int
    seconds: float
    baseline_seconds: float
    bound: float

    @property
    def request_ratio(self) -> float:
        return self.requests / self.minimum

    @property
    def time_ratio(self) -> float:
        return self.seconds / (self.bound + self.baseline_seconds)


def latency_proxy(upstream: str, latency: float) -> Endpoint:
    session = requests.Session()

    def forward(req: Request) -> Reply:
        time.sleep(latency)
        headers = {k: v for k, v in req.headers.items() if k in ("accept", "authorization")}
        answer = session.request(
            req.method,
            upstream + req.path + (("?" + "&".join(f"{k}={v[0]}" for k, v in req.query.items())) if req.query else ""),
            headers=headers,
            timeout=30,
        )
        keep = {
            k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "docker-content-digest", "link")
        }
        return Reply(answer.status_code, answer.content if req.method != "HEAD" else b"", keep)

    return Endpoint(forward)


def choose_bases(count: int) -> list[FixtureImage]:
    images = [i for i in cuda_images() if i.tag.endswith(("ubuntu22.04", "ubuntu20.04"))]
    step = max(1, len(images) // count)
    return images[::step][:count]


def run(dockerfiles: int, bases: int, latency_ms: float, concurrency: int, workdir: Path) -> Result:
    chosen = choose_bases(bases)
    registry = LocalRegistry(workdir / "registry").start()
    try:
        seed(RegistryWriter(registry.url), chosen)
        files = []
        for n in range(dockerfiles):
            base = chosen[n % len(chosen)]
            path = workdir / "fleet" / f"svc{n:03d}" / "Dockerfile"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"FROM nvidia/cuda:{base.tag}\nRUN echo service {n}\n")
            files.append(path)
        latency = latency_ms / 1000
        _review(files, registry.url, 0.0, concurrency)  # warm-up: cold registry and caches
        baseline = min(_review(files, registry.url, 0.0, concurrency)[0] for _ in range(2))
        seconds, made = min(_review(files, registry.url, latency, concurrency) for _ in range(2))
    finally:
        registry.stop()
    minimum = 1 + sum(3 if b.multi_arch else 2 for b in chosen)
    bound = latency * max(DEPTH, math.ceil(minimum / concurrency))
    return Result(dockerfiles, len(chosen), latency, concurrency, made, minimum, seconds, baseline, bound)


def _review(files: list[Path], upstream: str, latency: float, concurrency: int) -> tuple[float, int]:
    """Review every Dockerfile's bases through a fresh session; (seconds, requests made)."""
    with latency_proxy(upstream, latency) as proxy:
        session = RegistrySession(
            mirrors={"docker.io": proxy.url}, transport=HttpTransport(max_concurrency=concurrency)
        )

        def review_one(path: Path) -> None:
            for base in read_dockerfile(path).bases:
                assert base.reference is not None
                tags = session.tags(base.reference.registry, base.reference.repository) or []
                if base.reference.tag in tags:
                    session.inspect(base.reference)

        began = time.perf_counter()
        # One thread per Dockerfile (capped): threads wait on shared lookups, while the
        # transport alone bounds the requests in flight to `concurrency`.
        with ThreadPoolExecutor(max_workers=min(64, len(files))) as pool:
            list(pool.map(review_one, files))
        return time.perf_counter() - began, len(proxy.requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dockerfiles", type=int, default=200)
    parser.add_argument("--bases", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.dockerfiles, args.bases, args.latency_ms, args.concurrency, Path(tmp))
    if args.json:
        print(
            json.dumps(
                {
                    **result.__dict__,
                    "request_ratio": result.request_ratio,
                    "time_ratio": result.time_ratio,
                }
            )
        )
    else:
        print(
            f"{result.dockerfiles} Dockerfiles, {result.bases} distinct bases, {args.latency_ms:g} ms per request, "
            f"concurrency {result.concurrency}"
        )
        print(f"requests: {result.requests} made / {result.minimum} needed = {result.request_ratio:.2f}")
        print(
            f"time: {result.seconds:.2f} s / ({result.bound:.2f} s critical-path bound + "
            f"{result.baseline_seconds:.2f} s without added latency) = {result.time_ratio:.2f}"
        )
    return 0 if result.request_ratio == 1.0 and result.time_ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
