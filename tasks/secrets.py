"""Keeping secrets out of what baseimage writes: every log tail, diff, incident, message and
artifact that could carry one goes through `Redactor.redact`, which removes the configured
secret values (tokens, passwords, webhook URLs read from the environment), credentials inside
URLs and bearer tokens; a webhook URL is shown as its scheme and host only."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@:]+(?::[^/\s@]*)?)@")
_BEARER = re.compile(r"(?i)\b(bearer|token|basic)(\s+|=)([A-Za-z0-9._~+/=-]{8,})")
_KEYVAL = re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|access[_-]?token)(\s*[=:]\s*)([^\s,;\"']+)")


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/…``: the scheme and host of a URL whose path may be the secret."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return MASK
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}/…"


@dataclass(frozen=True)
class Redactor:
    """Removes `secrets` (exact values, the longest first) and secret-shaped text from strings."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Redactor:
        # Very short values would mask ordinary text; nobody's token is three characters long.
        unique = {v for v in values if v and len(v) >= 6}
        return cls(tuple(sorted(unique, key=len, reverse=True)))

    def __add__(self, other: Redactor) -> Redactor:
        return Redactor.of([*self.secrets, *other.secrets])

    def redact(self, text: str) -> str:
        for value in self.secrets:
            if value in text:
                text = text.replace(value, MASK)
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
        text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
        return _KEYVAL.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)

    def lines(self, lines: Iterable[str]) -> list[str]:
        return [self.redact(line) for line in lines]
