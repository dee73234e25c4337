"""The annual update's questions, answered from registry data and the bundled facts (pure: the
flow fetches, this decides): the next Ubuntu LTS on the target CUDA line and the current one's end
of standard support; the CUDA upgrade path (newest minor of the major, the next major and what
blocks it); the newest Python with torch wheels for the target; NGC against plain CUDA for the
training image (compressed size, CUDA and PyTorch inside, support); platforms of each image. A due
upgrade's plan carries the coupled stack for the target (torch from the newest variant of the target
major up to its minor, torchvision, CuPy, onnxruntime-gpu), which ``migrate --report`` checks again
against the requirements file (never downgrading a pin) and the registry before writing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

from tasks.images.tags import CudaTag, NgcTag, extra_family
from tasks.registry.session import ImageInfo
from tasks.research.annual_model import AnnualImage, AnnualStack, CudaPath, NgcOption, PythonAnswer, UbuntuAnswer
from tasks.research.drivers import fleet_check
from tasks.research.facts import Facts
from tasks.research.planner import TorchChoice, cudnn_change, newest_torch
from tasks.research.sources.pytorch_index import variant_for

PYTHONS = ("3.14", "3.13", "3.12", "3.11", "3.10")
LTS_WARNING_DAYS = 365  # an OS whose standard support ends within a year is due for the annual update


def _versions(tags: list[str], current: CudaTag) -> dict[tuple[int, int, int], set[str]]:
    """CUDA version -> OS labels with a tag of the current image's extra (cudnn8, cudnn9 and cudnn
    as one) and flavor."""
    found: dict[tuple[int, int, int], set[str]] = {}
    for text in tags:
        tag = CudaTag.try_parse(text)
        if tag and extra_family(tag.extra) == extra_family(current.extra) and tag.flavor == current.flavor:
            found.setdefault(tag.version, set()).add(tag.os_label)
    return found


def _fmt(version: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in version)


def _supported(version: tuple[int, int, int], facts: Facts, unsupported: dict[str, str]) -> bool:
    text = _fmt(version)
    return text not in facts.eol and text not in unsupported


def plan_cuda_image(
    name: str,
    file: str,
    reference: str,
    tags: list[str],
    facts: Facts,
    today: date,
    *,
    fleet_min_driver: int,
    allow_major: bool,
    unsupported: dict[str, str],
    pin_minor: str | None = None,
    pythons_with_torch: Callable[[str], list[tuple[str, str]]] = lambda variant: [],
    info: Callable[[str], ImageInfo | None] = lambda ref: None,
    python: str = "3.11",
) -> AnnualImage:
    """One nvidia/cuda image; `pythons_with_torch(variant)` gives (python, newest torch) newest first."""
    repo, _, tag_text = reference.rpartition(":")
    current = CudaTag.parse(tag_text)
    out = AnnualImage(name, file, reference)
    versions = _versions(tags, current)
    major = current.version[0]
    line = [
        v
        for v in sorted(versions, reverse=True)
        if v[0] == major
        and (pin_minor is None or f"{v[0]}.{v[1]}" == pin_minor)
        and _supported(v, facts, unsupported)
        and fleet_check(_fmt(v), fleet_min_driver, facts).ok
    ]
    target_version = line[0] if line else current.version
    next_major = sorted((v for v in versions if v[0] == major + 1), reverse=True)
    out.cuda_path = _cuda_path(current, target_version, next_major, facts, fleet_min_driver, allow_major)
    # Ubuntu: the current LTS's end of standard support and the next LTS on the target line.
    os_now = current.os_version if current.os == "ubuntu" else None
    release = facts.ubuntu.get(os_now or "")
    labels = versions.get(target_version, set())
    newer = sorted(
        (u for u in facts.ubuntu.values() if os_now and u.version > os_now and u.released <= today),
        key=lambda u: u.version,
    )
    available = [u for u in newer if f"ubuntu{u.version}" in labels]
    out.ubuntu = UbuntuAnswer(
        os_now,
        release.end_of_standard_support.isoformat() if release else None,
        (release.end_of_standard_support - today).days if release else None,
        newer[0].version if newer else None,
        available[0].version if available else None,
        _fmt(target_version),
    )
    os_label = current.os_label
    if release and (release.end_of_standard_support - today).days <= LTS_WARNING_DAYS:
        if available:
            os_label = f"ubuntu{available[0].version}"
            out.reasons.append(
                f"Ubuntu {os_now} standard support ends {release.end_of_standard_support} "
                f"({(release.end_of_standard_support - today).days} days); Ubuntu {available[0].version} "
                f"exists for CUDA {_fmt(target_version)}"
            )
        else:
            out.reasons.append(
                f"Ubuntu {os_now} standard support ends {release.end_of_standard_support}, and no newer LTS "
                f"is published for CUDA {_fmt(target_version)} {current.flavor} yet"
            )
    if target_version > current.version:
        out.reasons.append(f"CUDA {_fmt(target_version)} is the newest supported {major}.x that the fleet runs")
    target_tag = current.on_track(_fmt(target_version), tags, os_label)  # cudnn8 -> cudnn as NVIDIA spells it
    if target_tag != str(current) and target_tag in tags:
        out.target = f"{repo}:{target_tag}"
        out.recommended = True
        cudnn = cudnn_change(current, CudaTag.parse(target_tag), None, facts)
        if cudnn:
            out.reasons.append(cudnn)
    # Python: the newest with torch wheels for the target's variant.
    variant = variant_for((target_version[0], target_version[1]))
    with_torch = pythons_with_torch(variant)
    out.python = PythonAnswer(
        variant,
        with_torch[0][0] if with_torch else None,
        with_torch[0][1] if with_torch else None,
        tuple(p for p, _ in with_torch),
    )
    out.stack = _stack(out, target_version, python, pythons_with_torch, facts)
    for ref in (reference, out.target):
        if ref:
            found = info(ref)
            out.platforms[ref] = [str(p) for p in found.platforms] if found else []
    return out


def _cuda_path(
    current: CudaTag,
    target: tuple[int, int, int],
    next_major: list[tuple[int, int, int]],
    facts: Facts,
    fleet_min_driver: int,
    allow_major: bool,
) -> CudaPath:
    """The newest of the major the fleet runs, and the next major with what blocks it."""
    path = CudaPath(current.version_str, _fmt(target))
    if not next_major:
        return path
    major = current.version[0]
    newest = _fmt(next_major[0])
    check = fleet_check(newest, fleet_min_driver, facts)
    path = replace(path, next_major=newest, next_major_runs_on_fleet=check.ok)
    if not check.ok:
        floor = facts.mvc_floor.get(major + 1)
        unblock = (
            f"raise the fleet's minimum driver (fleet.min_driver, now R{fleet_min_driver}) to "
            f"R{floor.split('.')[0]} or newer ({floor})"
            if floor
            else "no driver data for the next major"
        )
        return replace(path, blocked=f"CUDA {major} -> {major + 1} is blocked: {check.reason}", unblock=unblock)
    if not allow_major:
        return replace(
            path,
            blocked=f"CUDA {major + 1} runs on the fleet but policy.allow_major_upgrade is false",
            unblock=f"set policy.allow_major_upgrade: true to plan CUDA {newest}",
        )
    return path


def _stack(
    image: AnnualImage,
    version: tuple[int, int, int],
    python: str,
    pythons_with_torch: Callable[[str], list[tuple[str, str]]],
    facts: Facts,
) -> AnnualStack:
    """The coupled stack for the target (or the current release when nothing is due)."""
    minor = (version[0], version[1])
    answers: dict[str, list[str]] = {}
    for m in range(minor[1] + 1):
        variant = f"cu{minor[0]}{m}"
        found = [torch for py, torch in pythons_with_torch(variant) if py == python]
        if found:
            answers[variant] = found
    torch = newest_torch(minor, answers, facts)
    package, cupy = facts.cupy_for(minor)
    stack = AnnualStack(_fmt(version), python, torch, package, cupy, facts.ort_for(minor[0]))
    if torch and image.target:
        image.reasons.append(
            f"stack for CUDA {_fmt(version)}: torch {torch.torch} + torchvision {torch.torchvision} from "
            f"{torch.variant} (the newest for Python {python} on a CUDA {minor[0]}.x variant up to "
            f"cu{minor[0]}{minor[1]}), {package}=={cupy}, onnxruntime-gpu "
            f"{stack.onnxruntime_gpu or 'none for this major'}"
        )
    return stack


def compare_ngc(
    plain_ref: str | None,
    plain_torch: TorchChoice | None,
    ngc_repo: str,
    ngc_tags: list[str],
    facts: Facts,
    fleet_min_driver: int,
    info: Callable[[str], ImageInfo | None],
    newest_n: int = 24,
) -> list[NgcOption]:
    """The plain CUDA target against the newest NGC PyTorch release the fleet runs."""
    rows: list[NgcOption] = []
    if plain_ref:
        plain = info(plain_ref)
        rows.append(
            NgcOption(
                "plain CUDA + pip torch",
                plain_ref,
                round(plain.compressed_size / 1e6, 1) if plain else None,
                plain.cuda_version if plain else None,
                f"torch {plain_torch.torch} (pip wheel, {plain_torch.variant})" if plain_torch else "no wheel found",
                tuple(str(p) for p in plain.platforms) if plain else (),
                "NVIDIA's CUDA support policy: EOL table, deletion about 6 months after EOL",
            )
        )
    releases = sorted(
        (t for t in (NgcTag.try_parse(x) for x in ngc_tags) if t and str(t).endswith("-py3")),
        key=lambda t: t.sort_key,
        reverse=True,
    )
    skipped = []
    for tag in releases[:newest_n]:
        found = info(f"{ngc_repo}:{tag}")
        cuda = found.cuda_version if found else None
        if found is None or (cuda and not fleet_check(cuda, fleet_min_driver, facts).ok):
            skipped.append(f"{tag.release} (CUDA {cuda or '?'})")
            continue
        support = "monthly releases; NVIDIA publishes no deprecation or retention policy for NGC PyTorch"
        if skipped:
            support += f"; newer releases need a newer driver: {', '.join(skipped)}"
        rows.append(
            NgcOption(
                f"NGC PyTorch {tag.release}",
                f"{ngc_repo}:{tag}",
                round(found.compressed_size / 1e6, 1),
                cuda,
                found.env.get("PYTORCH_VERSION"),
                tuple(str(p) for p in found.platforms),
                support,
            )
        )
        break
    else:
        if releases:
            rows.append(
                NgcOption(
                    "NGC PyTorch: none usable",
                    f"{ngc_repo}:{releases[0]}",
                    None,
                    None,
                    None,
                    (),
                    f"none of the newest {min(newest_n, len(releases))} runs on R{fleet_min_driver}",
                )
            )
    return rows
