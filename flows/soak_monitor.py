"""The soak monitor (24-48 h in production, seconds in tests): samples the environment's service
on a fixed schedule, persisting each slot as it is taken, so a re-run of the same window (a
retry, or a restarted worker) continues it. Slots missed while nothing was sampling are recorded
as gaps and count against the window's coverage; logs are read from the last sample's time, so
what the service printed during an outage is still seen. Aborts early on CUDA out-of-memory or
the deprecation banner; ends with a table, a chart and a verdict."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import get_run_context

from baseimage.settings import load_settings
from flows.outcome import record_outcome
from tasks.deploy.compose import project_containers
from tasks.errors import ConfigError
from tasks.monitoring.soak import Sample, SampleStore, Thresholds, Verdict, Window, chart, run_window
from tasks.monitoring.soak_report import SoakReport


def _containers(project: str, docker_host: str | None) -> list[Any]:
    try:
        from tasks.deploy.release import docker_client

        return project_containers(docker_client(docker_host), project)
    except Exception:  # no daemon reachable: the soak still samples health and metrics
        return []


RESUMES = 2  # a sample that raised (the Docker daemon went away, ...) resumes the window this often


@flow(name="soak-monitor", persist_result=True)  # its caller on another pool reads the result
def soak_monitor(
    environment: str,
    window_id: str,
    config_path: str | None = None,
    window_s: float | None = None,
    interval_s: float | None = None,
    state_dir: str = "reports/soak",
    max_samples: int | None = None,
) -> dict[str, Any]:
    """Soak `environment` for its window; `window_id` names the window so a re-run continues it."""
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    if environment not in settings.environments:
        raise ConfigError(
            f"no environment {environment!r} in {settings.source}: "
            f"one of {', '.join(sorted(settings.environments)) or 'none'}"
        )
    env = settings.environments[environment]
    window = Window(
        env.health_url,
        env.metrics_url,
        window_s if window_s is not None else env.soak_hours * 3600,
        interval_s if interval_s is not None else env.soak_interval_s,
        Thresholds(
            max_health_failures=env.max_health_failures,
            max_latency_ms=env.max_latency_ms,
            min_success_rate=env.min_success_rate,
            min_coverage=env.soak_min_coverage,
            on_low_coverage=env.soak_on_low_coverage,
        ),
        env.soak_max_extension_hours * 3600 if env.soak_max_extension_hours is not None else None,
    )
    store = SampleStore(Path(state_dir) / f"{environment}-{window_id}.jsonl")
    known = store.load()
    if known:
        log.info("continuing window %s after slot %d of %d", window_id, len(known), window.expected)
    progress: Any = create_progress_artifact(
        progress=min(100.0, 100 * len(known) / window.expected),
        key=f"soak-{environment}",
        description=f"Soak of {environment}, window {window_id}",
    )

    def on_sample(sample: Sample, verdict: Verdict) -> None:
        update_progress_artifact(artifact_id=progress, progress=min(100.0, 100 * (sample.index + 1) / window.expected))

    for attempt in range(RESUMES + 1):
        try:
            samples, verdict = run_window(
                store, window, _containers(env.project, env.docker_host), max_samples=max_samples, on_sample=on_sample
            )
            break
        except Exception as exc:  # a failed sample: resume the window, the time lost shows as a gap
            if attempt == RESUMES:
                raise
            log.warning(
                "soak of %s: sampling failed (%s: %s); resuming window %s",
                environment,
                type(exc).__name__,
                exc,
                window_id,
            )
            time.sleep(min(30.0, window.interval_s))
    run: Any = get_run_context()
    run_id = str(getattr(getattr(run, "flow_run", None), "id", "") or "")
    report = SoakReport.of(verdict, environment, window_id, window.expected, len(samples), str(store.path), run_id)
    if not verdict.status.finished:
        log.warning(
            "soak of %s stopped at slot %d/%d; run again with the same window to continue",
            environment,
            len(samples),
            window.expected,
        )
        return report.to_json()
    png = chart(samples, Path(state_dir) / f"{environment}-{window_id}.png")
    report = replace(report, chart=str(png))
    create_link_artifact(
        key=f"soak-{environment}-chart",
        link=png.resolve().as_uri(),
        link_text=f"soak chart of {environment} (PNG: latency, GPU utilisation, success rate)",
        description=f"{png} on the host that ran the soak",
    )
    create_table_artifact(
        key=f"soak-{environment}-samples",
        table=[asdict(s) for s in samples],
        description=f"Soak of {environment}: {verdict.status}",
    )
    create_markdown_artifact(
        key=f"soak-{environment}-report",
        markdown=(
            f"# Soak of {environment}: {verdict.status}\n\n"
            + "\n".join(f"- {r}" for r in verdict.reasons)
            + f"\n\n{verdict.taken} samples in {len(samples)} slots of {window.expected} "
            f"({verdict.coverage:.0%} coverage), every {window.interval_s:g} s; chart: `{png}`\n"
        ),
    )
    record_outcome(f"soak of {environment} {verdict.status}: {'; '.join(verdict.reasons)}")
    log.info("soak of %s: %s (%s)", environment, verdict.status, "; ".join(verdict.reasons))
    return report.to_json()
