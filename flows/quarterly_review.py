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

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
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
from prefect.runtime import task_run

from baseimage import wiring
from baseimage.settings import Settings, load_settings
from flows.outcome import record_outcome
from tasks.containers import LABEL, through_mirror
from tasks.deprecation import find_deprecation_banner
from tasks.errors import BaseImageError, RegistryTransientError, RegistryUnreachableError
from tasks.progress import Progress, current_progress
from tasks.registry.http import HttpTransport
from tasks.registry.session import RegistrySession
from tasks.registry.snapshot import RecordingTransport
from tasks.research import osv
from tasks.research.facts import Facts
from tasks.research.pytorch_index import PyTorchIndex
from tasks.research.report import assemble, findings_markdown, update_policy_doc, write_reports
from tasks.research.review import (
    ImageReview,
    Occurrence,
    ReviewOptions,
    ReviewSources,
    dockerfile_occurrences,
    for_occurrence,
    research,
    unsupported_or_bundled,
)

EVENT = "baseimage.migration.recommended"
BUNDLED_SNAPSHOT = wiring.BUNDLED_SNAPSHOT
RETRIES = 2


def _transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a source task when what failed may pass next time (429, 5xx, a cut body, a timeout);
    a registry with no address or refusing connections is not tried again within the run."""
    try:
        state.result()
    except RegistryUnreachableError:
        return False
    except RegistryTransientError:
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
    settings: Settings
    facts: Facts
    session: RegistrySession
    index: PyTorchIndex
    sources: ReviewSources
    transport: HttpTransport
    osv_db: Path | None
    live_osv: bool


@dataclass(frozen=True)
class Target:
    """A Dockerfile to review and the settings of the image it belongs to."""

    name: str
    path: Path
    label: str
    build_args: dict[str, str]
    options: ReviewOptions
    managed: bool


@task(name="unsupported-releases", **SOURCE_TASK)
def fetch_unsupported(facts: Facts, transport: HttpTransport, live: bool) -> tuple[dict[str, str], str]:
    return unsupported_or_bundled(facts, transport if live else None)


class Later(Mapping[str, str]):
    """NVIDIA's unsupported list while it is still being fetched: the registry research starts at
    once and only the planning, which reads it, waits for it."""

    def __init__(self, future: Future[tuple[dict[str, str], str]]) -> None:
        self._future = future

    def _value(self) -> dict[str, str]:
        return self._future.result()[0]

    def __getitem__(self, key: str) -> str:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())


class BannerCheck:
    """Runs each base image once without a GPU and with no network to read NVIDIA's start-up
    banner; images it had to pull are removed again afterwards (see `cleanup`)."""

    def __init__(self, mirrors: dict[str, str]) -> None:
        self.mirrors = mirrors
        self.pulled: list[str] = []
        self._lock = threading.Lock()
        try:
            import docker

            self.client: Any = docker.from_env(timeout=120)
            self.client.ping()
            self.unavailable: str | None = None
        except Exception as exc:  # no daemon here: the banner check is reported as not run
            self.client, self.unavailable = None, f"not checked: no Docker daemon ({type(exc).__name__})"

    def __call__(self, ref: str) -> tuple[list[str] | None, str]:
        if self.unavailable:
            return None, self.unavailable
        import docker.errors

        pull = through_mirror(ref, self.mirrors) or ref
        try:
            try:
                self.client.images.get(pull)
            except docker.errors.ImageNotFound:
                self.client.images.pull(pull)
                with self._lock:
                    self.pulled.append(pull)
            # The banner is printed by the entrypoint at start: the image needs no network to show it.
            container = self.client.containers.run(
                pull, ["true"], detach=True, network_mode="none", labels={LABEL: "review-banner"}
            )
            try:
                container.wait(timeout=120)
                log = container.logs().decode(errors="replace")
            finally:
                container.remove(force=True)
        except Exception as exc:  # a pull or run failure is evidence too, not a crash
            return None, f"not checked: {type(exc).__name__}: {exc}"
        return find_deprecation_banner(log), f"ran {pull} without a GPU or network"

    def cleanup(self) -> list[str]:
        """Remove the images this review pulled (those that were on the host before stay)."""
        import docker.errors

        removed = []
        for image in self.pulled:
            with contextlib.suppress(docker.errors.APIError):  # in use elsewhere now: it stays
                self.client.images.remove(image)
                removed.append(image)
        return removed


def targets_of(settings: Settings, paths: Sequence[str] | None) -> list[Target]:
    if paths:
        from tasks.scan import discover

        defaults = ReviewOptions(
            python="3.11",
            fleet_min_driver=settings.fleet.min_driver,
            allow_major=settings.policy.allow_major_upgrade,
            pin_minor=None,
            allow_missing=frozenset(settings.policy.allow_missing),
        )
        return [Target(str(p), p, str(p), {}, defaults, False) for p in discover([Path(x) for x in paths])]
    out = []
    for image in settings.images:
        options = ReviewOptions(
            python=image.python,
            fleet_min_driver=settings.fleet.min_driver,
            allow_major=settings.policy.allow_major_upgrade,
            pin_minor=image.pin_minor,
            allow_missing=frozenset(settings.policy.allow_missing),
            requirements=settings.path(image.requirements) if image.requirements else None,
            requirements_label=str(image.requirements) if image.requirements else None,
        )
        path = settings.path(image.dockerfile)
        out.append(Target(image.name, path, str(image.dockerfile), dict(image.build_args), options, True))
    return out


def occurrences_of(targets: Sequence[Target]) -> list[ImageReview | Occurrence]:
    """In the targets' order, every FROM to research, and the error row of each that cannot be
    (each Dockerfile read once)."""
    rows: list[ImageReview | Occurrence] = []
    for t in targets:
        bad, ok = dockerfile_occurrences(t.name, t.path, t.label, t.build_args, t.options, managed=t.managed)
        rows += [*bad, *ok]
    return rows


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
    workers = max(1, min(64, len(distinct), ctx.settings.registries.concurrency * 4))
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


@task(name="advisories", **SOURCE_TASK)
def advisories(requirements: list[str], ctx: RunContext) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Advisories per requirements file (the pins of each, looked up once together). A file that
    cannot be read is skipped here; the image's own row says why."""
    pins_of: dict[str, list[osv.Pin]] = {}
    for path in requirements:
        try:
            pins_of[path] = osv.parse_pins(Path(path).read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
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


def _settle(target: Future[tuple[dict[str, str], str]], done: Any) -> None:
    try:
        target.set_result(done.result())
    except BaseException as exc:  # the support task failed as a whole: planning says so
        target.set_exception(exc)


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
    support = fetch_unsupported.submit(facts, transport, sources != "offline")
    listed: Future[tuple[dict[str, str], str]] = Future()
    support.add_done_callback(lambda done: _settle(listed, done))
    targets = targets_of(settings, paths)
    rows_in_order = occurrences_of(targets)
    distinct = list({o.key: o for o in rows_in_order if isinstance(o, Occurrence)}.values())
    requirements_of = {t.name: str(t.options.requirements) for t in targets if t.options.requirements}
    ctx = RunContext(
        settings,
        facts,
        session,
        PyTorchIndex(index_url, transport),
        ReviewSources(sources, description, Later(listed), "(being fetched)"),
        transport,
        Path(osv_db) if osv_db else None,
        sources != "offline",
    )
    log.info("sources: %s; %d Dockerfiles, %d distinct bases", description, len(targets), len(distinct))
    banner = BannerCheck(all_mirrors) if check_banner else None
    advisory_future = advisories.submit(sorted(set(requirements_of.values())), ctx)
    researched = research_bases(distinct, ctx, banner, current_progress(), return_state=True)
    if researched.is_completed():
        by_key = {o.key: r for o, r in zip(distinct, researched.result(), strict=True)}
    else:  # the source failed as a whole: every base says so
        problem = researched.result(raise_on_failure=False)
        by_key = {o.key: ImageReview(o.image, o.base.file, o.base.line, None, errors=[str(problem)]) for o in distinct}
    reviews = [for_occurrence(by_key[o.key], o) if isinstance(o, Occurrence) else o for o in rows_in_order]
    if banner is not None and banner.pulled:
        log.info("removed the images the banner check pulled: %s", ", ".join(banner.cleanup()) or "none")
    images = [r.to_json() for r in reviews]
    by_file, advisory_source = advisory_future.result()
    _unsupported, from_where = support.result()
    today = datetime.now(UTC).date().isoformat()
    report, rows = assemble(
        images,
        by_file,
        {name: str(path) for name, path in requirements_of.items()},
        f"{description}; NVIDIA support: {from_where}; advisories: {advisory_source}",
        settings.fleet.min_driver,
        today,
        facts,
    )
    report["distinct_bases"] = len(distinct)
    if settings.consumers and not paths:  # who loads the exported model (tasks/research/consumers.py)
        from tasks.research.consumers import review_consumers
        from tasks.update.consumer_pins import read_consumers

        report = review_consumers(report, read_consumers(settings), facts, bump=settings.policy.bump_consumers)
    report["files"] = write_reports(Path(out_dir), report, rows)
    create_markdown_artifact(
        key="quarterly-review", markdown=findings_markdown(report), description=f"Quarterly review {today}"
    )
    if rows:
        create_table_artifact(key="compatibility-matrix", table=rows, description="CUDA releases on each image's track")
    doc = settings.root / "docs" / "base-image-policy.md"
    report["warnings"] = []
    if update_docs and doc.exists() and not paths:
        report["policy_doc_updated"], report["warnings"] = update_policy_doc(doc, report)
        for warning in report["warnings"]:
            log.warning("%s", warning)
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
        problems = "; ".join(e for i in images for e in i["errors"])
        raise BaseImageError(f"the review could not complete (report {report['files']['json']}): {problems}")
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
