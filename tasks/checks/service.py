"""start-service: the candidate's containers (and the broker) with the models volume; the
containers' IDs are what the service checks after it read (listed only when it fails)."""

from __future__ import annotations

from typing import Any

from tasks import containers
from tasks.checks.base import CheckRun, Results
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult


class StartService:
    name = "start-service"
    needs = ("build",)
    quiet = True

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        client = run.docker()
        gpu = done.get("gpu-detect") is not None and done["gpu-detect"].status == CheckStatus.PASSED
        env = {"BASEIMAGE_MODELS_DIR": "/models", **run.environment}
        volume = client.volumes.create(f"bi-models-{run.short}", labels=run.labels)
        volumes = {volume.name: {"bind": "/models", "mode": "rw"}}
        ids = []
        if run.redis_image:
            env["BASEIMAGE_REDIS_URL"] = f"redis://127.0.0.1:{run.redis_port}/0"
            run.log(f"broker {containers.ensure_local(client, run.redis_image, run.mirrors)}")
            command = ["redis-server", "--bind", "127.0.0.1", "--port", str(run.redis_port), "--save", ""]
            ids.append(
                containers.run_container(
                    client, run.redis_image, f"bi-redis-{run.short}", run.labels, command=command
                ).id
            )
        for spec in run.services:
            container = containers.run_container(
                client,
                run.tag,
                f"bi-{spec.name}-{run.short}",
                run.labels,
                command=list(spec.command) if spec.command else None,
                environment=env,
                gpu=spec.gpu and gpu,
                volumes=volumes,
                restart_retries=3,
            )
            ids.append(container.id)
        return CheckResult(self.name, CheckStatus.PASSED, f"started {len(ids)} containers", {"ids": ids})


def running(run: CheckRun, done: Results) -> list[Any]:
    """The containers start-service started (for the checks that watch them)."""
    client = run.docker()
    return [client.containers.get(i) for i in done["start-service"].data["ids"]]
