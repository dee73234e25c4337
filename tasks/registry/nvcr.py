"""NVIDIA NGC (nvcr.io) specifics: tokens from ``/proxy_auth``; with an NGC API key the basic
user is the literal ``$oauthtoken``."""

from __future__ import annotations

from tasks.registry.auth import Challenge, Credentials
from tasks.registry.client import Endpoint

NAME = "nvcr.io"
API_URL = "https://nvcr.io"
CHALLENGE = Challenge("bearer", {"realm": "https://nvcr.io/proxy_auth", "service": "nvcr.io"})
API_KEY_USER = "$oauthtoken"


def endpoint(
    credentials: Credentials | None = None, trusted_realms: frozenset[tuple[str, str, int]] = frozenset()
) -> Endpoint:
    """nvcr.io; its token service (``/proxy_auth``) is on the same host, so the key may go there.
    The configured password is the NGC API key; the user is always ``$oauthtoken``."""
    key = Credentials(API_KEY_USER, credentials.password) if credentials else None
    return Endpoint(NAME, API_URL, key, CHALLENGE, trusted_realms)
