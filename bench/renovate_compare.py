"""`baseimage review` against Renovate's lookup of the same repository, measured side by side in
one run: the same seeded registry behind the same loopback latency proxy, each tool run as its
user runs it (a subprocess, start-up included), median of `--repeats` runs.

baseimage's review runs on a running local Prefect server with the warm process beside it (as
`baseimage server start` leaves them), and once more in its own process (BASEIMAGE_WARM=off), with
the PyTorch index behind a second latency proxy (the review reads it; Renovate does not) and the
bundled NVIDIA support table; Renovate runs its `dockerfile` manager with `--platform=local` (a
dry-run lookup: it reads the repository and asks the registry, nothing is written), every docker
lookup sent to the proxy through `packageRules[].registryUrls`. Both are pointed at loopback only:
Renovate gets HTTP(S)_PROXY set to a closed loopback port with only 127.0.0.1 exempt, so a request
it would send anywhere else fails instead of leaving the machine.

    npm install --prefix /tmp/renovate renovate@39     # Node 20; the package registry only
    python bench/renovate_compare.py --renovate /tmp/renovate/node_modules/.bin/renovate \
        [--sizes 3,200] [--bases 25] [--latency-ms 100] [--repeats 3] [--json]

Target (issue 17): the 3-image review at no more than 0.5x Renovate's time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.review_fleet import latency_proxy
from bench.review_scale import review, world, write_fleet
from tests.support.pytorch_index import StaticIndex


@dataclass
class Row:
    dockerfiles: int
    latency_ms: float
    baseimage_seconds: float
    renovate_seconds: float
    baseimage_registry_requests: int
    renovate_registry_requests: int
    renovate_updates: int
    own_process_seconds: float  # the same review with BASEIMAGE_WARM=off

    @property
    def ratio(self) -> float:
        return self.baseimage_seconds / self.renovate_seconds

    @property
    def own_process_ratio(self) -> float:
        return self.own_process_seconds / self.renovate_seconds


def renovate(binary: str, repo: Path, registry: str, work: Path) -> tuple[float, int]:
    """One Renovate lookup of `repo` against `registry`; its wall time and the updates it found."""
    config = work / "renovate-config.json"
    config.write_text(
        json.dumps(
            {
                "enabledManagers": ["dockerfile"],
                "packageRules": [{"matchDatasources": ["docker"], "registryUrls": [registry]}],
            }
        )
    )
    shutil.rmtree(work / "renovate-base", ignore_errors=True)  # no cache carried between runs
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "RENOVATE_CONFIG_FILE": str(config),
        "RENOVATE_BASE_DIR": str(work / "renovate-base"),
        "RENOVATE_REQUIRE_CONFIG": "ignored",
        "RENOVATE_ONBOARDING": "false",
        "RENOVATE_REPORT_TYPE": "file",
        "RENOVATE_REPORT_PATH": str(work / "renovate-report.json"),
        "LOG_LEVEL": "warn",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1",
    }
    began = time.perf_counter()
    done = subprocess.run(
        [binary, "--platform=local"], cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"renovate failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    report = json.loads((work / "renovate-report.json").read_text())
    updates = sum(
        len(dep.get("updates", []))
        for repository in report.get("repositories", {}).values()
        for files in repository.get("packageFiles", {}).values()
        for package_file in files
        for dep in package_file.get("deps", [])
    )
    return seconds, updates


def git_repo(root: Path) -> None:
    """Renovate's local platform reads a git checkout."""
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for argv in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-qm", "fleet"]):
        subprocess.run(["git", *argv], cwd=root, capture_output=True, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renovate", default=shutil.which("renovate"), help="the renovate executable")
    parser.add_argument("--sizes", default="3,200")
    parser.add_argument("--bases", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.renovate:
        raise SystemExit("no renovate executable: npm install --prefix /tmp/renovate renovate@39, then --renovate PATH")
    latency = args.latency_ms / 1000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp), args.bases) as w:
        work = Path(tmp)
        for count in (int(s) for s in args.sizes.split(",")):
            with (
                StaticIndex(w.tree) as index,
                latency_proxy(w.registry.url, latency) as reg_proxy,
                latency_proxy(index.url.removesuffix("/whl"), latency) as idx_proxy,
            ):
                fleet = work / f"fleet-{count}"
                config = write_fleet(fleet, count, w.bases, reg_proxy.url, f"{idx_proxy.url}/whl", w.support)
                git_repo(fleet)
                review(config, w.env, work / "reports")  # warm-up: the server's database, OS caches
                renovate(args.renovate, fleet, reg_proxy.url, work)
                ours, alone, theirs, ours_requests, their_requests, updates = [], [], [], 0, 0, 0
                for _ in range(args.repeats):
                    alone.append(review(config, w.own_process, work / "reports"))
                    reg_proxy.requests.clear()
                    ours.append(review(config, w.env, work / "reports"))
                    ours_requests = len(reg_proxy.requests)
                    reg_proxy.requests.clear()
                    seconds, updates = renovate(args.renovate, fleet, reg_proxy.url, work)
                    theirs.append(seconds)
                    their_requests = len(reg_proxy.requests)
                median = statistics.median
                row = Row(
                    count,
                    args.latency_ms,
                    median(ours),
                    median(theirs),
                    ours_requests,
                    their_requests,
                    updates,
                    median(alone),
                )
                rows.append(row)
    if args.json:
        print(json.dumps([{**asdict(r), "ratio": r.ratio, "own_process_ratio": r.own_process_ratio} for r in rows]))
        return 0
    print(f"latency {args.latency_ms:g} ms per request, median of {args.repeats}")
    print(
        "| Dockerfiles | baseimage review (warm process) | in its own process | Renovate lookup | ratio (warm / own) "
        "| registry requests (baseimage / Renovate) | updates Renovate found |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.dockerfiles} | {r.baseimage_seconds:.2f} s | {r.own_process_seconds:.2f} s "
            f"| {r.renovate_seconds:.2f} s | {r.ratio:.2f} / {r.own_process_ratio:.2f} "
            f"| {r.baseimage_registry_requests} / {r.renovate_registry_requests} | {r.renovate_updates} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
