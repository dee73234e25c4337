"""The soak monitor (24-48 h in production, seconds in tests): samples the environment's service
every interval, persisting each sample as it is taken, so a re-run of the same window continues
where the last one stopped without losing or repeating a sample. Aborts early on CUDA
out-of-memory or the deprecation banner; ends with a table, a chart and a verdict."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from baseimage.settings import load_settings
from flows.outcome import record_outcome
from tasks.deploy.compose import project_containers
from tasks.errors import ConfigError
from tasks.monitoring.soak import SampleStore, Thresholds, chart, evaluate, take_sample


def _containers(project: str, docker_host: str | None) -> list[Any]:
    try:
        from tasks.deploy.release import docker_client

        return project_containers(docker_client(docker_host), project)
    except Exception:  # no daemon reachable: the soak still samples health and metrics
        return []


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
    window = window_s if window_s is not None else env.soak_hours * 3600
    interval = interval_s if interval_s is not None else env.soak_interval_s
    expected = max(1, round(window / interval))
    store = SampleStore(Path(state_dir) / f"{environment}-{window_id}.jsonl")
    samples = store.load()
    start = datetime.fromisoformat(samples[0].at).timestamp() if samples else time.time()
    if samples:
        log.info("continuing window %s at sample %d of %d", window_id, len(samples) + 1, expected)
    progress: Any = create_progress_artifact(
        progress=100 * len(samples) / expected,
        key=f"soak-{environment}",
        description=f"Soak of {environment}, window {window_id}",
    )
    containers = _containers(env.project, env.docker_host)
    thresholds = Thresholds(max_health_failures=env.max_health_failures, min_success_rate=env.min_success_rate)
    verdict = evaluate(samples, expected, thresholds)
    first = len(samples)
    for index in range(first, expected):
        if verdict.status in ("failed", "aborted") or (max_samples is not None and index - first >= max_samples):
            break
        due = start + index * interval
        time.sleep(max(0.0, due - time.time()))
        since = int(time.time() - interval) - 1 if index else None
        sample = take_sample(index, env.health_url, env.metrics_url, containers, since)
        store.append(sample)
        samples.append(sample)
        update_progress_artifact(artifact_id=progress, progress=100 * len(samples) / expected)
        verdict = evaluate(samples, expected, thresholds)
    result: dict[str, Any] = {
        "environment": environment,
        "window": window_id,
        "expected": expected,
        "samples": len(samples),
        "status": verdict.status,
        "reasons": verdict.reasons,
        "store": str(store.path),
    }
    if verdict.status == "running":
        log.warning(
            "soak of %s stopped at %d/%d samples; run again with the same window to continue",
            environment,
            len(samples),
            expected,
        )
        return result
    png = chart(samples, Path(state_dir) / f"{environment}-{window_id}.png")
    result["chart"] = str(png)
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
            + f"\n\n{len(samples)} of {expected} samples, every {interval:g} s; chart: `{png}`\n"
        ),
    )
    record_outcome(f"soak of {environment} {verdict.status}: {'; '.join(verdict.reasons)}")
    log.info("soak of %s: %s (%s)", environment, verdict.status, "; ".join(verdict.reasons))
    return result
