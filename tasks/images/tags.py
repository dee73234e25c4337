"""The CUDA and NGC tag models, their ordering and the "same track" predicate (pure).

CUDA tags: ``<x.y.z>-[<extra>-]<flavor>-<os><os_version>`` (NVIDIA's ``doc/supported-tags.md``),
extra one of ``cudnn8`` (<= 12.2.2), ``cudnn9`` (12.3.2), ``cudnn`` (unnumbered, >= 12.4.1) or
``tensorrt``. NGC tags: ``YY.MM-py3`` with an optional ``-igpu`` variant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from tasks.errors import TagError

Flavor = Literal["base", "runtime", "devel"]
FLAVORS: tuple[Flavor, ...] = ("base", "runtime", "devel")

# ASCII classes and whole-string matches only: Python's ``\d`` accepts ``١٢`` and ``$`` accepts a
# trailing newline. Version numbers have no leading zeros (NVIDIA never writes them), so a parsed
# tag prints back exactly as it was written.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_CUDA_TAG = re.compile(
    rf"(?P<version>{_NUMBER}\.{_NUMBER}\.{_NUMBER})"
    r"(?:-(?P<extra>cudnn[0-9]*|tensorrt))?"
    r"-(?P<flavor>base|runtime|devel)"
    r"-(?P<os>ubuntu|ubi|rockylinux|centos|oraclelinux|amzn|azl|cm|opensuse)"
    r"(?P<os_version>[0-9]+(?:\.[0-9]+)?)"
)
_NGC_TAG = re.compile(r"(?P<yy>[0-9]{2})\.(?P<mm>[0-9]{2})-py(?P<py>[0-9])(?:-(?P<variant>igpu))?")
TAG_LENGTH_MAX = 128  # Docker's limit for any tag


def extra_family(extra: str | None) -> str | None:
    """cudnn8, cudnn9 and cudnn are one family: NVIDIA renamed the same variant twice."""
    if extra is None:
        return None
    return "cudnn" if extra.startswith("cudnn") else extra


@dataclass(frozen=True)
class CudaTag:
    """A parsed ``nvidia/cuda`` tag."""

    version: tuple[int, int, int]
    flavor: Flavor
    os: str
    os_version: str
    extra: str | None = None

    @classmethod
    def parse(cls, tag: str) -> CudaTag:
        """Parse `tag` or raise TagError naming the tag and the expected scheme."""
        match = _CUDA_TAG.fullmatch(tag) if len(tag) <= TAG_LENGTH_MAX else None
        if match is None:
            raise TagError(
                f"{tag!r} is not a CUDA image tag: expected "
                "'<major>.<minor>.<patch>-[cudnn|cudnn8|cudnn9|tensorrt-]<base|runtime|devel>"
                "-<os><version>', e.g. '12.6.3-cudnn-runtime-ubuntu22.04'"
            )
        major, minor, patch = (int(p) for p in match["version"].split("."))
        flavor = match["flavor"]
        extra = match["extra"]
        if extra is not None and flavor == "base":
            raise TagError(f"{tag!r} is not a CUDA image tag: {extra} exists only for runtime/devel")
        return cls((major, minor, patch), flavor, match["os"], match["os_version"], extra)  # type: ignore[arg-type]

    @classmethod
    def try_parse(cls, tag: str | None) -> CudaTag | None:
        """Parse, or None when `tag` is not a CUDA tag (memoised: a review parses the same
        ~1,200-tag list for every image on a repository)."""
        return None if tag is None else _cuda_or_none(tag)

    @property
    def version_str(self) -> str:
        return ".".join(str(p) for p in self.version)

    @property
    def minor(self) -> tuple[int, int]:
        """``(12, 6)`` for 12.6.3: what PyTorch's ``cu126`` and the driver tables key on."""
        return self.version[0], self.version[1]

    @property
    def os_label(self) -> str:
        return f"{self.os}{self.os_version}"

    @property
    def track(self) -> tuple[str | None, str, str]:
        """What must stay equal across an update: extra family, flavor and OS."""
        return (extra_family(self.extra), self.flavor, self.os_label)

    def same_track(self, other: CudaTag) -> bool:
        """True when `other` is the same image line (cudnn8/cudnn9/cudnn count as one)."""
        return self.track == other.track

    def on_track(self, version: str, tags: Iterable[str] | None = None, os_label: str | None = None) -> str:
        """This image line at `version` (and `os_label`), as NVIDIA wrote the tag in `tags`: the
        cuDNN variant is ``cudnn8`` up to 12.2.2, ``cudnn9`` on 12.3.2 and ``cudnn`` from 12.4.1, so
        11.8.0-cudnn8-runtime-ubuntu22.04 at 12.9.1 is 12.9.1-cudnn-runtime-ubuntu22.04. Without
        `tags`, or when they hold no such tag, the same words with the new version."""
        os_now = os_label or self.os_label
        words = str(self).replace(self.version_str, version, 1)
        if os_label is not None:
            words = words.replace(self.os_label, os_label)
        if tags is None:
            return words
        listed = list(tags)
        if words in listed:
            return words
        family = extra_family(self.extra)
        found = [
            (c.extra != family, t)  # NVIDIA publishes one spelling per release; were there several,
            for t in listed  # the unnumbered one (``cudnn``) is its current name
            if (c := _cuda_or_none(t)) is not None
            and c.version_str == version
            and (extra_family(c.extra), c.flavor, c.os_label) == (family, self.flavor, os_now)
        ]
        found.sort()
        return found[0][1] if found else words

    def __str__(self) -> str:
        extra = f"{self.extra}-" if self.extra else ""
        return f"{self.version_str}-{extra}{self.flavor}-{self.os_label}"

    def __lt__(self, other: CudaTag) -> bool:
        return self.sort_key < other.sort_key

    @property
    def sort_key(self) -> tuple[tuple[int, int, int], str, str, str, str]:
        return (self.version, self.extra or "", self.flavor, self.os, self.os_version)


@dataclass(frozen=True)
class NgcTag:
    """A parsed NGC framework tag such as ``25.04-py3`` or ``25.04-py3-igpu``."""

    year: int
    month: int
    python_major: int = 3
    variant: str | None = None

    @classmethod
    def parse(cls, tag: str) -> NgcTag:
        """Parse `tag` or raise TagError naming the tag and the expected scheme."""
        match = _NGC_TAG.fullmatch(tag)
        if match is None:
            raise TagError(f"{tag!r} is not an NGC tag: expected 'YY.MM-py3' or 'YY.MM-py3-igpu', e.g. '25.04-py3'")
        month = int(match["mm"])
        if not 1 <= month <= 12:
            raise TagError(f"{tag!r} is not an NGC tag: month {match['mm']} is not 01-12")
        return cls(2000 + int(match["yy"]), month, int(match["py"]), match["variant"])

    @classmethod
    def try_parse(cls, tag: str | None) -> NgcTag | None:
        """Parse, or None when `tag` is not an NGC tag (memoised)."""
        return None if tag is None else _ngc_or_none(tag)

    @property
    def release(self) -> str:
        """``25.04``: the name NVIDIA's release notes use."""
        return f"{self.year % 100:02d}.{self.month:02d}"

    def same_track(self, other: NgcTag) -> bool:
        return (self.python_major, self.variant) == (other.python_major, other.variant)

    @property
    def sort_key(self) -> tuple[int, int, int, str]:
        return (self.year, self.month, self.python_major, self.variant or "")

    def __lt__(self, other: NgcTag) -> bool:
        return self.sort_key < other.sort_key

    def __str__(self) -> str:
        variant = f"-{self.variant}" if self.variant else ""
        return f"{self.release}-py{self.python_major}{variant}"


@functools.lru_cache(maxsize=1 << 16)
def _cuda_or_none(tag: str) -> CudaTag | None:
    try:
        return CudaTag.parse(tag)
    except TagError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _ngc_or_none(tag: str) -> NgcTag | None:
    try:
        return NgcTag.parse(tag)
    except TagError:
        return None


TagT = TypeVar("TagT", CudaTag, NgcTag)


def newest_on_track(current: TagT, candidates: list[TagT]) -> TagT | None:
    """The highest candidate on `current`'s track, or None when there is none."""
    same = [c for c in candidates if c.same_track(current)]
    return max(same, key=lambda c: c.sort_key) if same else None
