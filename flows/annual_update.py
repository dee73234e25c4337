"""The policy's annual update: Ubuntu LTS, CUDA major/minor path, NGC or plain CUDA, Python,
platforms. Writes reports/annual-<year>.md and .json; the JSON has the shape `baseimage migrate
--report` reads, so an upgrade that is due is one command away."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from baseimage import wiring
from baseimage.settings import Settings, load_settings
from baseimage.wiring import registry_session
from flows.outcome import record_outcome
from tasks.dockerfile.parser import read_dockerfile
from tasks.errors import BaseImageError, RegistryError
from tasks.files import write_atomic
from tasks.images.reference import parse_reference
from tasks.registry.session import ImageInfo
from tasks.research.annual import PYTHONS, compare_ngc, plan_cuda_image
from tasks.research.annual_model import AnnualImage, NgcOption
from tasks.research.annual_report import AnnualReport, annual_markdown
from tasks.research.support import unsupported_or_bundled


@dataclass(frozen=True)
class _Base:
    """One FROM of a managed image, with what the annual questions need of its image."""

    image: str
    file: str  # the Dockerfile, as the policy file names it
    reference: str
    track: str
    pin_minor: str | None
    python: str  # images[].python: the stack is planned for it


def _bases(settings: Settings) -> list[_Base]:
    """Every base of every managed image."""
    out: list[_Base] = []
    for image in settings.images:
        parsed = read_dockerfile(settings.path(image.dockerfile), image.build_args, str(image.dockerfile))
        for base in parsed.bases:
            if base.reference is not None:
                out.append(
                    _Base(
                        image.name,
                        str(image.dockerfile),
                        str(base.reference),
                        image.track,
                        image.pin_minor,
                        image.python,
                    )
                )
    return out


@task(name="annual-research", retries=2, retry_delay_seconds=[5, 30])
def research(
    settings: Settings, sources: str, offline_dir: str | None, mirrors: dict[str, str], pytorch_index: str | None
) -> AnnualReport:
    facts, index_url = wiring.research_sources(settings, pytorch_index)
    transport, description = wiring.make_transport(settings, sources, Path(offline_dir) if offline_dir else None, None)
    session = registry_session(settings, transport, mirrors)
    index = wiring.wheel_index(index_url, transport)
    unsupported, _ = unsupported_or_bundled(facts, transport if sources != "offline" else None)
    today = datetime.now(UTC).date()

    errors: dict[str, str] = {}  # message -> first reference it stopped (one line per cause)

    def info(ref: str) -> ImageInfo | None:
        try:
            return session.inspect(parse_reference(ref))
        except RegistryError as exc:  # the report says what it could not see, and goes on
            errors.setdefault(str(exc), ref)
            return None

    def pythons_with_torch(variant: str) -> list[tuple[str, str]]:
        if not index.wheels(variant, "torch"):
            return []
        found = []
        for python in PYTHONS:
            versions = index.versions(variant, "torch", python)
            if versions:
                found.append((python, str(max(versions))))
        return found

    images: list[AnnualImage] = []
    ngc_rows: list[NgcOption] = []
    bases = _bases(settings)
    for base in bases:
        ref = parse_reference(base.reference)
        tags = session.tags(ref.registry, ref.repository) or []
        if base.track == "cuda":
            images.append(
                plan_cuda_image(
                    base.image,
                    base.file,
                    base.reference,
                    tags,
                    facts,
                    today,
                    fleet_min_driver=settings.fleet.min_driver,
                    allow_major=settings.policy.allow_major_upgrade,
                    unsupported=unsupported,
                    pin_minor=base.pin_minor,
                    pythons_with_torch=pythons_with_torch,
                    info=info,
                    python=base.python,
                )
            )
    training = next((i for i in images if i.image == "training"), images[0] if images else None)
    ngc = next((b.reference for b in bases if b.track == "ngc"), None)
    if ngc is not None:
        ngc_ref = parse_reference(ngc)
        plain = training.target or training.current if training else None
        ngc_rows = compare_ngc(
            plain,
            # the torch the plan installs for the image's Python, not the newest Python's
            training.stack.torch if training and training.stack else None,
            ngc.rsplit(":", 1)[0],
            session.tags(ngc_ref.registry, ngc_ref.repository) or [],
            facts,
            settings.fleet.min_driver,
            info,
        )
    return AnnualReport(
        today,
        description,
        settings.fleet.min_driver,
        images,
        ngc_rows,
        [f"{ref}: {message}" for message, ref in errors.items()],
    )


@flow(name="annual-update")
def annual_update(
    config_path: str | None = None,
    sources: str = "live",
    offline_dir: str | None = None,
    mirrors: dict[str, str] | None = None,
    pytorch_index: str | None = None,
    out_dir: str = "reports",
) -> dict[str, Any]:
    """Answer the annual questions for every managed image; a plan when an upgrade is due."""
    log = get_run_logger()
    if sources not in ("live", "offline"):
        raise BaseImageError(f"sources={sources!r}: use live or offline")
    settings = load_settings(Path(config_path) if config_path else None)
    wiring.checked_overrides(mirrors, pytorch_index)  # bad input fails now, not after the task's retries
    report = research(settings, sources, offline_dir, mirrors or {}, pytorch_index)
    stem = Path(out_dir) / f"annual-{report.year}"
    report.files = {"json": f"{stem}.json", "markdown": f"{stem}.md"}
    markdown = annual_markdown(report)
    write_atomic(Path(report.files["json"]), json.dumps(report.to_json(), indent=2, default=str) + "\n")
    write_atomic(Path(report.files["markdown"]), markdown)
    create_markdown_artifact(key="annual-update", markdown=markdown, description=report.outcome)
    if report.ngc_vs_cuda:
        rows = [row.to_json() for row in report.ngc_vs_cuda]
        create_table_artifact(key="ngc-vs-cuda", table=rows, description="NGC or plain CUDA")
    record_outcome(report.outcome)
    log.info("%s; report %s", report.outcome, report.files["markdown"])
    return report.to_json()
