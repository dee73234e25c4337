"""Scan: every base image of the managed (or given) Dockerfiles, parsed, and what the registry
says about it. Each unique reference is looked up once, with bounded concurrency."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.dockerfile.parser import BaseImage, read_dockerfile
from tasks.errors import (
    BaseImageError,
    DockerfileError,
    RegistryAuthError,
    RegistryUnreachableError,
)
from tasks.images.reference import ImageReference
from tasks.images.tags import CudaTag, NgcTag
from tasks.registry.session import ImageInfo, RegistrySession
from tasks.statuses import LookupStatus

# Lookup statuses that become a `skip` code in the JSON rows (the parser's codes come first).
LOOKUP_SKIP_CODES = {LookupStatus.NOT_FOUND: "not-found", LookupStatus.UNREACHABLE: "unreachable"}
_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


# Names Docker and Podman/Buildah tools treat as build files: Dockerfile and Containerfile
# (Podman's default), with a capital or small first letter, alone, with a suffix
# (Dockerfile.ngc, Containerfile-dev) or as an extension (train.Dockerfile, app.containerfile).
_BUILD_FILE = re.compile(r"(?:[Dd]ocker|[Cc]ontainer)file(?:[._-].+)?|.+\.(?:[Dd]ocker|[Cc]ontainer)file")
# Backups and editor leftovers, and BuildKit's per-Dockerfile ignore files, are not build files.
_NOT_BUILD_FILES = (".bak", ".orig", ".rej", ".swp", "~", ".dockerignore", ".containerignore")


def is_dockerfile_name(name: str) -> bool:
    """Dockerfile/Containerfile, ``<name>.<variant>`` of them and ``*.Dockerfile``/``*.containerfile``;
    backups (``.bak``...) and ``.dockerignore`` files are not managed."""
    if name.lower().endswith(_NOT_BUILD_FILES):
        return False
    return _BUILD_FILE.fullmatch(name) is not None


def discover(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories searched recursively for Dockerfiles and Containerfiles
    (regular files only: a FIFO or socket with such a name is not read). Sorted, no repeats."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                for name in sorted(files):
                    candidate = Path(root) / name
                    if is_dockerfile_name(name) and candidate.is_file():
                        found[candidate] = None
        elif path.exists():
            found[path] = None
        else:
            raise DockerfileError(f"{path}: no such file or directory")
    return list(found)


@dataclass(frozen=True)
class ScanTarget:
    path: Path
    label: str
    build_args: Mapping[str, str] = field(default_factory=dict)


# Lookups that did not get the registry's answer: `baseimage scan` exits 3 when any row has one.
# "not found" is an answer (the registry says the tag does not exist: a finding), so is "ok";
# "skipped" was not asked (no registry reference, or --no-registry).
FAILED_STATUSES = frozenset(s for s in LookupStatus if s.failed)


@dataclass(frozen=True)
class Lookup:
    """The registry's answer for one reference, or why there is none."""

    status: LookupStatus
    info: ImageInfo | None = None
    error: str | None = None


@dataclass(frozen=True)
class ScanRow:
    base: BaseImage
    lookup: Lookup

    @property
    def reference(self) -> ImageReference | None:
        return self.base.reference

    @property
    def cuda(self) -> CudaTag | None:
        return CudaTag.try_parse(self.base.reference.tag) if self.base.reference else None

    @property
    def ngc(self) -> NgcTag | None:
        return NgcTag.try_parse(self.base.reference.tag) if self.base.reference else None

    def to_json(self) -> dict[str, Any]:
        ref = self.base.reference
        info = self.lookup.info
        cuda, ngc = self.cuda, self.ngc
        env = info.env if info else {}
        return {
            "file": self.base.file,
            "line": self.base.line,
            "image": self.base.image if self.base.image is not None else self.base.raw,
            "registry": ref.registry if ref else None,
            "repository": ref.repository if ref else None,
            "tag": ref.tag if ref else None,
            "pinned_digest": ref.digest if ref else None,
            "stage": self.base.stage,
            "alias": self.base.alias,
            "platform": self.base.platform,
            "kind": "cuda" if cuda else "ngc" if ngc else None,
            "cuda": _cuda_json(cuda),
            "ngc": _ngc_json(ngc),
            "registry_status": str(self.lookup.status),
            "registry_error": self.lookup.error,
            "digest": info.digest if info else None,
            "media_type": info.media_type if info else None,
            "cuda_version": info.cuda_version if info else None,
            "end_of_life": info.end_of_life if info else None,
            "cudnn_version": env.get("NV_CUDNN_VERSION"),
            "require_cuda": env.get("NVIDIA_REQUIRE_CUDA"),
            "platforms": [str(p) for p in info.platforms] if info else [],
            "skip_reason": self.base.skip_reason,
            # Why there is no registry answer, as a code: the parser's, or the lookup's.
            "skip": self.base.skip or LOOKUP_SKIP_CODES.get(self.lookup.status),
        }


def _cuda_json(tag: CudaTag | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    return {
        "version": tag.version_str,
        "extra": tag.extra,
        "flavor": tag.flavor,
        "os": tag.os,
        "os_version": tag.os_version,
    }


def _ngc_json(tag: NgcTag | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    return {"release": tag.release, "python": tag.python_major, "variant": tag.variant}


def lookup(session: RegistrySession, ref: ImageReference) -> Lookup:
    """Ask the registry about `ref`; every failure becomes a status, never an exception."""
    try:
        info = session.inspect(ref)
    except RegistryUnreachableError as exc:
        return Lookup(LookupStatus.UNREACHABLE, error=str(exc))
    except RegistryAuthError as exc:
        return Lookup(LookupStatus.AUTH_ERROR, error=str(exc))
    except BaseImageError as exc:  # protocol errors, transient failures after every attempt
        return Lookup(LookupStatus.ERROR, error=str(exc))
    if info is None:
        return Lookup(LookupStatus.NOT_FOUND, error=f"{ref} does not exist in {ref.registry}")
    return Lookup(LookupStatus.OK, info=info)


def scan(
    targets: Sequence[ScanTarget],
    session: RegistrySession | None,
    max_threads: int = 64,
    on_lookup: Callable[[ImageReference, Lookup], None] | None = None,
) -> list[ScanRow]:
    """Parse every target and look up each unique reference once (none when `session` is None)."""
    bases: list[BaseImage] = []
    for target in targets:
        bases.extend(read_dockerfile(target.path, target.build_args, target.label).bases)
    unique = list(dict.fromkeys(b.reference for b in bases if b.reference is not None))
    results: dict[ImageReference, Lookup] = {}
    if session is not None and unique:

        def run(ref: ImageReference) -> None:
            results[ref] = lookup(session, ref)
            if on_lookup:
                on_lookup(ref, results[ref])

        # A thread per unique reference (capped): lookups wait on shared memo entries and the
        # session's transport bounds the requests in flight, so its slots stay busy.
        with ThreadPoolExecutor(max_workers=max(1, min(max_threads, len(unique)))) as pool:
            list(pool.map(run, unique))
    skipped = Lookup(LookupStatus.SKIPPED, error="registry lookups are off")
    rows = []
    for base in bases:
        if base.reference is None:
            rows.append(ScanRow(base, Lookup(LookupStatus.SKIPPED, error=base.skip_reason)))
        else:
            rows.append(ScanRow(base, results.get(base.reference, skipped)))
    return rows
