"""Regenerate config/data/snapshot/, the snapshot `baseimage review` (and the annual update) fall
back to when the network is unreachable (the quick start on an air-gapped machine).

It cannot be recorded from Docker Hub here (no internet), so it is recorded from the test
fixtures: a local registry seeded with the generated tag universe (NVIDIA's tag names, env and
labels) and a static PyTorch index built from config/data/pytorch.yaml, stored under the
canonical URLs. Its note says so, and every review that uses it prints the note: its digests
are not Docker Hub's. Run: .venv/bin/python scripts/make_bundled_snapshot.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.registry.snapshot import RecordingTransport  # noqa: E402
from tests.support.pytorch_index import StaticIndex, build_tree  # noqa: E402
from tests.support.registry_server import LocalRegistry  # noqa: E402
from tests.support.seed import RegistryWriter, seed  # noqa: E402
from tests.support.universe import universe  # noqa: E402

NOTE = (
    "synthesized from the project's test fixtures (NVIDIA's tag scheme and facts as of 2025-08), "
    "not recorded from Docker Hub or nvcr.io: digests are not the real ones"
)


def main() -> int:
    import flows.quarterly_review as review_flow
    from tasks.http import RetryPolicy

    target = ROOT / "config" / "data" / "snapshot"
    with tempfile.TemporaryDirectory() as tmp:
        registry = LocalRegistry(Path(tmp) / "registry").start()
        try:
            seed(RegistryWriter(registry.url), universe())
            with StaticIndex(build_tree(Path(tmp) / "whl")) as index:
                out = Path(tmp) / "snapshot"
                recorder = RecordingTransport(
                    out,
                    note=NOTE,
                    retry=RetryPolicy(attempts=1),
                    rewrite={
                        f"{registry.url}/v2/nvidia/pytorch": "https://nvcr.io/v2/nvidia/pytorch",
                        f"{registry.url}/v2/": "https://registry-1.docker.io/v2/",
                        index.url: "https://download.pytorch.org/whl",
                    },
                )
                for url in (
                    "https://auth.docker.io/token?scope=repository%3Anvidia%2Fcuda%3Apull&service=registry.docker.io",
                    "https://nvcr.io/proxy_auth?scope=repository%3Anvidia%2Fpytorch%3Apull&service=nvcr.io",
                ):
                    recorder.add(
                        "GET",
                        url,
                        200,
                        b'{"token": "redacted-by-snapshot", "expires_in": 300}',
                        {"Content-Type": "application/json"},
                    )
                import flows.annual_update as annual_flow
                from baseimage import wiring

                wiring.make_transport = lambda *a, **k: (recorder, "recording")  # type: ignore[assignment]
                review_flow.quarterly_review(
                    mirrors={"docker.io": registry.url, "nvcr.io": registry.url},
                    pytorch_index=index.url,
                    out_dir=str(Path(tmp) / "reports"),
                    check_banner=False,
                    update_docs=False,
                )
                annual_flow.annual_update(
                    mirrors={"docker.io": registry.url, "nvcr.io": registry.url},
                    pytorch_index=index.url,
                    out_dir=str(Path(tmp) / "reports"),
                )
                recorder.save()
        finally:
            registry.stop()
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(out, target)
    print(f"wrote {target} ({sum(1 for _ in target.iterdir())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
