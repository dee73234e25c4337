"""The whole review, as a user runs it (`baseimage review`, a subprocess, imports, Prefect and
all), at 3, 200 and 1,000 Dockerfiles over B distinct bases, with the registry and the PyTorch
index behind loopback proxies that add a fixed latency to every request. For each size it
reports, as ratios measured in the same run:

- wall time against the critical-path bound: latency x max(dependent round trips, requests /
  concurrency) plus the same review's time with no added latency (measured first);
- requests made against the minimum, for the registry (one tag list per repository; per base its
  manifest or index, the platform manifest and the config) and for the PyTorch index (each page
  the review needs, once);
- the share of the wall time spent outside the network part (latency x round trips).

Runs against a persistent local Prefect server (`prefect server start`, as `baseimage server`
starts it), each size twice: with the warm process beside it (baseimage/warm.py, as `baseimage
server start` starts it) and in the command's own process (BASEIMAGE_WARM=off); and once, for the
3-image case, on a temporary per-command server, for comparison.

    python bench/review_scale.py [--sizes 3,200,1000] [--bases 25] [--latency-ms 100] [--json]

Needs Debian's docker-registry (scripts/test installs it). Targets (issue 17): 3 images within
3 s on a running server; 200/25 at 100 ms within 2x the bound; 1,000 within 10 s; request
ratios 1.00.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baseimage import warm
from bench.review_fleet import choose_bases, latency_proxy
from tests.support.http_endpoint import Endpoint, Reply
from tests.support.prefect_server import PrefectServer
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry
from tests.support.seed import RegistryWriter, seed
from tests.support.universe import FixtureImage
from tests.support.warm_process import start_warm, stop_warm

ROOT = Path(__file__).resolve().parent.parent
DEPTH = 5  # tag list -> index -> platform manifest -> config -> PyTorch index pages
CONCURRENCY = 8


@dataclass
class Row:
    dockerfiles: int
    bases: int
    server: str
    latency_ms: float
    seconds: float
    baseline_seconds: float
    bound_seconds: float
    registry_requests: int
    registry_minimum: int
    index_requests: int
    index_minimum: int

    @property
    def time_ratio(self) -> float:
        return self.seconds / (self.bound_seconds + self.baseline_seconds)

    @property
    def outside_network(self) -> float:
        return max(0.0, self.seconds - self.bound_seconds) / self.seconds


def write_fleet(root: Path, count: int, bases: list[FixtureImage], registry: str, index: str, support: str) -> Path:
    images = []
    for n in range(count):
        base = bases[n % len(bases)]
        path = root / "dockerfiles" / f"svc{n:04d}" / "Dockerfile"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"FROM nvidia/cuda:{base.tag}\nRUN echo service {n}\n")
        images.append(f"  - {{name: svc{n:04d}, dockerfile: dockerfiles/svc{n:04d}/Dockerfile, track: cuda}}")
    config = root / "config" / "policy.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "repository: ..\nimages:\n"
        + "\n".join(images)
        + f'\nregistries:\n  concurrency: {CONCURRENCY}\n  mirrors: {{docker.io: "{registry}"}}\n'
        + f'research:\n  pytorch_index: "{index}"\n  osv_db: "{ROOT / "tests" / "fixtures" / "osv"}"\n'
        + f'  nvidia_support_url: "{support}"\n'
    )
    return config


def review(config: Path, env: dict[str, str], out: Path) -> float:
    argv = [sys.executable, "-m", "baseimage.cli", "review", "--config", str(config), "--sources", "live"]
    argv += ["--no-banner", "--no-docs", "--out", str(out)]
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 10):
        raise SystemExit(f"review failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def measure(count: int, bases: list[FixtureImage], registry: LocalRegistry, tree: Path, latency: float,
            env: dict[str, str], work: Path, server: str, support_url: str) -> Row:  # fmt: skip
    def run_once(delay: float) -> tuple[float, int, int, int]:
        with (
            StaticIndex(tree) as index,
            latency_proxy(registry.url, delay) as reg_proxy,
            latency_proxy(index.url.removesuffix("/whl"), delay) as idx_proxy,
        ):
            config = write_fleet(
                work / f"fleet-{count}", count, bases, reg_proxy.url, f"{idx_proxy.url}/whl", support_url
            )
            seconds = review(config, env, work / "reports")
            pages = len({r.path for r in idx_proxy.requests})
            return seconds, len(reg_proxy.requests), len(idx_proxy.requests), pages

    run_once(0.0)  # warm-up: the server's database, the registry, the OS caches
    baseline = min(run_once(0.0)[0] for _ in range(2))
    seconds, reg_requests, idx_requests, index_minimum = min(run_once(latency) for _ in range(2))
    used = bases[:count]
    registry_minimum = 1 + sum(3 if b.multi_arch else 2 for b in used)
    rounds = max(DEPTH, math.ceil((registry_minimum + index_minimum) / CONCURRENCY))
    return Row(
        count,
        len(used),
        server,
        latency * 1000,
        seconds,
        baseline,
        latency * rounds,
        reg_requests,
        registry_minimum,
        idx_requests,
        index_minimum,
    )


@dataclass
class World:
    """What every measurement runs against: the seeded registry, the PyTorch index's tree, a
    running Prefect server's environment and an NVIDIA support URL that answers 404 (the review
    then reads its bundled table)."""

    bases: list[FixtureImage]
    registry: LocalRegistry
    tree: Path
    env: dict[str, str]
    support: str

    @property
    def own_process(self) -> dict[str, str]:
        """`env` for a command in its own process: the warm process turned off."""
        return {**self.env, warm.ENV: "off"}


@contextmanager
def world(work: Path, bases: int) -> Iterator[World]:
    chosen = choose_bases(bases)
    registry = LocalRegistry(work / "registry").start()
    server = PrefectServer(work / "prefect-home").start()
    nvidia = Endpoint(lambda _req: Reply(404, b"not mirrored")).__enter__()
    env = {k: v for k, v in server.env().items() if k != warm.ENV}
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    try:
        seed(RegistryWriter(registry.url), chosen)
        start_warm(env)  # as `baseimage server start` starts it beside the server
        yield World(chosen, registry, build_tree(work / "whl"), env, f"{nvidia.url}/manifests/cuda.yaml")
    finally:
        stop_warm(env)
        nvidia.__exit__(None, None, None)
        server.stop()
        registry.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3,200,1000")
    parser.add_argument("--bases", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    latency = args.latency_ms / 1000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp), args.bases) as w:
        work = Path(tmp)
        for count in sizes:
            for label, env in (("running server + warm process", w.env), ("running server", w.own_process)):
                rows.append(measure(count, w.bases, w.registry, w.tree, latency, env, work, label, w.support))
        if 3 in sizes:
            temporary = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            temporary.update(BASEIMAGE_SERVER="off", PREFECT_HOME=str(work / "temp-home"), **{warm.ENV: "off"})
            row = measure(3, w.bases, w.registry, w.tree, latency, temporary, work, "temporary server", w.support)
            rows.append(row)
    if args.json:
        print(
            json.dumps([{**asdict(r), "time_ratio": r.time_ratio, "outside_network": r.outside_network} for r in rows])
        )
        return 0
    print(f"latency {args.latency_ms:g} ms per request, concurrency {CONCURRENCY}")
    print(
        "| Dockerfiles / bases | server | wall | bound + baseline | ratio | registry requests | index requests |",
        end="",
    )
    print(" outside network |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.dockerfiles} / {r.bases} | {r.server} | {r.seconds:.2f} s | {r.bound_seconds:.2f} + "
            f"{r.baseline_seconds:.2f} s | {r.time_ratio:.2f} | {r.registry_requests} / {r.registry_minimum} = "
            f"{r.registry_requests / r.registry_minimum:.2f} | {r.index_requests} / {r.index_minimum} = "
            f"{r.index_requests / max(1, r.index_minimum):.2f} | {r.outside_network:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
