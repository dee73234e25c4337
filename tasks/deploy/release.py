"""Deploy an image to an environment and put a previous one back: compose up with the image,
wait for health (a crash loop fails at once), and keep the ledger of what ran before."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tasks.deploy.compose import Compose, ComposeError, compose_services, override_text, project_containers
from tasks.deploy.ledger import DEPLOYED, DEPLOYING, FAILED, RESTORED, Deployment, ImageRecord, Ledger
from tasks.errors import BaseImageError
from tasks.files import write_atomic
from tasks.images.reference import parse_reference
from tasks.statuses import DeploymentStatus
from tasks.validation import wait_health_url


class DeployError(BaseImageError):
    """A deploy or a restore did not end healthy; `record` is the ledger entry it left."""

    def __init__(self, message: str, record: Deployment | None = None, logs: str = "") -> None:
        super().__init__(message)
        self.record = record
        self.logs = logs


class EnvironmentSpec(Protocol):
    """What a deploy reads of an environment (`environments.<name>` in the policy file; the
    settings' Environment model has these fields)."""

    @property
    def docker_host(self) -> str | None: ...
    @property
    def project(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def services(self) -> list[str] | None: ...
    @property
    def image_variable(self) -> str: ...
    @property
    def variables(self) -> dict[str, str]: ...
    @property
    def health_url(self) -> str: ...
    @property
    def health_timeout_s(self) -> float: ...


@dataclass(frozen=True)
class Target:
    """An environment from the config, with its compose file resolved against the repository and
    the override file baseimage writes beside its ledger."""

    name: str
    env: EnvironmentSpec
    compose_file: Path
    override: Path | None = None

    @property
    def compose(self) -> Compose:
        return Compose(self.compose_file, self.env.project, self.env.docker_host, self.override)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.env.services or [self.env.service])

    def variables(self, image: str) -> dict[str, str]:
        return {**self.env.variables, self.env.image_variable: image}

    def set_image(self, image: str) -> None:
        """Point the override at `image` (written atomically before compose runs); the services
        must exist in the user's compose file (an override would otherwise add new ones)."""
        if self.override is None or not self.compose_file.is_file():
            return  # compose itself says the file is missing
        declared = compose_services(self.compose_file)
        missing = [s for s in self.services if s not in declared]
        if missing:
            raise ComposeError(
                f"{self.compose_file}: no service {', '.join(missing)} (environments.{self.name}.service/services "
                f"in the config); the file has {', '.join(sorted(declared)) or 'none'}"
            )
        write_atomic(self.override, override_text(self.services, image, f"environment {self.name}"))


def docker_client(docker_host: str | None) -> Any:
    import docker

    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=120)
    return docker.from_env(timeout=120)


def image_record(client: Any, reference: str) -> ImageRecord:
    """The local image behind `reference`: its ID and, when it came from a registry, its digest."""
    import docker.errors

    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return ImageRecord(reference)
    digests = image.attrs.get("RepoDigests") or []
    name = parse_reference(reference).repository if "@" not in reference else None
    digest = next((d for d in digests if name and d.split("@")[0].endswith(name)), digests[0] if digests else None)
    return ImageRecord(reference, str(image.id), digest)


def running_image(client: Any, target: Target) -> ImageRecord | None:
    """What the environment's service runs now (reference as compose was given it, ID, digest)."""
    containers = project_containers(client, target.env.project, target.env.service)
    if not containers:
        return None
    container = containers[0]
    reference = str(container.attrs.get("Config", {}).get("Image") or container.image.id)
    record = image_record(client, reference)
    return ImageRecord(record.image, str(container.image.id), record.digest)


def restorable(client: Any, record: ImageRecord, environment: str, retained: Sequence[str] = ()) -> str:
    """A reference that names exactly `record`'s image now: the reference if it still points at the
    same ID, else its digest, else the local ID re-tagged, else a retained copy pulled from the
    retain registry (`retained`: copies by digest); an error when the image is gone everywhere."""
    import docker.errors

    for candidate in (record.image, record.digest):
        if not candidate:
            continue
        try:
            image = client.images.get(candidate)
        except docker.errors.ImageNotFound:
            continue
        if record.image_id is None or image.id == record.image_id:
            return candidate
    if record.image_id:
        try:
            image = client.images.get(record.image_id)
        except docker.errors.ImageNotFound:
            pass
        else:
            tag = f"baseimage-restore/{environment}:{record.image_id[7:19]}"
            image.tag(tag)
            return tag
    for pullable in (record.digest, *retained):
        if not pullable:
            continue
        try:
            client.images.pull(pullable)
            return pullable
        except docker.errors.APIError:
            pass
    raise DeployError(
        f"{environment}: the previous image {record.describe()} is no longer on the Docker host and "
        "cannot be pulled; put it back with `baseimage rollback --env "
        f"{environment} --to IMAGE`"
    )


def wait_healthy(client: Any, target: Target) -> dict[str, Any]:
    containers = project_containers(client, target.env.project)
    return wait_health_url(target.env.health_url, target.env.health_timeout_s, containers)


def logs(target: Target, image: str, tail: int = 200) -> str:
    """The project's last `tail` log lines per service (evidence for a report); never raises."""
    try:
        return target.compose.logs(target.variables(image), tail)
    except BaseImageError as exc:
        return f"(no logs: {exc})"


def deploy(
    client: Any,
    target: Target,
    image: str,
    ledger: Ledger,
    *,
    status: DeploymentStatus = DEPLOYED,
    run: str | None = None,
    branch: str | None = None,
    commit: str | None = None,
    note: str = "",
) -> Deployment:
    """Bring `target` up on `image` and wait for health. The ledger gets the attempt (with what ran
    before) first and its outcome after; a failure raises DeployError carrying both and the logs."""
    previous = running_image(client, target)
    record = ledger.append(
        Deployment(
            target.name,
            DEPLOYING,
            image_record(client, image),
            previous,
            run=run,
            branch=branch,
            commit=commit,
            note=note,
        )
    )
    try:
        target.set_image(image)
        target.compose.up(target.variables(image))
        wait_healthy(client, target)
    except BaseImageError as exc:
        evidence = logs(target, image)
        failed = ledger.settle(record, FAILED, f"{type(exc).__name__}: {exc}")
        raise DeployError(f"{target.name}: deploy of {image} failed: {exc}", failed, evidence) from exc
    now = running_image(client, target)
    return ledger.settle(replace(record, image=now or record.image), status)


def rollback_target(ledger: Ledger) -> tuple[ImageRecord | None, Deployment | None]:
    """What an ad hoc rollback puts back: what the newest deploy replaced. None when the newest
    entry is itself a restore (the rollback already happened) or there is no history."""
    last = ledger.last()
    if last is None or last.status == RESTORED:
        return None, last
    return last.previous, last
