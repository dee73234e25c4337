"""Research sources by tables: facts files, NVIDIA's unsupported list, NVIDIA_REQUIRE_CUDA and the
fleet driver rule, PyTorch index pages (HTML and PEP 691), OSV matching, snapshots."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from packaging.version import Version

from tasks.errors import ConfigError, HttpTransientError, HttpUnreachableError, NotRecordedError, SourceProtocolError
from tasks.http import RetryPolicy
from tasks.registry.snapshot import RecordingTransport, ReplayTransport
from tasks.research import osv
from tasks.research.drivers import fleet_check, listed_branches, parse_require_cuda
from tasks.research.facts import load_facts
from tasks.research.sources.pytorch_index import PyTorchIndex, parse_filename, parse_page
from tasks.research.support import add_months, parse_unsupported, support_state
from tests.conftest import REPO_ROOT
from tests.support.http_endpoint import Endpoint, Reply
from tests.support.universe import cuda_env

FACTS = load_facts()
OSV_DIR = REPO_ROOT / "tests" / "fixtures" / "osv"


def test_every_facts_file_names_its_source_and_date() -> None:
    assert set(FACTS.sources) == {
        "nvidia-support",
        "cuda-drivers",
        "cupy",
        "onnxruntime",
        "pytorch",
        "ubuntu",
        "ngc-pytorch",
        "onnx-compat",
    }
    for source, as_of in FACTS.sources.values():
        assert source and isinstance(as_of, date)


def test_malformed_facts_file_is_a_clear_error(tmp_path: Path) -> None:
    for name in (
        "nvidia-support",
        "cuda-drivers",
        "cupy",
        "onnxruntime",
        "pytorch",
        "ubuntu",
        "ngc-pytorch",
        "onnx-compat",
    ):
        (tmp_path / f"{name}.yaml").write_text((REPO_ROOT / "config" / "data" / f"{name}.yaml").read_text())
    (tmp_path / "cupy.yaml").write_text("releases: []\n")
    with pytest.raises(ConfigError, match=r"cupy.yaml: a facts file needs 'source' and 'as_of' at the top"):
        load_facts(tmp_path)


@pytest.mark.parametrize(
    ("minor", "package", "version"),
    [
        ((12, 6), "cupy-cuda12x", "14.2.0"),
        ((11, 8), "cupy-cuda11x", "13.6.0"),
        ((13, 0), "cupy-cuda13x", "14.2.0"),
        ((13, 3), None, None),
        ((10, 2), None, None),
    ],
)
def test_cupy_for_a_cuda_minor(minor: tuple[int, int], package: str | None, version: str | None) -> None:
    assert FACTS.cupy_for(minor) == (package, version)


@pytest.mark.parametrize(
    ("torch", "torchvision"),
    [("2.5.1", "0.20.1"), ("2.5.1+cu126", "0.20.1"), ("2.13.0", "0.28.0"), ("2.14.1", "0.29.1")],
)
def test_torchvision_pairing(torch: str, torchvision: str) -> None:
    assert FACTS.torchvision_for(torch) == torchvision


def test_onnxruntime_by_cuda_major() -> None:
    # Corrected: this codified "no CUDA-13 onnxruntime-gpu" (facts stopped at 1.23.2); from 1.27.0 the
    # default index's builds are CUDA 13 (tests/research/test_facts.py pins the rows).
    assert FACTS.ort_for(12) == "1.26.0" and FACTS.ort_for(11) == "1.18.1" and FACTS.ort_for(13) == "1.31.1"


MANIFEST = """push_repos:
  ngc:
    registry: nvcr.io

unsupported:
  release_label:
   - 12.9.0 # Newer version available
   - 12.1.0 # Newer version available
   - 11.0.3 # Last supported TRD end-of-life. Tags will be removed from Dockerhub in six months (May 2024).

cuda_v13.0.0:
  release_label: 13.0.0
"""


def test_parse_unsupported_keeps_the_reasons() -> None:
    assert parse_unsupported(MANIFEST) == {
        "12.9.0": "Newer version available",
        "12.1.0": "Newer version available",
        "11.0.3": "Last supported TRD end-of-life. Tags will be removed from Dockerhub in six months (May 2024).",
    }
    with pytest.raises(SourceProtocolError, match="no 'unsupported: release_label:' list"):
        parse_unsupported("cuda_v13.0.0:\n  release_label: 13.0.0\n")


def test_support_state_combines_every_signal() -> None:
    listed = {"12.1.0": "Newer version available"}
    eol = support_state("12.1.0", FACTS, listed, config_eol=True, newer_patch="12.1.1", tag_present=True)
    assert eol.status == "eol" and eol.estimated_deletion == date(2023, 10, 1)
    assert eol.reasons == (
        "NVIDIA lists 12.1.0 as unsupported: Newer version available",
        "image config sets NVIDIA_CUDA_END_OF_LIFE (deprecation banner at start-up)",
        "newer patch 12.1.1 of the same minor exists (EOL by NVIDIA's rule)",
    )
    assert support_state("12.9.1", FACTS, listed, config_eol=False, newer_patch=None, tag_present=True).supported
    gone = support_state("11.7.0", FACTS, listed, config_eol=None, newer_patch="11.7.1", tag_present=False)
    assert gone.status == "deleted" and gone.reasons[0] == "tag is gone from the registry"
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)


def test_require_cuda_semantics() -> None:
    value = cuda_env("12.6.3", "runtime", None)["NVIDIA_REQUIRE_CUDA"]
    groups = parse_require_cuda(value)
    assert [c.key for c in groups[0]] == ["cuda"] and groups[0][0].value == "12.6"
    assert [(c.key, c.op) for c in groups[1]] == [("brand", "="), ("driver", ">="), ("driver", "<")]
    assert listed_branches(value) == [470, 535, 550]
    with pytest.raises(ValueError, match="constraint 'cuda' is not KEY OP VALUE"):
        parse_require_cuda("cuda")


@pytest.mark.parametrize(
    ("cuda", "fleet", "ok", "how"),
    [
        ("12.2.2", 535, True, "native"),
        ("12.6.3", 560, True, "native"),
        ("12.6.3", 535, True, "minor-version compatibility"),
        ("12.9.1", 535, True, "minor-version compatibility"),
        ("12.0.1", 470, False, "none"),
        ("13.0.0", 535, False, "forward compatibility only"),
        ("13.0.0", 580, True, "native"),
        ("13.1.0", 580, True, "minor-version compatibility"),
        ("11.8.0", 470, True, "minor-version compatibility"),
    ],
)
def test_fleet_driver_rule(cuda: str, fleet: int, ok: bool, how: str) -> None:
    require = cuda_env(cuda, "runtime", None)["NVIDIA_REQUIRE_CUDA"] if cuda in ("13.0.0",) else None
    check = fleet_check(cuda, fleet, FACTS, require)
    assert (check.ok, check.how) == (ok, how), check.reason


HTML = """<!DOCTYPE html><html><body>
<a href="/whl/cu126/torch-2.6.0%2Bcu126-cp311-cp311-linux_x86_64.whl#sha256=00">torch-2.6.0+cu126-cp311-cp311-linux_x86_64.whl</a><br/>
<a href="/whl/cu126/torch-2.7.1%2Bcu126-cp311-cp311-manylinux_2_28_x86_64.whl#sha256=00" data-dist-info-metadata="sha256=1">torch-2.7.1+cu126-cp311-cp311-manylinux_2_28_x86_64.whl</a><br/>
<a href="/whl/cu126/torch-2.7.1%2Bcu126-cp312-cp312-manylinux_2_28_x86_64.whl">torch-2.7.1+cu126-cp312-cp312-manylinux_2_28_x86_64.whl</a><br/>
<a href="/whl/cu126/torch-2.8.0%2Bcu126-cp311-cp311-manylinux_2_28_aarch64.whl">torch-2.8.0+cu126-cp311-cp311-manylinux_2_28_aarch64.whl</a><br/>
<a href="/whl/cu126/torch-2.8.0%2Bcu126-cp313-cp313t-manylinux_2_28_x86_64.whl">torch-2.8.0+cu126-cp313-cp313t-manylinux_2_28_x86_64.whl</a><br/>
<a href="/whl/cu126/torch-2.9.0.dev20250801%2Bcu126-cp311-cp311-win_amd64.whl">torch-2.9.0.dev20250801+cu126-cp311-cp311-win_amd64.whl</a><br/>
<a href="/whl/cu126/not-a-wheel.tar.gz">not-a-wheel.tar.gz</a>
</body></html>"""


def test_pep503_html_page() -> None:
    wheels = parse_page(HTML.encode(), "text/html", "https://download.pytorch.org/whl/cu126/torch/")
    assert len(wheels) == 6
    first = wheels[0]
    assert (first.package, str(first.version), first.variant, first.python, first.platform) == (
        "torch",
        "2.6.0",
        "cu126",
        "cp311",
        "linux_x86_64",
    )
    assert (
        first.url == "https://download.pytorch.org/whl/cu126/torch-2.6.0%2Bcu126-cp311-cp311-linux_x86_64.whl#sha256=00"
    )
    fits = sorted({str(w.version) for w in wheels if w.fits("3.11")})
    assert fits == ["2.6.0", "2.7.1"]  # no aarch64, no Windows, no free-threaded 3.13t for 3.11


def test_pep691_json_page() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "torch",
            "files": [
                {
                    "filename": "torch-2.13.0+cu130-cp311-cp311-manylinux_2_28_x86_64.whl",
                    "url": "torch-2.13.0%2Bcu130-cp311-cp311-manylinux_2_28_x86_64.whl",
                    "hashes": {},
                }
            ],
        }
    )
    wheels = parse_page(body.encode(), "application/vnd.pypi.simple.v1+json", "https://x/whl/cu130/torch/")
    assert [(str(w.version), w.variant, w.url) for w in wheels] == [
        (
            "2.13.0",
            "cu130",
            "https://x/whl/cu130/torch/torch-2.13.0%2Bcu130-cp311-cp311-manylinux_2_28_x86_64.whl",
        )
    ]
    with pytest.raises(SourceProtocolError, match="not a PEP 691 project page"):
        parse_page(b"{}", "application/vnd.pypi.simple.v1+json", "https://x/")


def test_index_client_asks_for_json_first_and_fetches_each_page_once() -> None:
    with Endpoint(
        lambda req: Reply(200, HTML.encode(), {"Content-Type": "text/html"}) if "cu126" in req.path else Reply(404)
    ) as ep:
        from tasks.http import HttpTransport

        index = PyTorchIndex(ep.url + "/whl/", HttpTransport())
        assert index.versions("cu126", "torch", "3.11") == [Version("2.7.1"), Version("2.6.0")]
        assert index.versions("cu126", "torch", "3.12") == [Version("2.7.1")]
        assert index.wheels("cu999", "torch") is None
        assert ep.paths() == ["GET /whl/cu126/torch/", "GET /whl/cu999/torch/"]
        assert ep.requests[0].headers["accept"].startswith("application/vnd.pypi.simple.v1+json")


def test_parse_filename_rejects_non_wheels() -> None:
    assert parse_filename("torch-2.5.0.tar.gz", "u") is None
    assert parse_filename("torch-notaversion-cp311-cp311-linux_x86_64.whl", "u") is None


def test_pins_and_offline_osv() -> None:
    from tasks.update.coupled import file_reader, read_stack

    stack = read_stack(file_reader(REPO_ROOT), "dockerfiles/training/requirements/ml.txt")
    pins = [osv.Pin(name, version) for _file, name, version in stack.pinned()]
    assert [(p.name, p.version) for p in pins] == [
        ("torch", "2.5.1+cu126"),
        ("torchvision", "0.20.1+cu126"),
        ("cupy-cuda12x", "13.3.0"),
        ("onnx", "1.17.0"),
        ("onnxruntime-gpu", "1.20.1"),
    ]
    found = osv.offline_advisories(pins, OSV_DIR)
    assert [(a.id, a.package, a.version, a.severity, a.fixed, a.aliases) for a in found] == [
        ("GHSA-53q9-r3pm-6pq6", "torch", "2.5.1+cu126", "CRITICAL", ["2.6.0"], ["CVE-2025-32434"])
    ]
    assert osv.offline_advisories([osv.Pin("torch", "2.6.0+cu126")], OSV_DIR) == []


@pytest.mark.parametrize(
    ("events", "version", "hit"),
    [
        ([{"introduced": "0"}, {"fixed": "2.6.0"}], "2.5.1", True),
        ([{"introduced": "0"}, {"fixed": "2.6.0"}], "2.6.0", False),
        ([{"introduced": "2.0"}, {"last_affected": "2.1.2"}], "2.1.2", True),
        ([{"introduced": "2.0"}, {"last_affected": "2.1.2"}], "1.13.1", False),
        ([{"introduced": "2.3"}], "2.9.0", True),
    ],
)
def test_osv_ranges(events: list[dict[str, str]], version: str, hit: bool) -> None:
    record = {
        "id": "X",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Torch"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }
    assert osv.affects(record, osv.Pin("torch", version))[0] is hit


def test_live_osv_querybatch_against_a_local_endpoint() -> None:
    record = json.loads((OSV_DIR / "GHSA-53q9-r3pm-6pq6.json").read_text())

    def handle(req: object) -> Reply:
        if req.path.endswith("/querybatch"):  # type: ignore[attr-defined]
            queries = json.loads(req.body)["queries"]  # type: ignore[attr-defined]
            assert queries[0] == {
                "package": {"name": "torch", "ecosystem": "PyPI"},
                "version": "2.5.1",
            }
            return Reply(200, json.dumps({"results": [{"vulns": [{"id": record["id"]}]}, {}]}).encode())
        return Reply(200, json.dumps(record).encode())

    from tasks.http import HttpTransport

    with Endpoint(handle) as ep:
        found = osv.live_advisories(
            [osv.Pin("torch", "2.5.1+cu126"), osv.Pin("onnx", "1.17.0")],
            HttpTransport(),
            api=ep.url + "/v1",
        )
        assert ep.paths() == ["POST /v1/querybatch", "GET /v1/vulns/GHSA-53q9-r3pm-6pq6"]
    assert [(a.id, a.package, a.fixed) for a in found] == [("GHSA-53q9-r3pm-6pq6", "torch", ["2.6.0"])]


def test_snapshot_records_and_replays_without_tokens(tmp_path: Path) -> None:
    def handle(req: object) -> Reply:
        if req.path == "/token":  # type: ignore[attr-defined]
            return Reply(200, b'{"token": "secret-token", "expires_in": 300}')
        return Reply(200, b'{"tags": ["a"]}', {"Content-Type": "application/json", "X-Other": "dropped"})

    with Endpoint(handle) as ep:
        recorder = RecordingTransport(tmp_path / "snap", note="unit test")
        recorder.request("GET", f"{ep.url}/token?scope=x")
        recorder.request("GET", f"{ep.url}/v2/a/tags/list", headers={"Accept": "application/json"})
        recorder.save()
    assert "secret-token" not in "".join(p.read_text() for p in (tmp_path / "snap").iterdir())
    replay = ReplayTransport(tmp_path / "snap", retry=RetryPolicy(attempts=1))
    answer = replay.request("GET", f"{ep.url}/v2/a/tags/list", headers={"Accept": "application/json"})
    assert answer.json() == {"tags": ["a"]} and answer.headers["Content-Type"] == "application/json"
    assert "X-Other" not in answer.headers and replay.note == "unit test"
    with pytest.raises(NotRecordedError, match="not in the snapshot") as missing:
        replay.request("GET", f"{ep.url}/v2/b/tags/list")
    # one lookup the snapshot lacks is not a network outage: not retried, the other lookups go on
    assert not isinstance(missing.value, HttpTransientError)
    with pytest.raises(HttpUnreachableError, match="not a snapshot made by `baseimage snapshot`"):
        ReplayTransport(tmp_path)


def test_advisories_cover_included_files_and_the_pyproject(tmp_path: Path) -> None:
    """The advisories source reads an image's stack as pip and uv do: a pin in a -r include, or in
    the pyproject.toml beside the requirements, is looked up under the image's requirements file."""
    from tasks.http import HttpTransport
    from tasks.research.sources import SourceContext
    from tasks.research.sources.advisories import Advisories

    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "ml.txt").write_text("-r gpu.txt\nnumpy==1.26.4\n")
    (tmp_path / "reqs" / "gpu.txt").write_text("torch==2.5.1+cu126\n")
    (tmp_path / "other.txt").write_text("numpy==1.26.4\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\ndependencies = ["torch==2.5.1"]\n')
    ctx = SourceContext(
        load_facts(),
        HttpTransport(),
        live=False,
        today=date(2026, 12, 1),
        stacks=[
            (str(tmp_path / "reqs" / "ml.txt"), None),
            (str(tmp_path / "other.txt"), str(tmp_path / "pyproject.toml")),
        ],
        osv_db=OSV_DIR,
    )
    answer = Advisories().fetch(ctx)
    assert answer.where == f"OSV records in {OSV_DIR}"
    by_file = answer.value
    assert [a.id for a in by_file[str(tmp_path / "reqs" / "ml.txt")]] == ["GHSA-53q9-r3pm-6pq6"], "from gpu.txt"
    assert [a.id for a in by_file[str(tmp_path / "other.txt")]] == ["GHSA-53q9-r3pm-6pq6"], "from pyproject"


def test_the_bundled_facts_are_a_source_that_says_how_old_each_file_is() -> None:
    """The facts are read from baseimage's own config/data, never fetched: the review names them
    on its sources line, and a file older than two quarters is a finding naming where to refresh
    it (a support table or a release list that old may miss what NVIDIA or PyTorch did since)."""
    from tasks.http import HttpTransport
    from tasks.research.sources import SOURCES, SourceContext
    from tasks.research.sources.bundled_facts import MAX_AGE_DAYS, BundledFacts

    assert any(isinstance(s, BundledFacts) for s in SOURCES), "registered: every review reads it"
    facts = load_facts()
    oldest = min(as_of for _, as_of in facts.sources.values())
    newest = max(as_of for _, as_of in facts.sources.values())
    fresh = BundledFacts().fetch(SourceContext(facts, HttpTransport(), live=False, today=newest))
    assert fresh.source == "facts" and fresh.label == "bundled facts"
    assert fresh.where == f"baseimage's config/data ({len(facts.sources)} files, as of {oldest} to {newest})"
    assert fresh.value == oldest and fresh.findings == ()
    later = date.fromordinal(newest.toordinal() + MAX_AGE_DAYS + 1)
    stale = BundledFacts().fetch(SourceContext(facts, HttpTransport(), live=False, today=later))
    source, as_of = facts.sources["ubuntu"]
    age = (later - as_of).days
    assert (
        f"the bundled facts in config/data/ubuntu.yaml are {age} days old (as of {as_of}): releases and "
        f"end-of-life dates since then are not in them; upgrade baseimage, or update the file from {source}"
    ) in stale.findings
    assert len(stale.findings) == len(facts.sources), "every file is older than two quarters by then"


def test_the_pytorch_index_names_itself_without_its_credentials() -> None:
    from tasks.http import HttpTransport
    from tasks.research.sources.pytorch_index import PyTorchIndex

    assert (
        PyTorchIndex("https://download.pytorch.org/whl/", HttpTransport()).where == "https://download.pytorch.org/whl"
    )
    for private in (
        "https://ci:s3cret-token@wheels.example.internal/whl",
        "https://wheels.example.internal/s3cret-token/whl",  # a token in the path, as some hosts have it
        "https://wheels.example.internal/whl?private_token=s3cret-token",
    ):
        assert PyTorchIndex(private, HttpTransport()).where == "https://wheels.example.internal/…"
    tokened = PyTorchIndex("https://download.pytorch.org/whl?key=s3cret-token", HttpTransport())
    assert "s3cret" not in tokened.where
