"""The testing phase as a flow: build the candidate, detect the GPU, start the service, check
health, run the sample training job, verify the ONNX model, check GPU utilisation and the
start-up logs; always tear down. Each check is a task with its own state; GPU checks on a
host without an NVIDIA runtime end "skipped: no GPU" unless the policy requires a GPU."""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.objects import State
from prefect.context import get_run_context
from prefect.states import Completed, Failed

from baseimage.settings import Settings, load_settings
from flows.outcome import record_outcome
from tasks import containers
from tasks.deprecation import find_deprecation_banner
from tasks.errors import BaseImageError, GpuUnavailableError
from tasks.files import write_atomic
from tasks.validation import (
    SKIPPED_NO_GPU,
    CheckResult,
    ValidationReport,
    gpu_utilization,
    logs_of,
    parse_nvidia_smi,
    run_training,
    verify_model,
    wait_healthy,
)


class ValidationFailedError(BaseImageError):
    """At least one validation check failed; the message lists them."""


def _docker() -> Any:
    import docker

    return docker.from_env(timeout=120)


def _labels(run_label: str) -> dict[str, str]:
    return {containers.LABEL: run_label}


def _skipped(name: str, reason: str) -> State:
    return Completed(
        name="Skipped",
        message=f"{SKIPPED_NO_GPU} ({reason})",
        data=CheckResult(name, "skipped", f"{SKIPPED_NO_GPU}: {reason}"),
    )


@task(name="build-candidate")
def build_candidate(
    context: str,
    dockerfile: str,
    tag: str,
    run_label: str,
    buildargs: dict[str, str],
    mirrors: dict[str, str] | None = None,
) -> CheckResult:
    log = get_run_logger()
    client = _docker()
    for base in containers.build_bases(Path(context) / dockerfile, buildargs):
        log.info("base %s", containers.ensure_local(client, base, mirrors or {}))
    built = containers.build_image(
        client,
        Path(context),
        dockerfile,
        tag,
        _labels(run_label),
        buildargs,
        on_line=lambda line: log.info("build | %s", line),
    )
    return CheckResult(
        "build",
        "passed",
        f"built {tag} ({built.image_id[:19]}) in {built.seconds:.1f} s",
        {"image_id": built.image_id, "tag": tag},
        built.seconds,
    )


@task(name="detect-gpu")
def detect_gpu(image: str, run_label: str, require_gpu: bool) -> CheckResult | State:
    client = _docker()
    try:
        container = containers.run_container(
            client,
            image,
            f"bi-smi-{run_label[:12]}",
            _labels(run_label),
            command=["nvidia-smi"],
            gpu=True,
        )
    except GpuUnavailableError as exc:
        if require_gpu:
            raise GpuUnavailableError(f"policy require_gpu is true and {exc}") from exc
        return _skipped("gpu-detect", "no NVIDIA container runtime on this Docker host")
    status = container.wait(timeout=120)["StatusCode"]
    output = container.logs().decode(errors="replace")
    container.remove(force=True)
    report = parse_nvidia_smi(output)
    if status != 0 or not report.gpus:
        raise GpuUnavailableError(f"nvidia-smi in {image} exited {status} and listed no GPU")
    return CheckResult(
        "gpu-detect",
        "passed",
        f"{', '.join(report.gpus)}; driver {report.driver_version}, CUDA {report.cuda_version}",
        asdict(report),
    )


@task(name="start-service")
def start_service(
    image: str, settings: Settings, run_label: str, gpu: bool, environment: dict[str, str] | None = None
) -> list[str]:
    client = _docker()
    validation = settings.validation
    env = {"BASEIMAGE_MODELS_DIR": "/models", **(environment or {})}
    volume = client.volumes.create(f"bi-models-{run_label[:12]}", labels=_labels(run_label))
    volumes = {volume.name: {"bind": "/models", "mode": "rw"}}
    ids = []
    if validation.redis_image:
        env["BASEIMAGE_REDIS_URL"] = f"redis://127.0.0.1:{validation.redis_port}/0"
        get_run_logger().info(
            "broker %s", containers.ensure_local(client, validation.redis_image, settings.registries.mirrors)
        )
        redis = containers.run_container(
            client,
            validation.redis_image,
            f"bi-redis-{run_label[:12]}",
            _labels(run_label),
            command=[
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(validation.redis_port),
                "--save",
                "",
            ],
        )
        ids.append(redis.id)
    for spec in validation.containers:
        container = containers.run_container(
            client,
            image,
            f"bi-{spec.name}-{run_label[:12]}",
            _labels(run_label),
            command=spec.command,
            environment=env,
            gpu=spec.gpu and gpu,
            volumes=volumes,
            restart_retries=3,
        )
        ids.append(container.id)
    return ids


def _containers(ids: list[str]) -> list[Any]:
    client = _docker()
    return [client.containers.get(i) for i in ids]


@task(name="service-health")
def service_health(base_url: str, ids: list[str], deadline_s: float) -> CheckResult:
    body = wait_healthy(base_url, deadline_s, _containers(ids))
    versions = {k: body.get(k) for k in ("torch", "cuda", "cudnn", "cupy", "onnxruntime", "gpu_usable")}
    return CheckResult("health", "passed", f"{base_url}/health ok: {versions}", body)


@task(name="startup-logs")
def startup_logs(ids: list[str]) -> CheckResult:
    banner = find_deprecation_banner(logs_of(_containers(ids)))
    if banner:
        return CheckResult(
            "startup-logs",
            "failed",
            "deprecation banner in start-up logs: " + " / ".join(banner),
            {"banner": banner},
        )
    return CheckResult("startup-logs", "passed", "no deprecation banner in start-up logs")


@task(name="sample-training")
def sample_training(base_url: str, ids: list[str], steps: int, timeout_s: float) -> CheckResult:
    job = run_training(base_url, steps, timeout_s, _containers(ids))
    result = job.get("result") or {}
    training = result.get("training") or {}
    first, last = training.get("loss_first", float("nan")), training.get("loss_last", float("nan"))
    message = f"job {job['job_id']}: device {result.get('device')}, loss {first:.3f} -> {last:.3f}"
    return CheckResult("training", "passed", message, job)


@task(name="verify-onnx")
def verify_onnx(base_url: str, job: dict[str, Any]) -> CheckResult:
    with tempfile.TemporaryDirectory() as tmp:
        data = verify_model(base_url, job, Path(tmp) / "model.onnx")
    return CheckResult(
        "onnx",
        "passed",
        f"model valid ({data['bytes']} bytes), ORT ran it: {data['output_shapes']}",
        data,
    )


@task(name="consumer-onnx")
def consumer_onnx(base_url: str, job: dict[str, Any], settings: Settings, context: str) -> list[CheckResult]:
    """The job's model loaded in each consumer's ONNX Runtime version (its pin as the validated tree
    has it), in a cached virtual environment with that version: one result per consumer, naming the
    consumer and the version checked; a version that cannot be installed here is skipped."""
    from baseimage.settings import cache_dir
    from tasks.consumer_check import check_consumers
    from tasks.update.consumer_pins import read_consumers

    consumers = read_consumers(settings, Path(context))
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        verify_model(base_url, job, model)
        reference = ((job.get("result") or {}).get("onnx") or {}).get("reference")
        found = check_consumers(model, reference, [(c.name, c.version) for c in consumers], cache_dir() / "onnxruntime")
    return [CheckResult(f"consumer:{r.consumer}", r.status, r.message, r.to_json(), r.seconds) for r in found]


@task(name="gpu-utilization")
def check_gpu_utilization(job: dict[str, Any], threshold: float) -> CheckResult:
    result = gpu_utilization(job, threshold)
    if result.status == "failed":
        raise ValidationFailedError(result.message)
    return result


@task(name="teardown")
def teardown(run_label: str, remove_images: bool) -> list[str]:
    removed = containers.teardown(_docker(), run_label, remove_images)
    get_run_logger().info("removed %s", ", ".join(removed) or "nothing")
    return removed


def _consumer_checks(state: State) -> list[CheckResult]:
    """The consumer checks' results, or one failed result when the task itself failed."""
    if state.is_completed():
        return list(state.result())
    error = state.result(raise_on_failure=False)
    return [CheckResult("consumers", "failed", f"{type(error).__name__}: {error}")]


def _outcome(name: str, state: State) -> CheckResult:
    """A task's state as a check result: its return value, or the failure it raised."""
    if state.is_completed():
        value = state.result()
        return value if isinstance(value, CheckResult) else CheckResult(name, "passed", str(value))
    error = state.result(raise_on_failure=False)
    return CheckResult(name, "failed", f"{type(error).__name__}: {error}")


@flow(name="validate", persist_result=True)  # a migrate run on another pool reads the summary
def validate(
    context: str = ".",
    dockerfile: str = "dockerfiles/training/Dockerfile",
    buildargs: dict[str, str] | None = None,
    config_path: str | None = None,
    require_gpu: bool | None = None,
    out_dir: str = "reports",
    keep_image: bool = False,
    ref: str | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any] | State[Any]:
    """Validate a candidate image; returns the summary, passed / failed / skipped checks named (the
    run ends Failed, with the same summary, if any check failed). With `ref` (a branch or commit of
    the git repository at `context`), builds that revision. `environment`: variables the service
    runs with (a migration's BASEIMAGE_ONNX_OPSET)."""
    if ref:
        from tasks.update import git

        with git.worktree(Path(context), ref) as tree:
            return _validate(
                str(tree), dockerfile, buildargs, config_path, require_gpu, out_dir, keep_image, environment
            )
    return _validate(context, dockerfile, buildargs, config_path, require_gpu, out_dir, keep_image, environment)


def _validate(
    context: str,
    dockerfile: str,
    buildargs: dict[str, str] | None,
    config_path: str | None,
    require_gpu: bool | None,
    out_dir: str,
    keep_image: bool,
    environment: dict[str, str] | None = None,
) -> dict[str, Any] | State[Any]:
    settings = load_settings(Path(config_path) if config_path else None)
    require = settings.policy.require_gpu if require_gpu is None else require_gpu
    ctx = get_run_context()
    run_label = str(getattr(getattr(ctx, "flow_run", None), "id", None) or uuid.uuid4())
    tag = f"baseimage-candidate:{run_label[:12]}"
    base_url = settings.validation.base_url
    checks: list[CheckResult] = []

    def step(name: str, state: State) -> CheckResult:
        outcome = _outcome(name, state)
        checks.append(outcome)
        return outcome

    try:
        if (
            step(
                "build",
                build_candidate(
                    context, dockerfile, tag, run_label, buildargs or {}, settings.registries.mirrors, return_state=True
                ),
            ).status
            == "passed"
        ):
            gpu = step("gpu-detect", detect_gpu(tag, run_label, require, return_state=True))
            has_gpu = gpu.status == "passed"
            started = start_service(tag, settings, run_label, has_gpu, environment, return_state=True)
            if started.is_completed():
                ids = started.result()
                health = step(
                    "health",
                    service_health(base_url, ids, settings.validation.health_timeout_s, return_state=True),
                )
                step("startup-logs", startup_logs(ids, return_state=True))
                if health.status == "passed":
                    training = step(
                        "training",
                        sample_training(
                            base_url,
                            ids,
                            settings.validation.train_steps,
                            settings.validation.train_timeout_s,
                            return_state=True,
                        ),
                    )
                    if training.status == "passed":
                        step("onnx", verify_onnx(base_url, training.data, return_state=True))
                        if settings.consumers:
                            checks.extend(
                                _consumer_checks(
                                    consumer_onnx(base_url, training.data, settings, context, return_state=True)
                                )
                            )
                        if has_gpu:
                            step(
                                "gpu-utilization",
                                check_gpu_utilization(
                                    training.data,
                                    settings.policy.gpu_utilization_min_percent,
                                    return_state=True,
                                ),
                            )
                        else:
                            checks.append(CheckResult("gpu-utilization", "skipped", f"{SKIPPED_NO_GPU}"))
            else:
                step("start-service", started)
    finally:
        teardown(run_label, not keep_image)
    return _report(checks, tag, Path(out_dir), run_label)


def _report(checks: list[CheckResult], tag: str, out_dir: Path, run_label: str) -> dict[str, Any] | State[Any]:
    failed = [c for c in checks if c.status == "failed"]
    report = ValidationReport.from_summaries(
        [{"candidate": tag, "checks": [{"name": c.name, "status": c.status, "message": c.message} for c in checks]}],
        "subflow",
    )
    summary = {
        "candidate": tag,
        "run": run_label,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": not failed,
        "passed": report.named("passed"),
        "failed": report.named("failed"),
        "skipped": report.named("skipped"),
        "counts": report.counts(),
        "checks": [{"name": c.name, "status": c.status, "message": c.message} for c in checks],
        "details": {c.name: c.data for c in checks},
    }
    rows = [{"check": c.name, "status": c.status, "message": c.message} for c in checks]
    create_table_artifact(table=rows, key="validation-checks", description=f"Validation of {tag}")
    create_markdown_artifact(
        key="validation-summary",
        markdown="\n".join(
            [
                f"# Validation of `{tag}`: {'passed' if not failed else 'FAILED'} ({report.counts()})",
                "",
                "| check | status | message |",
                "|---|---|---|",
                *[f"| {c.name} | {c.status} | {c.message.replace('|', '/')} |" for c in checks],
            ]
        ),
    )
    path = out_dir / f"validation-{run_label[:12]}.json"
    write_atomic(path, json.dumps(summary, indent=2, default=str) + "\n")
    summary["report"] = str(path)
    verdict = "passed" if not failed else "FAILED"
    record_outcome(f"validation of {tag} {verdict}: {report.counts()}")
    if failed:
        message = "validation failed: " + "; ".join(f"{c.name}: {c.message}" for c in failed)
        return Failed(message=message, data=summary)
    return summary
