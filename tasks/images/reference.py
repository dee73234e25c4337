"""Parse and validate image references exactly as Docker does, with Docker Hub defaults.

Grammar (distribution/reference, ``ParseNormalizedNamed``): ``[domain/]path[:tag][@digest]``
where the first path component is a domain only if it contains ``.`` or ``:``, is
``localhost`` or has an upper-case letter; a bare name on Docker Hub gains the ``library/``
namespace. Everything is ASCII: Go's regexp classes (``\\w``, ``[[:xdigit:]]``) are ASCII, so
every class here is spelled out (Python's ``\\w`` and ``\\d`` would accept ``١٢``) and every
match is anchored at both ends (Python's ``$`` accepts a trailing newline). Digests are what
go-digest accepts: ``sha256`` (64), ``sha384`` (96) and ``sha512`` (128) lowercase hex digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.errors import ImageReferenceError

DOCKER_HUB = "docker.io"
_LEGACY_HUB_NAMES = {"index.docker.io", "registry-1.docker.io"}
_OFFICIAL = "library/"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")
# go-digest's registered algorithms and their encoded lengths (lowercase hex only).
DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
NAME_TOTAL_LENGTH_MAX = 255
# No valid reference is longer: a 255-character name, ':' and a 128-character tag, '@' and a
# sha512 digest. Anything longer is refused before any regular expression runs on it.
REFERENCE_LENGTH_MAX = NAME_TOTAL_LENGTH_MAX + 1 + 128 + 1 + len("sha512:") + 128
_SHOW_MAX = 300

_TAG_RULE = "a tag is 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"


def _show(text: str) -> str:
    """``repr`` of `text`, shortened when it is long (a message must stay readable)."""
    if len(text) <= _SHOW_MAX:
        return repr(text)
    return f"{text[:_SHOW_MAX]!r}... ({len(text)} characters)"


def _non_printable(text: str) -> int | None:
    """Index of the first character outside printable ASCII (control, space, non-ASCII)."""
    match = _NOT_PRINTABLE.search(text)
    return match.start() if match else None


def validate_tag(tag: str) -> str:
    """`tag` when Docker accepts it as a tag, else ImageReferenceError naming the rule."""
    if not _TAG.fullmatch(tag):
        raise ImageReferenceError(f"invalid tag {_show(tag)}: {_TAG_RULE}")
    return tag


def validate_digest(digest: str) -> str:
    """`digest` when go-digest accepts it (sha256, sha384, sha512, lowercase hex), else an error."""
    problem = _digest_problem(digest)
    if problem:
        raise ImageReferenceError(f"invalid digest {_show(digest)}: {problem}")
    return digest


def _digest_problem(digest: str) -> str | None:
    if not _DIGEST.fullmatch(digest):
        return f"digest {_show(digest)} is not 'algorithm:hex' with at least 32 hex digits"
    algorithm, encoded = digest.split(":", 1)
    length = DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        accepted = ", ".join(DIGEST_ALGORITHMS)
        return f"digest algorithm {algorithm!r} is not supported (Docker accepts {accepted})"
    if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
        return f"a {algorithm} digest has exactly {length} lowercase hex digits"
    return None


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
        """The short form Docker users write, as long as it still names the same repository.

        ``docker.io/`` is dropped unless the path's first component would then read as a
        registry (``docker.io/a.b/c``); ``library/`` only for a one-component official name
        (``library/a/a`` stays as it is: ``a/a`` is another repository).
        """
        if self.registry != DOCKER_HUB:
            return self.name
        path = self.repository
        if path.startswith(_OFFICIAL) and "/" not in path[len(_OFFICIAL) :]:
            return path[len(_OFFICIAL) :]
        first, slash, _rest = path.partition("/")
        if slash and _looks_like_domain(first):
            return self.name
        return path

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str, *, digest: str | None = None) -> ImageReference:
        """The same repository at another tag; `digest` pins it (the old digest is dropped:
        it pinned the old tag). Both are validated."""
        validate_tag(tag)
        if digest is not None:
            validate_digest(digest)
        return ImageReference(self.registry, self.repository, tag, digest)

    def __str__(self) -> str:
        text = self.familiar_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.lower() != component


def parse_reference(text: str) -> ImageReference:
    """Parse `text` as Docker would or raise ImageReferenceError saying what is wrong."""
    shown = _show(text)
    if not text or text != text.strip():
        raise ImageReferenceError(f"invalid image reference {shown}: empty or surrounded by whitespace")
    bad = _non_printable(text)
    if bad is not None:
        raise ImageReferenceError(
            f"invalid image reference {shown}: character {text[bad]!r} at position {bad} is not allowed "
            "(references are printable ASCII without spaces)"
        )
    if len(text) > REFERENCE_LENGTH_MAX:
        raise ImageReferenceError(
            f"invalid image reference {shown}: longer than any valid reference ({REFERENCE_LENGTH_MAX} characters)"
        )
    if _IDENTIFIER.fullmatch(text):
        raise ImageReferenceError(
            f"invalid image reference {shown}: a 64-character hex string is an image ID, not a repository name"
        )
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        problem = _digest_problem(digest)
        if problem:
            raise ImageReferenceError(f"invalid image reference {shown}: {problem}")
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ImageReferenceError(f"invalid image reference {shown}: {_TAG_RULE}")
    if not text:
        raise ImageReferenceError(f"invalid image reference {shown}: repository name is empty")
    registry, path = _split_domain(text)
    if len(registry) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise ImageReferenceError(
            f"invalid image reference {shown}: repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if not _DOMAIN.fullmatch(registry):
        raise ImageReferenceError(f"invalid image reference {shown}: {registry!r} is not a valid registry host")
    for component in path.split("/"):
        if not component:
            raise ImageReferenceError(f"invalid image reference {shown}: empty path component")
        if component.lower() != component:
            raise ImageReferenceError(f"invalid image reference {shown}: repository name must be lowercase")
        if not _PATH_COMPONENT.fullmatch(component):
            raise ImageReferenceError(
                f"invalid image reference {shown}: path component {component!r} may only "
                "hold lowercase letters and digits joined by '.', '_', '__' or '-'"
            )
    return ImageReference(registry, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and _looks_like_domain(first):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry in _LEGACY_HUB_NAMES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = _OFFICIAL + path
    return registry, path
