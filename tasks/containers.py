"""Docker operations for validation through the docker SDK: build with a streamed log, run
labelled containers on the host network, GPU device requests, logs, teardown by label."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.errors import BuildError, ContainerError, GpuUnavailableError

LABEL = "baseimage.validation"


@dataclass(frozen=True)
class Built:
    image_id: str
    tag: str
    seconds: float
    log_tail: list[str]


def through_mirror(reference: str, mirrors: Mapping[str, str]) -> str | None:
    """Where `reference` is pulled from when its registry has a mirror (`host:port/repo:tag`)."""
    from urllib.parse import urlsplit

    from tasks.images.reference import parse_reference

    ref = parse_reference(reference)
    if ref.registry not in mirrors:
        return None
    host = urlsplit(mirrors[ref.registry]).netloc
    return f"{host}/{ref.repository}" + (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")


def ensure_local(client: Any, reference: str, mirrors: Mapping[str, str]) -> str:
    """Make `reference` available to the daemon: already there, else pulled through the mirror
    configured for its registry and tagged with the name the Dockerfile or config uses (so a
    build or a run never reaches a registry the policy did not name), else pulled as named."""
    import docker.errors

    try:
        client.images.get(reference)
        return f"{reference}: already on the Docker host"
    except docker.errors.ImageNotFound:
        pass
    mirrored = through_mirror(reference, mirrors)
    try:
        if mirrored is None:
            client.images.pull(reference)
            return f"{reference}: pulled"
        image = client.images.pull(mirrored)
    except docker.errors.APIError as exc:
        where = f" through the mirror ({mirrored})" if mirrored else ""
        raise BuildError(f"cannot pull {reference}{where}: {exc}", []) from exc
    from tasks.images.reference import parse_reference

    ref = parse_reference(reference)
    if ref.tag and not ref.digest:
        image.tag(reference.rsplit(":", 1)[0], ref.tag)
    return f"{reference}: pulled through {mirrored}"


def build_bases(dockerfile: Path, build_args: Mapping[str, str]) -> list[str]:
    """The images a Dockerfile's stages start from (what a build pulls)."""
    from tasks.dockerfile.parser import read_dockerfile

    return list(
        dict.fromkeys(b.image for b in read_dockerfile(dockerfile, build_args).bases if b.reference and b.image)
    )


def build_image(
    client: Any,
    context: Path,
    dockerfile: str,
    tag: str,
    labels: Mapping[str, str],
    buildargs: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Built:
    """Build `tag` from `context`; every log line goes to `on_line`; failures raise BuildError."""
    began = time.monotonic()
    tail: deque[str] = deque(maxlen=40)
    image_id = None
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            labels=dict(labels),
            buildargs=dict(buildargs or {}),
            network_mode="host",
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                message = str(chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
                tail.append(message)
                raise BuildError(
                    f"docker build of {tag} from {context}/{dockerfile} failed: {message}",
                    list(tail),
                )
            text = chunk.get("stream") or chunk.get("status") or ""
            for line in str(text).splitlines():
                if line.strip():
                    tail.append(line.rstrip())
                    if on_line:
                        on_line(line.rstrip())
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except BuildError:
        raise
    except Exception as exc:  # the daemon refused the build (bad context, API error)
        raise BuildError(f"docker build of {tag} from {context}/{dockerfile} failed: {exc}", list(tail)) from exc
    if image_id is None:
        image_id = str(client.images.get(tag).id)
    return Built(image_id, tag, time.monotonic() - began, list(tail))


def run_container(
    client: Any,
    image: str,
    name: str,
    labels: Mapping[str, str],
    *,
    command: list[str] | None = None,
    environment: Mapping[str, str] | None = None,
    gpu: bool = False,
    volumes: Mapping[str, dict[str, str]] | None = None,
    restart_retries: int = 0,
) -> Any:
    """Start a detached container on the host network; GpuUnavailableError when the host has no
    NVIDIA runtime for a GPU request."""
    import docker

    kwargs: dict[str, Any] = {
        "name": name,
        "labels": dict(labels),
        "detach": True,
        "network_mode": "host",
        "environment": dict(environment or {}),
        "volumes": dict(volumes or {}),
    }
    if command is not None:
        kwargs["command"] = command
    if restart_retries:
        kwargs["restart_policy"] = {"Name": "on-failure", "MaximumRetryCount": restart_retries}
    if gpu:
        kwargs["device_requests"] = [docker.types.DeviceRequest(driver="nvidia", count=-1, capabilities=[["gpu"]])]
    try:
        return client.containers.run(image, **kwargs)
    except docker.errors.APIError as exc:
        text = str(exc)
        if gpu and ("could not select device driver" in text or "nvidia" in text.lower()):
            # Docker creates the container before it fails to start it; leave nothing behind.
            for leftover in client.containers.list(all=True, filters={"name": name}):
                leftover.remove(force=True)
            raise GpuUnavailableError(f"no NVIDIA container runtime on this Docker host: {text}") from exc
        raise


def log_tail(container: Any, lines: int = 40) -> list[str]:
    try:
        text: str = container.logs(tail=lines).decode(errors="replace")
        return text.splitlines()
    except Exception:  # the container may already be gone
        return []


def ensure_running(container: Any) -> None:
    """Raise ContainerError when `container` exited or has been restarting."""
    container.reload()
    state = container.attrs.get("State", {})
    restarts = int(container.attrs.get("RestartCount", 0))
    if state.get("Status") in ("exited", "dead") or state.get("Restarting") or restarts:
        code = state.get("ExitCode")
        what = f"restarted {restarts} times" if restarts else f"exited with code {code}"
        raise ContainerError(
            f"container {container.name} {what} (crash loop)" if restarts else f"container {container.name} {what}",
            code,
            log_tail(container),
        )


def teardown(client: Any, run_label: str, remove_images: bool = True) -> list[str]:
    """Remove every container (and image) labelled with this run; returns what was removed."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={run_label}"}):
        container.remove(force=True, v=True)
        removed.append(f"container {container.name}")
    for volume in client.volumes.list(filters={"label": f"{LABEL}={run_label}"}):
        volume.remove(force=True)
        removed.append(f"volume {volume.name}")
    if remove_images:
        for image in client.images.list(filters={"label": f"{LABEL}={run_label}"}):
            client.images.remove(image.id, force=True)
            removed.append(f"image {image.short_id}")
    return removed
