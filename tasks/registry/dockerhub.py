"""Docker Hub specifics: the API host and its token service differ from the name in references."""

from __future__ import annotations

from tasks.registry.auth import Challenge, Credentials
from tasks.registry.client import Endpoint

NAME = "docker.io"
API_URL = "https://registry-1.docker.io"
# Anonymous pulls get a token from here; knowing it saves one 401 round trip per repository.
CHALLENGE = Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"})
# Docker Hub's token service is on another host than its API: known, so docker.io's own
# credentials may go there (and only docker.io's).
TOKEN_REALMS = frozenset({("https", "auth.docker.io", 443)})


def endpoint(
    credentials: Credentials | None = None, trusted_realms: frozenset[tuple[str, str, int]] = frozenset()
) -> Endpoint:
    return Endpoint(NAME, API_URL, credentials, CHALLENGE, TOKEN_REALMS | trusted_realms)
