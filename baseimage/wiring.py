"""The composition root: the clients a run needs, built from `Settings` in one place (GitHub,
the secret redactor) and handed to the domain code as plain values."""

from __future__ import annotations

from baseimage.settings import Settings, github_token
from tasks.secrets import Redactor
from tasks.update.github import GitHub, GitHubRepo


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
