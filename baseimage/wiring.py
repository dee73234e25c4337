"""The composition root: the clients a run needs, built from `Settings` in one place (the HTTP
transport, live, recording or replaying a snapshot; the registry session; the research sources;
GitHub; the secret redactor) and handed to the domain code as plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from baseimage.settings import Settings, github_token
from tasks.registry.http import HttpTransport, RetryPolicy
from tasks.registry.models import Platform
from tasks.registry.session import RegistrySession
from tasks.registry.snapshot import RecordingTransport, ReplayTransport
from tasks.research.facts import Facts, load_facts
from tasks.secrets import Redactor
from tasks.update.github import GitHub, GitHubRepo

BUNDLED_SNAPSHOT = Path(__file__).resolve().parent.parent / "config" / "data" / "snapshot"


def research_sources(settings: Settings, pytorch_index: str | None) -> tuple[Facts, str]:
    """The bundled facts with NVIDIA's support URL from `research:` when set, and the PyTorch index
    to read: the one given, else `research.pytorch_index`, else the public one."""
    facts = load_facts()
    if settings.research.nvidia_support_url:
        facts = replace(facts, support_live_url=settings.research.nvidia_support_url)
    return facts, pytorch_index or settings.research.pytorch_index or facts.pytorch_index_url


def make_transport(
    settings: Settings, sources: str, offline_dir: Path | None, record_dir: Path | None
) -> tuple[HttpTransport, str]:
    """The transport for `sources` (live, offline: replaying a snapshot, or live and recording
    one) and how the report describes it."""
    reg = settings.registries
    common: dict[str, Any] = {
        "timeout": (min(5.0, reg.timeout_s), reg.timeout_s),
        "max_concurrency": reg.concurrency,
    }
    if sources == "offline":
        directory = offline_dir or BUNDLED_SNAPSHOT
        replay = ReplayTransport(directory, retry=RetryPolicy(attempts=1), **common)
        return (
            replay,
            f"offline snapshot {directory} (recorded {replay.recorded}{'; ' + replay.note if replay.note else ''})",
        )
    if record_dir is not None:
        recorder = RecordingTransport(record_dir, retry=RetryPolicy(attempts=reg.attempts), **common)
        return recorder, f"live, recorded to {record_dir}"
    return HttpTransport(retry=RetryPolicy(attempts=reg.attempts), **common), "live"


def transport(settings: Settings) -> HttpTransport:
    """The live HTTP transport with the policy's attempts, timeouts and concurrency."""
    reg = settings.registries
    return HttpTransport(
        retry=RetryPolicy(attempts=reg.attempts),
        timeout=(min(5.0, reg.timeout_s), reg.timeout_s),
        max_concurrency=reg.concurrency,
    )


def registry_session(
    settings: Settings, http: HttpTransport | None = None, mirrors: Mapping[str, str] | None = None
) -> RegistrySession:
    """One run's registry access: the policy's mirrors (with `mirrors` taking precedence),
    credentials keyed by host, trusted token realms and platform."""
    reg = settings.registries
    return RegistrySession(
        mirrors={**reg.mirrors, **dict(mirrors or {})},
        credentials=settings.registry_credentials(),
        transport=http or transport(settings),
        platform=Platform.parse(reg.platform),
        token_realms=reg.token_realms,
    )


def github_client(settings: Settings) -> GitHub | None:
    """The GitHub API client for `github:`, or None when no repository or token is configured."""
    if settings.github is None:
        return None
    token = github_token(settings.github)
    if not token:
        return None
    return GitHub(GitHubRepo.parse(settings.github.repository, settings.github.api_url), token)


def redactor(settings: Settings) -> Redactor:
    """Removes every secret this configuration reads (and secret-shaped text) from a string."""
    return Redactor.of(settings.secret_values())
