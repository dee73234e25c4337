"""Version specifiers and index URLs as a plan edits them (pure): a pin takes the chosen version
(keeping a ``+cuXYZ`` local part's style), a range moves only as far as it must to admit the
chosen version, and the CUDA wheel variant of a PyTorch-style index URL is replaced in place.

Every function returns text in the form it was given (spacing, operator order, precision) with
only the characters that must change changed; the result is checked with ``packaging``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from tasks.errors import BaseImageError

# One clause of a specifier: the operator, then the version, each with its position.
_CLAUSE = re.compile(r"\s*(?P<op>===|~=|==|!=|<=|>=|<|>)\s*(?P<version>[^\s,;()]+)\s*")
# A CUDA wheel variant in an index URL: a path segment `cu126` (download.pytorch.org/whl/cu126) or
# one ending in `-cu126`/`_cu126` (a mirror named pytorch-cu126).
_VARIANT = re.compile(r"(?:(?<=/)|(?<=[-_]))(cu\d{3,4})(?=/|$|\?|#)")


class SpecifierError(BaseImageError):
    """A version specifier cannot be moved to admit the chosen version without rewriting it."""


@dataclass(frozen=True)
class Clause:
    op: str
    version: str
    start: int  # of the version text, in the specifier text
    end: int


@dataclass(frozen=True)
class Moved:
    """A specifier after the move: its text, and whether it had to change."""

    text: str
    changed: bool


def clauses(spec: str) -> list[Clause]:
    """The clauses of a specifier as written (``>= 13.0, <13.4``), with the version positions."""
    found = []
    pos = 0
    while pos < len(spec):
        match = _CLAUSE.match(spec, pos)
        if match is None:
            raise SpecifierError(f"{spec!r} is not a version specifier")
        found.append(Clause(match["op"], match["version"], match.start("version"), match.end("version")))
        pos = match.end()
        if pos < len(spec):
            if spec[pos] != ",":
                raise SpecifierError(f"{spec!r} is not a version specifier")
            pos += 1
    return found


def with_local(version: str, old: str, variant: str | None) -> str:
    """`version` in the style of the pin it replaces: ``2.5.1+cu124`` -> ``2.13.0+cu126``."""
    if "+" in old:
        return f"{version}+{variant or old.partition('+')[2]}"
    return version


def is_pin(spec: str) -> bool:
    """A single ``==`` (or ``===``) clause without a wildcard."""
    try:
        found = clauses(spec)
    except SpecifierError:
        return False
    return len(found) == 1 and found[0].op in ("==", "===") and not found[0].version.endswith(".*")


def _release(text: str) -> tuple[int, ...]:
    return Version(text).release


def _bump(bound: str, version: Version) -> str:
    """The smallest bound at `bound`'s precision above `version` (``<13.4`` for 13.6.0 -> 13.7)."""
    width = len(_release(bound))
    parts = list((*version.release, *([0] * width))[:width])
    parts[-1] += 1
    return ".".join(map(str, parts))


def _at_precision(bound: str, version: Version) -> str:
    width = max(len(_release(bound)), 1)
    return ".".join(map(str, (*version.release, *([0] * width))[:width]))


def _moved_clause(clause: Clause, version: Version) -> tuple[str, str] | None:
    """(operator, version text) for a clause that does not admit `version`, or None if it does."""
    try:
        admits = SpecifierSet(f"{clause.op}{clause.version}").contains(version, prereleases=True)
    except InvalidSpecifier as exc:
        raise SpecifierError(f"{clause.op}{clause.version} is not a version specifier") from exc
    if admits:
        return None
    op, bound = clause.op, clause.version
    if op in ("==", "==="):
        if bound.endswith(".*"):
            return op, _at_precision(bound[:-2], version) + ".*"
        return op, str(version)
    if op in (">=", ">"):
        return ">=", str(version)
    if op == "<=":
        return op, str(version)
    if op == "<":
        return op, _bump(bound, version)
    if op == "~=":
        return op, _at_precision(bound, version)
    raise SpecifierError(f"!={bound} excludes {version}: the plan's version is refused by the pin itself")


def admit(spec: str, version: str) -> Moved:
    """`spec` moved only as far as needed to admit `version` (unchanged when it already does).
    Each clause keeps its operator where it can (``>X`` becomes ``>=V``); the text between the
    clauses is kept."""
    chosen = Version(version)
    found = clauses(spec)
    out, pos = [], 0
    for clause in found:
        moved = _moved_clause(clause, chosen)
        if moved is None:
            continue
        op, bound = moved
        op_start = spec.rindex(clause.op, 0, clause.start)
        out.append(spec[pos:op_start])
        out.append(op + spec[op_start + len(clause.op) : clause.start] + bound)
        pos = clause.end
    out.append(spec[pos:])
    text = "".join(out)
    try:
        ok = SpecifierSet(text.replace(" ", "")).contains(chosen, prereleases=True)
    except InvalidSpecifier as exc:
        raise SpecifierError(f"moving {spec!r} to admit {version} gave {text!r}, which is not a specifier") from exc
    if not ok:
        raise SpecifierError(f"{spec!r} cannot be moved to admit {version}: change it by hand")
    return Moved(text, text != spec)


def pin_or_range(spec: str, version: str, variant: str | None) -> Moved:
    """A pin set to `version` (its local part following `variant`), a range moved to admit it."""
    found = clauses(spec)
    if is_pin(spec):
        clause = found[0]
        new = with_local(version, clause.version, variant)
        return Moved(spec[: clause.start] + new + spec[clause.end :], new != clause.version)
    return admit(spec, version)


def url_variant(url: str) -> tuple[int, int] | None:
    """Where the CUDA wheel variant (``cu126``) sits in an index URL's path, if it has one."""
    scheme_end = url.find("://")
    path_start = url.find("/", scheme_end + 3 if scheme_end >= 0 else 0)
    if path_start < 0:
        return None
    found = None
    for match in _VARIANT.finditer(url, path_start):
        found = match.span(1)
    return found


def variant_of(url: str) -> str | None:
    span = url_variant(url)
    return url[span[0] : span[1]] if span else None


def with_variant(url: str, variant: str, base: str | None = None) -> str:
    """`url` on `variant` (``.../whl/cu124`` -> ``.../whl/cu126``); with `base`, a ``/whl/``-style
    URL also moves to that index base (``https://mirror/whl/``)."""
    span = url_variant(url)
    if span is None:
        return url
    head = url[: span[0]]
    if base and head.endswith("/whl/"):
        head = base if base.endswith("/") else base + "/"
    return head + variant + url[span[1] :]


__all__ = [
    "Clause",
    "Moved",
    "SpecifierError",
    "admit",
    "clauses",
    "is_pin",
    "pin_or_range",
    "url_variant",
    "variant_of",
    "with_local",
    "with_variant",
]
