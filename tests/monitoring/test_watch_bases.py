"""Which registry references a running container depends on, and the digest it had when
deployed (unit tier): a CUDA tag run directly (the ledger's digest before the local image's), a
release image (its bases as the retain log recorded them); and the retain log's look-ups that
rollback and rebuilds use."""

from __future__ import annotations

from pathlib import Path

from tasks.deploy.ledger import BASE, DEPLOYED, RELEASE, Deployment, ImageRecord, Ledger, RetainedImage, RetainLog
from tasks.monitoring.watch import Running, bases_of

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
TAG = "nvidia/cuda:12.6.3-runtime-ubuntu22.04"


def running(reference: str, image_id: str = "sha256:img", digests: tuple[str, ...] = ()) -> Running:
    return Running("staging", "svc-1", reference, image_id, {"CUDA_VERSION": "12.6.3"}, digests, "")


def test_a_cuda_tag_prefers_the_ledger_digest_over_the_local_image(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, "staging")
    item = running(TAG, digests=(f"nvidia/cuda@{D2}",))
    (base,) = bases_of(item, ledger, RetainLog(tmp_path))
    assert (base.recorded_digest, base.recorded_from) == (D2, "the local image")
    ledger.append(Deployment("staging", DEPLOYED, ImageRecord(TAG, "sha256:img", f"nvidia/cuda@{D1}"), None))
    (base,) = bases_of(item, ledger, RetainLog(tmp_path))
    assert (base.recorded_digest, base.recorded_from) == (D1, "the deployment ledger")
    assert str(base.reference) == TAG and base.env == {"CUDA_VERSION": "12.6.3"}


def test_a_release_image_depends_on_the_bases_it_was_built_from(tmp_path: Path) -> None:
    kept = RetainLog(tmp_path)
    kept.add(
        [
            RetainedImage(
                TAG,
                D1,
                f"keep:5000/keep/nvidia/cuda@{D1}",
                BASE,
                "baseimage/svc:abc",
                "sha256:rel",
                {"CUDA_VERSION": "12.6.3"},
            ),
            RetainedImage(
                "baseimage/svc:abc",
                D3,
                f"keep:5000/keep/baseimage/svc@{D3}",
                RELEASE,
                "baseimage/svc:abc",
                "sha256:rel",
            ),
            RetainedImage(TAG, D2, f"keep:5000/keep/nvidia/cuda@{D2}", BASE, "baseimage/svc:def", "sha256:other"),
        ]
    )
    (base,) = bases_of(running("baseimage/svc:abc", "sha256:rel"), None, kept)
    assert (str(base.reference), base.recorded_digest, base.retained) == (TAG, D1, f"keep:5000/keep/nvidia/cuda@{D1}")
    # After a rollback the container runs the copy by digest: found by its image ID.
    (again,) = bases_of(running(f"keep:5000/keep/baseimage/svc@{D3}", "sha256:rel"), None, kept)
    assert again.recorded_digest == D1
    assert bases_of(running("baseimage/svc:zzz", "sha256:none"), None, kept) == []


def test_retain_log_look_ups(tmp_path: Path) -> None:
    kept = RetainLog(tmp_path)
    assert kept.entries() == [] and kept.copy_of(TAG, None) is None
    base = RetainedImage(TAG, D1, f"keep:5000/keep/nvidia/cuda@{D1}", BASE)
    release = RetainedImage(
        "baseimage/svc:abc", D3, f"keep:5000/keep/baseimage/svc@{D3}", RELEASE, "baseimage/svc:abc", "sha256:rel"
    )
    kept.add([base, release])
    kept.add([base])  # the same image again: refreshed, not doubled
    assert [e.source for e in kept.entries()] == ["baseimage/svc:abc", TAG]
    assert kept.copy_of(TAG, None) == base and kept.copy_of(None, D1) == base and kept.copy_of(TAG, D2) is None
    # What a rollback can pull: the release by its image ID, an image by the digest it ran at.
    assert kept.copies_for(ImageRecord("baseimage/svc:abc", "sha256:rel", None)) == [release.copy]
    assert kept.copies_for(ImageRecord(TAG, "sha256:x", f"nvidia/cuda@{D1}")) == [base.copy]
    assert kept.copies_for(ImageRecord(TAG, "sha256:x", None)) == []


def test_an_ngc_image_is_not_judged_by_the_cuda_image_list(tmp_path: Path) -> None:
    from datetime import date

    from tasks.monitoring.watch import WatchContext, inspect
    from tasks.research.facts import load_facts

    ctx = WatchContext(load_facts(), {"12.6.0": "newer version available"}, "test", None, 580, date(2026, 12, 1))
    ngc = Running(
        "staging",
        "svc-1",
        "nvcr.io/nvidia/pytorch:24.08-py3",
        "sha256:i",
        {"CUDA_VERSION": "12.6.0", "NVIDIA_PYTORCH_VERSION": "24.08"},
        (),
        "",
    )
    report = inspect(ngc, ctx)
    assert report.findings == () and report.cuda_version == "12.6.0"
    plain = Running(
        "staging", "svc-1", "nvidia/cuda:12.6.0-runtime-ubuntu22.04", "sha256:i", {"CUDA_VERSION": "12.6.0"}, (), ""
    )
    assert [f.kind for f in inspect(plain, ctx).findings] == ["nvidia-eol", "deletion-date"]
