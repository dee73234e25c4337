"""Registry authentication: ``WWW-Authenticate`` challenges, bearer tokens cached until expiry,
basic credentials. Secrets never appear in a repr, a log line or an error message."""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tasks.errors import RegistryAuthError, RegistryProtocolError
from tasks.http import HttpTransport, Outcome, classify, speaking_as
from tasks.registry.models import load_json_object

log = logging.getLogger(__name__)

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def as_tuple(self) -> tuple[str, str]:
        return (self.username, self.password)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse the first challenge of a ``WWW-Authenticate`` header (RFC 6750 §3 / RFC 7617)."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {m[1].lower(): (m[2] if m[2] is not None else m[3]) for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL with a host, default ports filled in; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return (scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80))


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_refusal(url: str) -> str | None:
    """Why credentials may not go to `url` (plain http to a host that is not loopback), or None."""
    where = origin(url)
    if where is None:
        return f"{url} is not an http(s) URL"
    if where[0] == "http" and not is_loopback(where[1]):
        return f"{where[1]}:{where[2]} is plain http and not loopback"
    return None


def realm_origin(entry: str) -> tuple[str, str, int] | None:
    """A ``registries.token_realms`` entry: ``host[:port]`` (https) or an http(s) URL."""
    return origin(entry if "://" in entry else f"https://{entry}")


def parse_token(body: bytes, realm: str) -> tuple[str, int]:
    """A token service's answer: the token and how long it is valid, in seconds (60 s to a day)."""
    data = load_json_object(body, f"token service {realm} answer", realm)
    token = data.get("token") or data.get("access_token")
    if token is not None and token != "" and not isinstance(token, str):
        key = "token" if data.get("token") else "access_token"
        raise RegistryProtocolError(f"{realm}: token service answer '{key}': expected a non-empty string", url=realm)
    if not token:
        raise RegistryProtocolError(f"token service {realm} answered no token", url=realm)
    expires = data.get("expires_in")
    if expires is None:
        expires = 60
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise RegistryProtocolError(
            f"{realm}: token service answer 'expires_in': expected a number of seconds, got {expires!r:.40}", url=realm
        )
    return token, int(min(max(60.0, float(expires)), 86400.0))


@dataclass(frozen=True)
class TokenRequest:
    """Whom a bearer challenge sends to, and whether the credentials may go along."""

    realm: str
    credentials: Credentials | None
    refusal: str | None  # why configured credentials were kept back (logged, without the secret)


def token_request(
    challenge: Challenge,
    registry_url: str,
    credentials: Credentials | None,
    trusted_realms: frozenset[tuple[str, str, int]] = frozenset(),
) -> TokenRequest:
    """Check the challenge's realm and decide whether `credentials` may be sent to it: only to the
    registry's own origin (scheme, host, port) or a realm listed as trusted, never over plain http
    to a host that is not loopback. A realm that is not an http(s) URL is a protocol error."""
    realm = challenge.params.get("realm", "")
    where = origin(realm)
    if where is None:
        raise RegistryProtocolError(
            f"{registry_url}: bearer challenge realm {realm!r:.200} is not an http(s) URL", url=registry_url
        )
    if credentials is None:
        return TokenRequest(realm, None, None)
    refusal = plain_http_refusal(realm)
    if refusal is None and where != origin(registry_url) and where not in trusted_realms:
        refusal = (
            f"the realm {where[0]}://{where[1]}:{where[2]} is not the registry's own host; "
            "list it under registries.token_realms to send them"
        )
    if refusal is not None:
        return TokenRequest(realm, None, refusal)
    return TokenRequest(realm, credentials, None)


@dataclass
class TokenCache:
    """Bearer tokens keyed by (realm, service, scope, credentials), valid until shortly before expiry."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[tuple[str, str, str, Credentials | None], tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return self.clock()

    @speaking_as("registry")
    def fetch(
        self,
        transport: HttpTransport,
        challenge: Challenge,
        scope: str,
        credentials: Credentials | None,
        registry_url: str = "",
        trusted_realms: frozenset[tuple[str, str, int]] = frozenset(),
    ) -> str:
        """Return a cached token or fetch one from the challenge's realm (one fetch per key).

        `registry_url` is the endpoint that sent the challenge: credentials go to the realm only
        when `token_request` allows it; otherwise the token is asked for anonymously."""
        ask = token_request(challenge, registry_url or challenge.params.get("realm", ""), credentials, trusted_realms)
        if ask.refusal:
            log.warning("not sending the credentials for %s to its token service: %s", registry_url, ask.refusal)
        realm, credentials = ask.realm, ask.credentials
        service = challenge.params.get("service", "")
        key = (realm, service, scope, credentials)
        with self._lock:
            entry = self._tokens.get(key)
            if entry and entry[1] > self.now():
                return entry[0]
            query = {"scope": scope, **({"service": service} if service else {})}
            url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
            response = transport.request("GET", url, auth=credentials.as_tuple() if credentials else None)
            if classify(response.status_code) is Outcome.AUTH:
                who = "the configured credentials" if credentials else "anonymous access"
                raise RegistryAuthError(
                    f"token service {realm} refused {who} for {scope} (HTTP {response.status_code})",
                    url=realm,
                    status=response.status_code,
                )
            if classify(response.status_code) is not Outcome.OK:
                raise RegistryProtocolError(
                    f"token service {realm} answered HTTP {response.status_code} for {scope}",
                    url=realm,
                    status=response.status_code,
                )
            token, expires_in = parse_token(response.content, realm)
            # Renew a little early so a token never expires mid-request.
            self._tokens[key] = (token, self.now() + expires_in - 10)
            return token
