"""Migration plans from a review report (its recommended targets) or from ``--to VERSION``."""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from tasks.errors import BaseImageError
from tasks.images.reference import parse_reference
from tasks.images.tags import CudaTag
from tasks.research.facts import Facts
from tasks.research.pytorch_index import variant_for
from tasks.update.apply import ImageChange, MigrationPlan
from tasks.update.requirements import RequirementChanges


def from_report(report: dict[str, Any], requirements_of: dict[str, str | None]) -> MigrationPlan | None:
    """Every image the review recommends migrating, with the pins its plan chose."""
    changes = []
    reasons: list[str] = []
    for image in report["images"]:
        plan = image.get("plan") or {}
        if not image.get("recommended") or not image.get("target"):
            continue
        torch = plan.get("torch") or {}
        changes.append(
            ImageChange(
                image["image"],
                image["file"],
                image["current"],
                image["target"],
                requirements_of.get(image["image"]),
                RequirementChanges(
                    torch.get("variant"),
                    None,
                    torch.get("torch"),
                    torch.get("torchvision"),
                    plan.get("cupy_package"),
                    plan.get("cupy_version"),
                    plan.get("onnxruntime_gpu"),
                ),
            )
        )
        reasons.extend(f"{image['image']}: {r}" for r in image.get("reasons", [])[:3])
    if not changes:
        return None
    from tasks.research.report import matrix_frame, matrix_markdown

    return MigrationPlan(tuple(changes), tuple(reasons), matrix_markdown(matrix_frame(report["images"])))


def from_target(version: str, images: list[tuple[str, str, str, str | None]], facts: Facts) -> MigrationPlan:
    """Move every CUDA image (name, dockerfile, current reference, requirements) to `version` on its own
    track, with pins from the bundled facts (the newest torch built for that CUDA minor)."""
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError as exc:
        raise BaseImageError(f"--to {version!r}: expected a CUDA version like 12.9.1") from exc
    if len(parts) != 3:
        raise BaseImageError(f"--to {version!r}: expected a CUDA version with three parts, like 12.9.1")
    minor = (parts[0], parts[1])
    variant = variant_for(minor)
    torch_releases = [r for r in facts.torch_releases if variant in r.cuda]
    torch = max(torch_releases, key=lambda r: Version(r.torch)) if torch_releases else None
    cupy_package, cupy_version = facts.cupy_for(minor)
    changes = []
    for name, dockerfile, current, requirements in images:
        ref = parse_reference(current)
        tag = CudaTag.try_parse(ref.tag)
        if tag is None:
            continue
        target = str(ref.with_tag(str(tag).replace(tag.version_str, version, 1)))
        changes.append(
            ImageChange(
                name,
                dockerfile,
                current,
                target,
                requirements,
                RequirementChanges(
                    variant if torch else None,
                    None,
                    torch.torch if torch else None,
                    torch.torchvision if torch else None,
                    cupy_package,
                    cupy_version,
                    facts.ort_for(parts[0]),
                ),
            )
        )
    if not changes:
        raise BaseImageError(f"--to {version}: no managed image is on nvidia/cuda")
    return MigrationPlan(tuple(changes), (f"requested: CUDA {version}",))
