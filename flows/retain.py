"""Keeping what a rollback needs (`registries.retain_to`): before staging, every base a release
was built from (copied by digest through the registry API) and the released image (pushed from
the Docker host that built it), recorded in the retain log beside the deployment ledger; on a
schedule (deployment `retain`), the current bases of every managed image. A rebuild whose base
tag is gone upstream gets it back from the copy."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.states import Completed

from baseimage.settings import Settings, load_settings
from baseimage.wiring import registry_session
from flows.outcome import record_outcome
from tasks.deploy.ledger import RetainedImage, RetainLog
from tasks.dockerfile.parser import read_dockerfile
from tasks.errors import BaseImageError, ConfigError
from tasks.images.reference import ImageReference
from tasks.registry.retain import RetainError, RetainTarget, bases_in, push_release, retain_base
from tasks.update import git


def _target(settings: Settings) -> RetainTarget:
    if not settings.registries.retain_to:
        raise ConfigError(f"{settings.source}: set registries.retain_to (a registry you own) to keep images")
    return RetainTarget.parse(settings.registries.retain_to)


def _credentials(settings: Settings, target: RetainTarget) -> tuple[str, str] | None:
    found = settings.registry_credentials().get(target.registry.lower())
    return found.as_tuple() if found else None


@task(name="retain-release", retries=2, retry_delay_seconds=[5, 30])
def retain_release(settings: Settings, environment: str, image: str, commit: str, run: str) -> list[dict[str, Any]]:
    """The bases the release was built from (its Dockerfile at `commit`) and the release itself,
    kept in `registries.retain_to` and recorded in the retain log."""
    from baseimage.wiring import build_args_at
    from tasks.deploy.release import docker_client

    log = get_run_logger()
    target = _target(settings)
    managed = settings.environment_image(environment)
    rel = str(managed.dockerfile)
    with git.worktree(settings.root, commit) as tree:
        build_args = build_args_at(settings, managed.name, tree)
    text = git.show(settings.root, commit, rel)
    if text is None:
        raise RetainError(f"{rel} is not in commit {commit[:12]}: cannot tell what {image} was built from")
    client = docker_client(settings.environments[environment].docker_host)
    release = push_release(client, image, target, _credentials(settings, target), run)
    session = registry_session(settings)
    kept = [
        retain_base(session, base, target, release=image, release_image_id=release.release_image_id, run=run)
        for base in bases_in(text, rel, build_args)
    ]
    RetainLog(settings.state_dir).add([*kept, release])
    for entry in [*kept, release]:
        log.info("kept %s (%s) as %s", entry.source, entry.role, entry.copy)
    return [asdict(e) for e in [*kept, release]]


def ensure_bases(settings: Settings, client: Any, text: str, path: str, build_args: dict[str, str]) -> list[str]:
    """Before a build: a base that is neither on the Docker host nor in its registry any more
    (NVIDIA deleted the tag) is pulled from its retained copy and tagged as the Dockerfile names
    it, so the build finds it. Returns what was done, one line per base restored."""
    import docker.errors

    if not settings.registries.retain_to:
        return []
    kept = RetainLog(settings.state_dir)
    session = registry_session(settings)
    done = []
    for base in bases_in(text, path, build_args):
        name = str(base)
        try:
            client.images.get(name)
            continue
        except docker.errors.ImageNotFound:
            pass
        try:
            present = session.manifest(base.registry, base.repository, base.reference) is not None
        except BaseImageError:
            present = False  # unreachable: the copy is the better bet
        if present:
            continue
        copy = kept.copy_of(name, base.digest)
        if copy is None:
            continue  # the build reports the missing base itself
        image = client.images.pull(copy.copy)
        image.tag(base.familiar_name, base.tag)
        done.append(f"{name} is gone upstream: using the retained copy {copy.copy}")
    return done


@flow(name="retain")
def retain(config_path: str | None = None) -> dict[str, Any]:
    """Copy the current base of every managed image (its Dockerfile in this checkout) to
    `registries.retain_to` by digest, and record it."""
    log = get_run_logger()
    settings = load_settings(Path(config_path) if config_path else None)
    if not settings.registries.retain_to:
        message = f"skipped: registries.retain_to is not set in {settings.source}"
        record_outcome(message)
        return Completed(name="SKIPPED", message=message)  # type: ignore[return-value]
    target = _target(settings)
    session = registry_session(settings)
    seen: set[ImageReference] = set()
    kept: list[RetainedImage] = []
    errors: list[str] = []
    for image in settings.images:
        dockerfile = settings.path(image.dockerfile)
        for base in read_dockerfile(dockerfile, image.build_args, str(image.dockerfile)).bases:
            if base.reference is None or base.reference in seen:
                continue
            seen.add(base.reference)
            try:
                kept.append(retain_base(session, base.reference, target))
            except BaseImageError as exc:
                errors.append(f"{base.location}: {exc}")
                log.error("%s: %s", base.location, exc)
    RetainLog(settings.state_dir).add(kept)
    if kept:
        create_table_artifact(
            key="retained",
            table=[{"source": k.source, "digest": k.digest, "copy": k.copy} for k in kept],
            description=f"Bases kept in {target}",
        )
    record_outcome(f"kept {len(kept)} base image(s) in {target}" + (f"; {len(errors)} failed" if errors else ""))
    if errors:
        raise RetainError("; ".join(errors))
    return {"target": str(target), "kept": [asdict(k) for k in kept]}
