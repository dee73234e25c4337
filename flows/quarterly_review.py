"""The quarterly review (the policy's research phase, scheduled `0 6 4 2,5,8,11 *`).

Research is done once per distinct base (the same image with the same pinned files, however
many Dockerfiles use it) and fanned back out, so the report lists every image. The run is a few
tasks sized to the work: NVIDIA's support list, the registry and PyTorch index research of every
distinct base (bounded by `registries.concurrency`; retried on transient registry errors after
the transport's own attempts), and the advisories; everything else (planning, the matrix, the
reports) is plain computation. One failing image or source is reported, not fatal. Writes
Markdown and table artifacts, ``reports/review-<date>.{md,json}`` and ``-matrix.csv``, places
the findings in the policy document, and emits ``baseimage.migration.recommended`` when due."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.futures import PrefectFuture
from prefect.runtime import task_run

import tasks.research.sources as registered
from baseimage import wiring
from baseimage.settings import load_settings
from flows.outcome import record_outcome
from tasks.deprecation import BannerCheck
from tasks.errors import BaseImageError, HttpTransientError, HttpUnreachableError, RegistryTransientError
from tasks.progress import Progress, current_progress
from tasks.registry.session import RegistrySession
from tasks.registry.snapshot import RecordingTransport
from tasks.research.assembly import Review, assemble, review_consumers
from tasks.research.facts import Facts
from tasks.research.report import findings_markdown, update_policy_doc, write_reports
from tasks.research.review import (
    ImageReview,
    Occurrence,
    ReviewSources,
    for_occurrence,
    research,
)
from tasks.research.sources import Answer, Source, SourceContext, WheelIndex
from tasks.research.sources.advisories import Advisories
from tasks.research.sources.nvidia_support import NvidiaSupport
from tasks.research.support import Later
from tasks.research.targets import occurrences_of

EVENT = "baseimage.migration.recommended"
BUNDLED_SNAPSHOT = wiring.BUNDLED_SNAPSHOT
RETRIES = 2


def _transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a source task when what failed may pass next time (429, 5xx, a cut body, a timeout);
    a host with no address or refusing connections is not tried again within the run."""
    try:
        state.result()
    except HttpUnreachableError:
        return False
    except HttpTransientError:
        return True
    except Exception:
        return False
    return False


# Every source task: retried on transient errors only, never cached (a review reads today's state).
SOURCE_TASK: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": [2, 8],
    "retry_condition_fn": _transient_only,
    "cache_policy": NO_CACHE,
}


@dataclass
class RunContext:
    """What the research of every base reads."""

    facts: Facts
    session: RegistrySession
    index: WheelIndex
    sources: ReviewSources
    concurrency: int


@task(name="source", **SOURCE_TASK)  # renamed per source
def fetch_source(source: Source, ctx: SourceContext) -> Answer:
    return source.fetch(ctx)


def _answer(source: Source, ctx: SourceContext, future: PrefectFuture[Answer]) -> Answer:
    """The source's answer, or (it failed as a whole, after its retries) its unavailable one."""
    state = future.wait() or future.state
    if state.is_completed():
        return state.result()  # type: ignore[no-any-return]
    problem = state.result(raise_on_failure=False)
    return source.unavailable(ctx, f"{type(problem).__name__}: {problem}")


def _settle(target: Future[tuple[Mapping[str, str], str]], source: Source, ctx: SourceContext, done: Any) -> None:
    try:
        answer = _answer(source, ctx, done)
        target.set_result((answer.value, answer.where))
    except BaseException as exc:  # planning says so
        target.set_exception(exc)


@task(name="research-bases", **SOURCE_TASK)
def research_bases(
    distinct: list[Occurrence], ctx: RunContext, banner: Any, progress: Progress | None = None
) -> list[ImageReview]:
    """The registry and PyTorch index research of every distinct base, in parallel (the session's
    transport bounds the requests in flight); a transient registry error fails the attempt so
    Prefect retries it (answers already fetched are memoised), and on the last attempt it stays
    an error row."""
    if not distinct:
        return []
    artifact: Any = create_progress_artifact(progress=0.0, key="review-progress", description="Bases researched")
    results: list[ImageReview | None] = [None] * len(distinct)
    workers = max(1, min(64, len(distinct), ctx.concurrency * 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(research, o, ctx.session, ctx.facts, ctx.sources, ctx.index, banner): n
            for n, o in enumerate(distinct)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            n = futures[future]
            try:
                results[n] = future.result()
            except BaseImageError as exc:  # research turns errors into rows; this is what it did not expect
                results[n] = ImageReview(distinct[n].image, distinct[n].base.file, distinct[n].base.line, None)
                results[n].errors.append(f"{type(exc).__name__}: {exc}")  # type: ignore[union-attr]
            update_progress_artifact(artifact_id=artifact, progress=100.0 * done / len(distinct))
            if progress:
                progress(done, len(distinct), f"{distinct[n].base.reference}: {results[n].status}")  # type: ignore[union-attr]
    reviews = [r for r in results if r is not None]
    transient = [r for r in reviews if r.transient]
    if transient and (task_run.run_count or 1) <= RETRIES:
        raise RegistryTransientError(
            f"{len(transient)} of {len(reviews)} bases met a transient registry error ({transient[0].errors[0]}); "
            "retrying them"
        )
    return reviews


@flow(name="quarterly-review")
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
    facts, index_url = wiring.research_sources(settings, pytorch_index)
    if osv_db is None and settings.research.osv_db is not None:
        osv_db = str(settings.path(settings.research.osv_db))
    transport, description = wiring.make_transport(
        settings, sources, Path(offline_dir) if offline_dir else None, Path(record_dir) if record_dir else None
    )
    all_mirrors = {**settings.registries.mirrors, **(mirrors or {})}
    session = wiring.registry_session(settings, transport, all_mirrors)
    targets = wiring.targets_of(settings, paths)
    rows_in_order = occurrences_of(targets)
    distinct = list({o.key: o for o in rows_in_order if isinstance(o, Occurrence)}.values())
    requirements_of = {t.name: str(t.options.requirements) for t in targets if t.options.requirements}
    stacks = {
        str(t.options.requirements): str(t.options.pyproject) if t.options.pyproject else None
        for t in targets
        if t.options.requirements
    }
    source_ctx = SourceContext(
        facts,
        transport,
        sources != "offline",
        datetime.now(UTC).date(),
        sorted(stacks.items()),
        Path(osv_db) if osv_db else None,
    )
    fetching = {s.name: (s, fetch_source.with_options(name=s.name).submit(s, source_ctx)) for s in registered.SOURCES}
    listed: Future[tuple[Mapping[str, str], str]] = Future()  # the planner waits for NVIDIA's list, nothing else
    support, support_future = fetching[NvidiaSupport.name]
    support_future.add_done_callback(lambda done: _settle(listed, support, source_ctx, done))
    ctx = RunContext(
        facts,
        session,
        wiring.wheel_index(index_url, transport),
        ReviewSources(sources, description, Later(listed), "(being fetched)"),
        settings.registries.concurrency,
    )
    log.info("sources: %s; %d Dockerfiles, %d distinct bases", description, len(targets), len(distinct))
    banner = BannerCheck(all_mirrors, pull=sources != "offline") if check_banner else None
    researched = research_bases(distinct, ctx, banner, current_progress(), return_state=True)
    if researched.is_completed():
        by_key = {o.key: r for o, r in zip(distinct, researched.result(), strict=True)}
    else:  # the source failed as a whole: every base says so
        problem = researched.result(raise_on_failure=False)
        by_key = {o.key: ImageReview(o.image, o.base.file, o.base.line, None, errors=[str(problem)]) for o in distinct}
    reviews = [for_occurrence(by_key[o.key], o) if isinstance(o, Occurrence) else o for o in rows_in_order]
    if banner is not None and banner.pulled:
        log.info("removed the images the banner check pulled: %s", ", ".join(banner.cleanup()) or "none")
    answers = [_answer(source, source_ctx, future) for source, future in fetching.values()]
    by_name = {a.source: a for a in answers}
    today = datetime.now(UTC).date().isoformat()
    review = assemble(
        reviews,
        by_name[Advisories.name].value,
        {name: str(path) for name, path in requirements_of.items()},
        "; ".join([description, *(f"{a.label}: {a.where}" for a in answers), f"PyTorch index: {ctx.index.where}"]),
        settings.fleet.min_driver,
        today,
        facts,
    )
    review.distinct_bases = len(distinct)
    review.findings += [finding for a in answers for finding in a.findings]
    if settings.consumers and not paths:  # who loads the exported model (tasks/research/consumers.py)
        from tasks.update.consumer_pins import read_consumers

        review_consumers(review, read_consumers(settings), facts, bump=settings.policy.bump_consumers)
    review.files = write_reports(Path(out_dir), review)
    create_markdown_artifact(
        key="quarterly-review", markdown=findings_markdown(review), description=f"Quarterly review {today}"
    )
    rows = review.matrix
    if rows:
        create_table_artifact(key="compatibility-matrix", table=rows, description="CUDA releases on each image's track")
    doc = settings.root / "docs" / "base-image-policy.md"
    review.warnings = []
    if update_docs and doc.exists() and not paths:
        review.policy_doc_updated, review.warnings = update_policy_doc(doc, review)
        for warning in review.warnings:
            log.warning("%s", warning)
    if review.recommended:
        targets_text = ", ".join(f"{i.reference} -> {i.target}" for i in reviews if i.recommended and i.target)
        emit_event(
            event=EVENT,
            resource={"prefect.resource.id": "baseimage.review", "date": today},
            payload={"targets": targets_text, "report": review.files["json"]},
        )
        log.warning("migration recommended: %s", targets_text or "see the report")
    if isinstance(transport, RecordingTransport):
        review.snapshot = str(transport.save())
    review.outcome = record_outcome(_outcome(reviews, review))
    if fail_on_incomplete and not review.complete:
        problems = "; ".join(e for i in reviews for e in i.errors)
        raise BaseImageError(f"the review could not complete (report {review.files['json']}): {problems}")
    return review.to_json()


def _outcome(in_order: list[ImageReview], review: Review) -> str:
    """The run's one line, naming the moves in the policy's order (the report lists urgent first)."""
    moves = [
        f"{i.image} {str(i.reference).rsplit(':', 1)[-1]} → {str(i.target).rsplit(':', 1)[-1]}"
        for i in in_order
        if i.recommended and i.target
    ]
    if moves:
        return "migration recommended: " + ", ".join(moves)
    if review.recommended:
        return "migration recommended: see the report"
    incomplete = "" if review.complete else " (incomplete: see the errors)"
    return f"no migration due: {len(in_order)} base images reviewed{incomplete}"
