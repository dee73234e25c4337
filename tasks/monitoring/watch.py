"""Find deprecated images among an environment's running containers: each container's image
config, the start of its log (where NVIDIA prints the banner), NVIDIA's list, the registry (the
tag deleted, a newer patch, the tag re-pushed since it was deployed) and the fleet's driver branch.
The judgements are pure (`tasks.monitoring.findings`); this module gathers what they need."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tasks.deploy.compose import project_containers
from tasks.deploy.ledger import Ledger, RetainLog
from tasks.deprecation import find_deprecation_banner
from tasks.errors import BaseImageError, ImageReferenceError
from tasks.images.reference import ImageReference, parse_reference
from tasks.images.tags import CudaTag, NgcTag
from tasks.monitoring.findings import (
    ContainerReport,
    Finding,
    ReleaseSignals,
    Repush,
    Where,
    deleted_finding,
    newest_patch,
    release_findings,
    repush_finding,
)
from tasks.registry.session import RegistrySession
from tasks.research.facts import Facts

log = logging.getLogger(__name__)

# NVIDIA's entrypoint prints the banner before anything else; a service may then log for months.
# The log is read from the container's start, up to this much.
LOG_HEAD_LINES = 500
LOG_HEAD_BYTES = 512 * 1024


def _env(attrs: Mapping[str, Any]) -> dict[str, str]:
    items = (attrs.get("Config") or {}).get("Env") or []
    return dict(item.split("=", 1) for item in items if "=" in item)


def _started_at(container: Any) -> datetime | None:
    text = str((container.attrs.get("State") or {}).get("StartedAt") or "")
    if not text or text.startswith("0001-"):
        return None
    # Docker writes nanoseconds ("2026-11-28T07:00:01.123456789Z"); Python reads microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    except ValueError:
        return None


def log_head(container: Any, max_lines: int = LOG_HEAD_LINES, max_bytes: int = LOG_HEAD_BYTES) -> str:
    """The first lines the container wrote since it (last) started: `since` its start time,
    streamed and cut after `max_lines` lines or `max_bytes` bytes, so a long-lived chatty
    service is read from its start, not its end."""
    started = _started_at(container)
    kwargs: dict[str, Any] = {"stream": True, "follow": False, "stdout": True, "stderr": True}
    if started is not None:
        kwargs["since"] = started
    chunks: list[bytes] = []
    size = lines = 0
    stream: Iterator[bytes] = container.logs(**kwargs)
    try:
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            if lines >= max_lines or size >= max_bytes:
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    text = b"".join(chunks)[:max_bytes].decode(errors="replace")
    return "\n".join(text.splitlines()[:max_lines])


@dataclass(frozen=True)
class Running:
    """One running container as the daemon describes it."""

    environment: str
    container: str
    reference: str  # the image reference it was started with
    image_id: str | None
    env: dict[str, str]
    repo_digests: tuple[str, ...]
    log: str


def running(client: Any, environment: str, project: str) -> list[Running]:
    found = []
    for container in project_containers(client, project):
        image = container.image
        reference = str((container.attrs.get("Config") or {}).get("Image") or (image.tags or [image.id])[0])
        found.append(
            Running(
                environment,
                container.name,
                reference,
                str(image.id) if image.id else None,
                _env(image.attrs),
                tuple(image.attrs.get("RepoDigests") or ()),
                log_head(container),
            )
        )
    return found


@dataclass(frozen=True)
class Base:
    """A registry reference a container depends on, and the digest it had when deployed."""

    reference: ImageReference
    recorded_digest: str | None
    recorded_from: str
    env: Mapping[str, str]  # the config it had then (the running image's, for a direct reference)
    retained: str | None = None  # the retained copy, if one was made


def _digest_of(repo_digest: str | None) -> str | None:
    return repo_digest.rpartition("@")[2] if repo_digest and "@" in repo_digest else None


def bases_of(item: Running, ledger: Ledger | None, kept: RetainLog | None) -> list[Base]:
    """The registry references a container depends on: the reference it runs when that is a CUDA
    or NGC tag, else the bases its release was built from (recorded when it was retained)."""
    try:
        ref = parse_reference(item.reference)
    except ImageReferenceError:
        ref = None
    if ref is not None and ref.tag and (CudaTag.try_parse(ref.tag) or NgcTag.try_parse(ref.tag)):
        recorded, source = None, "the local image"
        if ledger is not None:
            deploy = next((d for d in reversed(ledger.history()) if d.image.image_id == item.image_id), None)
            if deploy is not None and _digest_of(deploy.image.digest):
                recorded, source = _digest_of(deploy.image.digest), "the deployment ledger"
        if recorded is None:
            match = [d for d in item.repo_digests if d.split("@")[0].endswith(ref.repository)]
            recorded = _digest_of(match[0] if match else None)
        copy = kept.copy_of(str(ref), recorded) if kept and recorded else None
        return [Base(ref, recorded, source, item.env, copy.copy if copy else None)]
    if kept is None:
        return []
    bases = []
    for entry in kept.bases_of_release(item.reference, item.image_id):
        bases.append(
            Base(parse_reference(entry.source), entry.digest, "the retained copy record", entry.env, entry.copy)
        )
    return bases


@dataclass
class WatchContext:
    """What one watch run knows besides the containers (shared by every environment)."""

    facts: Facts
    unsupported: Mapping[str, str]
    unsupported_from: str
    session: RegistrySession | None
    fleet_branch: int
    today: date
    ledger_for: Callable[[str], Ledger | None] = lambda _env: None
    kept: RetainLog | None = None
    errors: list[str] = field(default_factory=list)


def _registry_findings(where: Where, base: Base, ctx: WatchContext) -> tuple[list[Finding], str | None, list[str]]:
    """Tag deleted / re-pushed for one base; also the newest patch of its minor (or None)."""
    session, ref = ctx.session, base.reference
    if session is None or not ref.tag:
        return [], None, []
    try:
        tags = session.tags(ref.registry, ref.repository)
        found: list[Finding] = []
        newer = None
        cuda = CudaTag.try_parse(ref.tag)
        if tags is not None and cuda is not None:
            versions = [t.version for t in (CudaTag.try_parse(x) for x in tags) if t is not None]
            newer = newest_patch(cuda.version_str, versions)
        if tags is None or ref.tag not in tags:
            found.append(deleted_finding(where, str(ref), base.retained))
            return found, newer, []
        top = session.manifest(ref.registry, ref.repository, ref.tag)
        if top is not None and base.recorded_digest and top.digest != base.recorded_digest:
            info = session.inspect(ref)
            new_env = dict(info.env) if info is not None else {}
            repush = Repush(str(ref), base.recorded_digest, base.recorded_from, top.digest, dict(base.env), new_env)
            found.append(repush_finding(where, repush, ctx.fleet_branch, ctx.facts))
        return found, newer, []
    except BaseImageError as exc:
        return [], None, [f"{where.environment}/{where.container}: registry look-up of {ref} failed: {exc}"]


def inspect(item: Running, ctx: WatchContext) -> ContainerReport:
    """Every finding about one running container."""
    banner = find_deprecation_banner(item.log)
    # NVIDIA's CUDA support list and deletion dates are about nvidia/cuda images; an NGC framework
    # image (NVIDIA_PYTORCH_VERSION) carries CUDA_VERSION too, but has its own lifecycle.
    cuda = None if "NVIDIA_PYTORCH_VERSION" in item.env else item.env.get("CUDA_VERSION")
    config_eol = bool(item.env.get("NVIDIA_CUDA_END_OF_LIFE"))
    bases = bases_of(item, ctx.ledger_for(item.environment), ctx.kept)
    findings: list[Finding] = []
    errors: list[str] = []
    newer: str | None = None
    for base in bases:
        where = Where(item.environment, item.container, str(base.reference))
        found, patch, problems = _registry_findings(where, base, ctx)
        findings += found
        errors += problems
        if patch and base.env.get("CUDA_VERSION") == cuda:
            newer = patch
    signals = ReleaseSignals(cuda, ctx.unsupported, ctx.unsupported_from, config_eol, banner, newer)
    where = Where(item.environment, item.container, item.reference)
    findings = release_findings(where, signals, ctx.facts, ctx.today) + findings
    return ContainerReport(
        item.environment,
        item.container,
        item.reference,
        item.image_id,
        item.env.get("CUDA_VERSION"),
        config_eol,
        tuple(banner),
        tuple(str(b.reference) for b in bases),
        tuple(findings),
        tuple(errors),
    )


def watch(client: Any, projects: Mapping[str, str], ctx: WatchContext) -> list[ContainerReport]:
    """Every running container of each environment (compose project label), inspected."""
    reports = []
    for environment, project in projects.items():
        for item in running(client, environment, project):
            reports.append(inspect(item, ctx))
    return reports


def all_findings(reports: Sequence[ContainerReport], extra: Sequence[Finding] = ()) -> list[Finding]:
    return [f for r in reports for f in r.findings] + list(extra)
