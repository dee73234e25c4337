"""Registry authentication: ``WWW-Authenticate`` challenges, bearer tokens cached until expiry,
basic credentials. Secrets never appear in a repr, a log line or an error message."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tasks.errors import RegistryAuthError, RegistryProtocolError
from tasks.registry.http import HttpTransport, Outcome, classify

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


@dataclass
class TokenCache:
    """Bearer tokens keyed by (realm, service, scope), valid until shortly before expiry."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return self.clock()

    def fetch(
        self,
        transport: HttpTransport,
        challenge: Challenge,
        scope: str,
        credentials: Credentials | None,
    ) -> str:
        """Return a cached token or fetch one from the challenge's realm (one fetch per key)."""
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryProtocolError("bearer challenge without a realm", url=None)
        service = challenge.params.get("service", "")
        key = (realm, service, scope)
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
            try:
                data = json.loads(response.content)
                token = data.get("token") or data.get("access_token")
                expires_in = max(60, int(data.get("expires_in") or 60))
            except (ValueError, AttributeError, TypeError) as exc:
                raise RegistryProtocolError(
                    f"token service {realm} answered something that is not a token: {exc}",
                    url=realm,
                ) from exc
            if not token:
                raise RegistryProtocolError(f"token service {realm} answered no token", url=realm)
            # Renew a little early so a token never expires mid-request.
            self._tokens[key] = (str(token), self.now() + expires_in - 10)
            return str(token)
