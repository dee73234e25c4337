"""The quarterly review (the policy's research phase, scheduled `0 6 4 2,5,8,11 *`): every managed
image reviewed in parallel (bounded), each source a task retried on transient errors only; one
failing image or source is reported, not fatal. Writes Markdown and table artifacts,
``reports/review-<date>.{md,json}`` and ``-matrix.csv``, regenerates the policy document's
findings and matrix sections, and emits ``baseimage.migration.recommended`` when due."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.task_runners import ThreadPoolTaskRunner

from baseimage.settings import Settings, load_settings
from baseimage.wiring import registry_session
from flows.outcome import record_outcome
from tasks.containers import LABEL
from tasks.deprecation import find_deprecation_banner
from tasks.errors import BaseImageError, RegistryTransientError
from tasks.registry.http import HttpTransport, RetryPolicy
from tasks.registry.session import RegistrySession
from tasks.registry.snapshot import RecordingTransport, ReplayTransport
from tasks.research import osv
from tasks.research.facts import Facts, load_facts
from tasks.research.pytorch_index import PyTorchIndex
from tasks.research.report import assemble, findings_markdown, update_policy_doc, write_reports
from tasks.research.review import (
    ImageReview,
    ReviewOptions,
    ReviewSources,
    review_dockerfile,
    unsupported_releases,
)

EVENT = "baseimage.migration.recommended"
BUNDLED_SNAPSHOT = Path(__file__).resolve().parent.parent / "config" / "data" / "snapshot"
# Set by the command line to draw a progress bar; called with (image, status) as images finish.
progress_hook: Callable[[str, str], None] | None = None


def _transient_only(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except RegistryTransientError:
        return True
    except Exception:
        return False
    return False


# Every source task: retried on transient errors only, never cached (a review reads today's state).
SOURCE_TASK: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [1, 4],
    "retry_condition_fn": _transient_only,
    "cache_policy": NO_CACHE,
}


@dataclass
class RunContext:
    settings: Settings
    facts: Facts
    session: RegistrySession
    index: PyTorchIndex
    sources: ReviewSources
    transport: HttpTransport
    osv_db: Path | None
    live_osv: bool


def research_sources(settings: Settings, pytorch_index: str | None) -> tuple[Facts, str]:
    """The bundled facts with NVIDIA's support URL from `research:` when set, and the PyTorch index
    to read: the one given, else `research.pytorch_index`, else the public one."""
    facts = load_facts()
    if settings.research.nvidia_support_url:
        facts = replace(facts, support_live_url=settings.research.nvidia_support_url)
    return facts, pytorch_index or settings.research.pytorch_index or facts.pytorch_index_url


def make_transport(
    settings: Settings, sources: str, offline_dir: Path | None, record_dir: Path | None
) -> tuple[HttpTransport, str]:
    reg = settings.registries
    common: dict[str, Any] = {
        "timeout": (min(5.0, reg.timeout_s), reg.timeout_s),
        "max_concurrency": reg.concurrency,
    }
    if sources == "offline":
        directory = offline_dir or BUNDLED_SNAPSHOT
        replay = ReplayTransport(directory, retry=RetryPolicy(attempts=1), **common)
        return (
            replay,
            f"offline snapshot {directory} (recorded {replay.recorded}{'; ' + replay.note if replay.note else ''})",
        )
    if record_dir is not None:
        return RecordingTransport(
            record_dir, retry=RetryPolicy(attempts=reg.attempts), **common
        ), f"live, recorded to {record_dir}"
    return HttpTransport(retry=RetryPolicy(attempts=reg.attempts), **common), "live"


@task(name="unsupported-releases", **SOURCE_TASK)
def fetch_unsupported(facts: Facts, transport: HttpTransport, live: bool) -> tuple[dict[str, str], str]:
    try:
        return unsupported_releases(facts, transport if live else None)
    except BaseImageError as exc:
        get_run_logger().warning("NVIDIA support manifest unavailable (%s): using the bundled table", exc)
        return unsupported_releases(facts, None)


def _banner_check(settings: Settings, mirrors: dict[str, str]) -> Callable[[str], tuple[list[str] | None, str]] | None:
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # no daemon here: the banner check is reported as not run
        reason = f"not checked: no Docker daemon ({type(exc).__name__})"
        return lambda ref: (None, reason)

    def check(ref: str) -> tuple[list[str] | None, str]:
        from tasks.images.reference import parse_reference

        parsed = parse_reference(ref)
        pull = ref
        if parsed.registry in mirrors:
            pull = f"{urlsplit(mirrors[parsed.registry]).netloc}/{parsed.repository}:{parsed.tag}"
        try:
            client.images.pull(pull)
            # The banner is printed by the entrypoint at start: the image needs no network to show it.
            container = client.containers.run(
                pull, ["true"], detach=True, network_mode="none", labels={LABEL: "review-banner"}
            )
            try:
                container.wait(timeout=120)
                log = container.logs().decode(errors="replace")
            finally:
                container.remove(force=True)
        except Exception as exc:  # a pull or run failure is evidence too, not a crash
            return None, f"not checked: {type(exc).__name__}: {exc}"
        return find_deprecation_banner(log), f"ran {pull} without a GPU"

    return check


@task(name="review-image", **SOURCE_TASK)
def review_image(
    name: str,
    path: str,
    label: str,
    build_args: dict[str, str],
    ctx: RunContext,
    python: str,
    pin_minor: str | None,
    banner: Any,
) -> list[ImageReview]:
    settings = ctx.settings
    image = next((i for i in settings.images if i.name == name), None)
    managed = image is not None and str(settings.path(image.dockerfile)) == path
    requirements = image.requirements if managed and image is not None else None
    options = ReviewOptions(
        python=python,
        fleet_min_driver=settings.fleet.min_driver,
        allow_major=settings.policy.allow_major_upgrade,
        pin_minor=pin_minor,
        allow_missing=frozenset(settings.policy.allow_missing),
        requirements=settings.path(requirements) if requirements else None,
        requirements_label=str(requirements) if requirements else None,
    )
    reviews = review_dockerfile(
        name,
        Path(path),
        label,
        build_args,
        ctx.session,
        ctx.facts,
        ctx.sources,
        ctx.index,
        options,
        managed=managed,
        banner=banner,
    )
    if progress_hook:
        progress_hook(name, ", ".join(r.status for r in reviews) or "no CUDA/NGC base")
    return reviews


@task(name="advisories", **SOURCE_TASK)
def advisories(requirements: list[str], ctx: RunContext) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Advisories per requirements file (the pins of each, looked up once together)."""
    pins_of = {path: osv.parse_pins(Path(path).read_text(encoding="utf-8")) for path in requirements}
    unique = list({(p.name, p.version): p for pins in pins_of.values() for p in pins}.values())
    if ctx.osv_db is not None:
        found, where = osv.offline_advisories(unique, ctx.osv_db), f"OSV records in {ctx.osv_db}"
    elif not ctx.live_osv:
        return {}, "not checked: no --osv-db and OSV is not reachable offline"
    else:
        try:
            found, where = osv.live_advisories(unique, ctx.transport), "OSV live (api.osv.dev)"
        except BaseImageError as exc:
            return {}, f"not checked: OSV unreachable ({exc}); pass --osv-db DIR"
    by_file = {
        path: [a.__dict__ for a in found if osv.Pin(a.package, a.version) in pins] for path, pins in pins_of.items()
    }
    return by_file, where


@flow(name="quarterly-review", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]
def quarterly_review(
    paths: list[str] | None = None,
    config_path: str | None = None,
    sources: str = "live",
    offline_dir: str | None = None,
    mirrors: dict[str, str] | None = None,
    pytorch_index: str | None = None,
    osv_db: str | None = None,
    fleet_min_driver: int | None = None,
    out_dir: str = "reports",
    check_banner: bool = True,
    update_docs: bool = True,
    record_dir: str | None = None,
    fail_on_incomplete: bool = False,
) -> dict[str, Any]:
    """Review every managed image; returns the report (its ``recommended`` says whether to migrate)."""
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    if fleet_min_driver is not None:
        settings = settings.model_copy(
            update={"fleet": settings.fleet.model_copy(update={"min_driver": fleet_min_driver})}
        )
    facts, index_url = research_sources(settings, pytorch_index)
    if osv_db is None and settings.research.osv_db is not None:
        osv_db = str(settings.path(settings.research.osv_db))
    transport, description = make_transport(
        settings,
        sources,
        Path(offline_dir) if offline_dir else None,
        Path(record_dir) if record_dir else None,
    )
    all_mirrors = {**settings.registries.mirrors, **(mirrors or {})}
    session = registry_session(settings, transport, all_mirrors)
    unsupported, from_where = fetch_unsupported(facts, transport, sources != "offline")
    ctx = RunContext(
        settings,
        facts,
        session,
        PyTorchIndex(index_url, transport),
        ReviewSources(sources, description, unsupported, from_where),
        transport,
        Path(osv_db) if osv_db else None,
        sources != "offline",
    )
    log.info("sources: %s; NVIDIA support list: %s", description, from_where)
    banner = _banner_check(settings, all_mirrors) if check_banner else None

    targets = [
        (i.name, str(settings.path(i.dockerfile)), str(i.dockerfile), i.build_args, i.python, i.pin_minor)
        for i in settings.images
    ]
    requirements_of = {i.name: str(settings.path(i.requirements)) if i.requirements else None for i in settings.images}
    if paths:
        from tasks.scan import discover

        found_files = discover([Path(x) for x in paths])
        targets = [(str(p), str(p), str(p), {}, "3.11", None) for p in found_files]
        requirements_of = {}
    futures = [
        review_image.submit(name, path, label, args, ctx, python, pin, banner)
        for name, path, label, args, python, pin in targets
    ]
    advisory_future = advisories.submit(sorted({r for r in requirements_of.values() if r}), ctx)
    images: list[dict[str, Any]] = []
    for (name, _path, label, *_), future in zip(targets, futures, strict=True):
        future.wait()
        if future.state.is_completed():
            images.extend(r.to_json() for r in future.result())
        else:
            error = future.state.result(raise_on_failure=False)
            failed = ImageReview(name, label, 0, None, errors=[f"{type(error).__name__}: {error}"])
            images.append(failed.to_json())
    by_file, advisory_source = advisory_future.result()
    today = datetime.now(UTC).date().isoformat()
    report, frame = assemble(
        images,
        by_file,
        requirements_of,
        f"{description}; NVIDIA support: {from_where}; advisories: {advisory_source}",
        settings.fleet.min_driver,
        today,
    )
    if settings.consumers and not paths:  # who loads the exported model (tasks/research/consumers.py)
        from tasks.research.consumers import review_consumers
        from tasks.update.consumer_pins import read_consumers

        report = review_consumers(report, read_consumers(settings), facts, bump=settings.policy.bump_consumers)
    report["files"] = write_reports(Path(out_dir), report, frame)
    create_markdown_artifact(
        key="quarterly-review", markdown=findings_markdown(report), description=f"Quarterly review {today}"
    )
    if report["matrix"]:
        create_table_artifact(
            key="compatibility-matrix", table=report["matrix"], description="CUDA releases on each image's track"
        )
    doc = settings.root / "docs" / "base-image-policy.md"
    if update_docs and doc.exists() and not paths:
        report["policy_doc_updated"] = update_policy_doc(doc, report, frame)
    if report["recommended"]:
        targets_text = ", ".join(f"{i['current']} -> {i['target']}" for i in images if i["recommended"] and i["target"])
        emit_event(
            event=EVENT,
            resource={"prefect.resource.id": "baseimage.review", "date": today},
            payload={"targets": targets_text, "report": report["files"]["json"]},
        )
        log.warning("migration recommended: %s", targets_text or "see the report")
    if isinstance(transport, RecordingTransport):
        report["snapshot"] = str(transport.save())
    report["outcome"] = record_outcome(_outcome(images, report))
    if fail_on_incomplete and not report["complete"]:
        errors = "; ".join(e for i in images for e in i["errors"])
        raise BaseImageError(f"the review could not complete (report {report['files']['json']}): {errors}")
    return report


def _outcome(images: list[dict[str, Any]], report: dict[str, Any]) -> str:
    moves = [
        f"{i['image']} {str(i['current']).rsplit(':', 1)[-1]} → {str(i['target']).rsplit(':', 1)[-1]}"
        for i in images
        if i.get("recommended") and i.get("target")
    ]
    if moves:
        return "migration recommended: " + ", ".join(moves)
    if report["recommended"]:
        return "migration recommended: see the report"
    incomplete = "" if report["complete"] else " (incomplete: see the errors)"
    return f"no migration due: {len(images)} base images reviewed{incomplete}"
