"""The composition root: the clients a run needs, built from `Settings` in one place (GitHub,
the secret redactor) and handed to the domain code as plain values."""

from __future__ import annotations

from collections.abc import Mapping

from baseimage.settings import Settings, github_token
from tasks.registry.http import HttpTransport, RetryPolicy
from tasks.registry.models import Platform
from tasks.registry.session import RegistrySession
from tasks.secrets import Redactor
from tasks.update.github import GitHub, GitHubRepo


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
