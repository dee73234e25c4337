"""The validate flow against a real daemon: a candidate built by the test runs through build,
GPU detection (skipped: no GPU here), start, health, training, ONNX, start-up logs and
teardown; each injected failure ends in a clear failed check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.candidate import write_context
from tests.support.registry_server import LocalRegistry, free_port

pytestmark = pytest.mark.docker


@pytest.fixture
def candidate(tmp_path: Path, model_onnx: Path) -> Path:
    return write_context(tmp_path / "ctx", model_onnx)


def config(tmp_path: Path, port: int, *, require_gpu: bool = False, health_timeout: float = 20) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
images:
  - name: training
    dockerfile: Dockerfile
    track: cuda
policy:
  require_gpu: {str(require_gpu).lower()}
validation:
  port: {port}
  base_path: /cgi-bin/svc
  health_timeout_s: {health_timeout}
  train_steps: 4
  train_timeout_s: 30
  redis_image: null
  containers:
    - name: service
      gpu: true
""")
    return path


def run_validate(
    candidate: Path,
    registry: LocalRegistry,
    tmp_path: Path,
    *,
    base: str = "12.6.3-runtime-ubuntu22.04",
    mode: str = "ok",
    dockerfile: str = "Dockerfile",
    **config_kw: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    from flows.validate import validate

    port = free_port()
    state = validate(
        context=str(candidate),
        dockerfile=dockerfile,
        buildargs={"BASE": f"{registry.host}/nvidia/cuda:{base}", "PORT": str(port), "MODE": mode},
        config_path=str(config(tmp_path, port, **config_kw)),
        out_dir=str(tmp_path / "reports"),
        return_state=True,
    )
    reports = sorted((tmp_path / "reports").glob("validation-*.json"))
    assert len(reports) == 1, "a JSON result is written whatever the outcome"
    checks = json.loads(reports[0].read_text())["checks"]
    return state, checks


def statuses(checks: list[dict[str, Any]]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in checks}


def assert_torn_down(docker_client: Any) -> None:
    from tasks.containers import LABEL

    assert docker_client.containers.list(all=True, filters={"label": LABEL}) == []
    assert docker_client.images.list(filters={"label": LABEL}) == []


def test_candidate_passes_with_gpu_checks_skipped(
    prefect_harness: None,
    docker_client: Any,
    registry: LocalRegistry,
    candidate: Path,
    tmp_path: Path,
) -> None:
    state, checks = run_validate(candidate, registry, tmp_path)
    assert state.is_completed(), state.message
    assert statuses(checks) == {
        "build": "passed",
        "gpu-detect": "skipped",
        "health": "passed",
        "startup-logs": "passed",
        "training": "passed",
        "onnx": "passed",
        "gpu-utilization": "skipped",
    }
    by_name = {c["name"]: c["message"] for c in checks}
    assert by_name["gpu-detect"].startswith("skipped: no GPU")
    summary = state.result()
    # Skipped is never counted as passed: the summary, and every place that shows it, names them.
    assert summary["counts"] == "5 passed, 2 skipped: no GPU (gpu-detect, gpu-utilization)"
    assert summary["skipped"] == ["gpu-detect", "gpu-utilization"]
    assert "ORT ran it: [[2, 10]]" in by_name["onnx"]
    assert_torn_down(docker_client)


def test_require_gpu_turns_the_skip_into_a_failure(
    prefect_harness: None,
    docker_client: Any,
    registry: LocalRegistry,
    candidate: Path,
    tmp_path: Path,
) -> None:
    state, checks = run_validate(candidate, registry, tmp_path, require_gpu=True)
    assert state.is_failed()
    assert state.result(raise_on_failure=False)["failed"] == ["gpu-detect"], "a failed run keeps its summary"
    assert statuses(checks)["gpu-detect"] == "failed"
    message = {c["name"]: c["message"] for c in checks}["gpu-detect"]
    assert message.startswith("GpuUnavailableError: policy require_gpu is true and no NVIDIA container runtime")
    assert_torn_down(docker_client)


def test_deprecated_base_fails_on_the_banner(
    prefect_harness: None,
    docker_client: Any,
    registry: LocalRegistry,
    candidate: Path,
    tmp_path: Path,
) -> None:
    state, checks = run_validate(candidate, registry, tmp_path, base="12.1.0-runtime-ubuntu22.04")
    assert state.is_failed()
    assert statuses(checks)["startup-logs"] == "failed"
    assert (
        "THIS IMAGE IS DEPRECATED and is scheduled for DELETION."
        in {c["name"]: c["message"] for c in checks}["startup-logs"]
    )
    assert statuses(checks)["training"] == "passed"
    assert_torn_down(docker_client)


@pytest.mark.parametrize(
    ("mode", "dockerfile", "failed", "message"),
    [
        ("ok", "Dockerfile.broken", "build", "BuildError: docker build of baseimage-candidate:"),
        ("health-fail", "Dockerfile", "health", "HealthCheckError: http://127.0.0.1:"),
        ("crash", "Dockerfile", "health", "ContainerError: container bi-service-"),
        ("train-fail", "Dockerfile", "training", "TrainingJobError: training job"),
    ],
)
def test_injected_failures_give_a_failed_check(
    prefect_harness: None,
    docker_client: Any,
    registry: LocalRegistry,
    candidate: Path,
    tmp_path: Path,
    mode: str,
    dockerfile: str,
    failed: str,
    message: str,
) -> None:
    state, checks = run_validate(candidate, registry, tmp_path, mode=mode, dockerfile=dockerfile, health_timeout=4)
    assert state.is_failed()
    assert statuses(checks)[failed] == "failed", checks
    text = {c["name"]: c["message"] for c in checks}[failed]
    assert text.startswith(message), text
    if mode == "ok":  # build error: the log tail is in the message
        assert "compiling the service" in text and "returned a non-zero code" in text
    if mode == "health-fail":
        assert "not healthy within 4 s; last answer: HTTP 503" in text
    if mode == "crash":
        assert "exited with code 3" in text or "crash loop" in text
    if mode == "train-fail":
        assert text.endswith("failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert_torn_down(docker_client)


def test_helper_images_and_build_bases_come_through_the_configured_mirror(
    prefect_harness: None,
    docker_client: Any,
    registry: LocalRegistry,
    candidate: Path,
    tmp_path: Path,
) -> None:
    """Nothing is pulled from a registry the policy did not name: the broker image (`redis:7-alpine`,
    a Docker Hub name) and the candidate's base (`nvidia/cuda:...`) come through the docker.io
    mirror; the mirror's own access log shows both pulls."""
    import contextlib
    import io

    import docker.errors

    mirror = LocalRegistry(tmp_path / "mirror", access_log=True).start()
    try:
        base_tag = "12.5.1-runtime-ubuntu22.04"
        seeded = docker_client.images.pull(f"{registry.host}/nvidia/cuda:{base_tag}")
        seeded.tag(f"{mirror.host}/nvidia/cuda", base_tag)
        docker_client.images.push(f"{mirror.host}/nvidia/cuda", base_tag)
        docker_client.images.build(
            fileobj=io.BytesIO(
                f'FROM {registry.host}/nvidia/cuda:{base_tag}\nENTRYPOINT ["sh", "-c", "sleep 600"]\n'.encode()
            ),
            tag=f"{mirror.host}/library/redis:7-alpine",
            labels={"baseimage.test": "1"},
        )
        docker_client.images.push(f"{mirror.host}/library/redis", "7-alpine")
        for local in (
            f"{mirror.host}/library/redis:7-alpine",
            f"{mirror.host}/nvidia/cuda:{base_tag}",
            "redis:7-alpine",
            f"nvidia/cuda:{base_tag}",
        ):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(local)
        port = free_port()
        path = config(tmp_path, port)
        path.write_text(
            path.read_text().replace("  redis_image: null\n", "  redis_image: redis:7-alpine\n")
            + f'registries:\n  mirrors: {{docker.io: "{mirror.url}"}}\n'
        )
        from flows.validate import validate

        state = validate(
            context=str(candidate),
            dockerfile="Dockerfile",
            buildargs={"BASE": f"nvidia/cuda:{base_tag}", "PORT": str(port), "MODE": "ok"},
            config_path=str(path),
            out_dir=str(tmp_path / "reports"),
            return_state=True,
        )
        assert state.is_completed(), state.message
        log = mirror.log_text()
        assert "/v2/library/redis/manifests/7-alpine" in log, "the broker came through the mirror"
        assert f"/v2/nvidia/cuda/manifests/{base_tag}" in log, "the build's base came through the mirror"
    finally:
        mirror.stop()
        for local in ("redis:7-alpine", f"nvidia/cuda:{base_tag}"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(local, force=True)
