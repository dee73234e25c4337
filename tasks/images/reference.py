"""Parse and validate image references by the OCI distribution grammar, with Docker Hub defaults.

Grammar (distribution/reference): ``[domain/]path[:tag][@digest]`` where the first path
component is a domain only if it contains ``.`` or ``:`` or is ``localhost``; a bare name on
Docker Hub gains the ``library/`` namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.errors import ImageReferenceError

DOCKER_HUB = "docker.io"
_LEGACY_HUB_NAMES = {"index.docker.io", "registry-1.docker.io"}

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = re.compile(rf"^{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
NAME_TOTAL_LENGTH_MAX = 255


@dataclass(frozen=True, order=True)
class ImageReference:
    """A validated image reference; `registry` is canonical (``docker.io`` for Docker Hub)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` as Docker would print it in full."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The short form Docker users write: no ``docker.io/`` and no ``library/``."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return self.name

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository at another tag (any digest is dropped: it pinned the old tag)."""
        if not _TAG.match(tag):
            raise ImageReferenceError(f"invalid tag {tag!r}: {_TAG_RULE}")
        return ImageReference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        text = self.familiar_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


_TAG_RULE = "a tag is 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"


def parse_reference(text: str) -> ImageReference:
    """Parse `text` as an image reference or raise ImageReferenceError saying what is wrong."""
    original = text
    if not text or text != text.strip():
        raise ImageReferenceError(f"invalid image reference {original!r}: empty or surrounded by whitespace")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise ImageReferenceError(
                f"invalid image reference {original!r}: digest {digest!r} is not "
                "'algorithm:hex' with at least 32 hex digits"
            )
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise ImageReferenceError(
                f"invalid image reference {original!r}: a sha256 digest has exactly 64 lowercase hex digits"
            )
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise ImageReferenceError(f"invalid image reference {original!r}: {_TAG_RULE}")
    if not text:
        raise ImageReferenceError(f"invalid image reference {original!r}: repository name is empty")
    if len(text) > NAME_TOTAL_LENGTH_MAX:
        raise ImageReferenceError(
            f"invalid image reference {original!r}: repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    registry, path = _split_domain(text)
    if not _DOMAIN.match(registry):
        raise ImageReferenceError(f"invalid image reference {original!r}: {registry!r} is not a valid registry host")
    for component in path.split("/"):
        if not component:
            raise ImageReferenceError(f"invalid image reference {original!r}: empty path component")
        if component.lower() != component:
            raise ImageReferenceError(f"invalid image reference {original!r}: repository name must be lowercase")
        if not _PATH_COMPONENT.match(component):
            raise ImageReferenceError(
                f"invalid image reference {original!r}: path component {component!r} may only "
                "hold lowercase letters and digits joined by '.', '_', '__' or '-'"
            )
    return ImageReference(registry, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    is_domain = bool(sep) and ("." in first or ":" in first or first == "localhost" or first.lower() != first)
    if not is_domain:
        registry, path = DOCKER_HUB, name
    else:
        registry, path = first, rest
    if registry in _LEGACY_HUB_NAMES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return registry, path
