"""NVIDIA's support state of a CUDA release: the policy's unsupported list (live from
``manifests/cuda.yaml`` or bundled), the image config's EOL flag, the registry (deleted tags,
newer patches: "newer version available" is EOL by NVIDIA's rule), NVIDIA's two-majors rule
(CUDA 11 is EOL once 13 is out) and the estimated deletion date."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date

from tasks.errors import BaseImageError, SourceProtocolError
from tasks.http import HttpTransport, Outcome, classify, speaking_as
from tasks.research.facts import EolEntry, Facts
from tasks.statuses import SupportStatus

_ITEM = re.compile(r"^\s*-\s*([0-9]+\.[0-9]+\.[0-9]+)\s*(?:#\s*(.*))?$")


def parse_unsupported(manifest: str, url: str = "manifests/cuda.yaml") -> dict[str, str]:
    """``unsupported.release_label`` of NVIDIA's manifest with each line's comment as the reason
    (the comments carry the reason, so the text is read line by line, not as YAML)."""
    lines = manifest.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("unsupported:"))
        label = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("release_label:"))
    except StopIteration as exc:
        raise SourceProtocolError(f"{url}: no 'unsupported: release_label:' list", url=url) from exc
    found: dict[str, str] = {}
    for line in lines[label + 1 :]:
        if not line.strip():
            continue
        match = _ITEM.match(line)
        if match is None:
            break
        found[match[1]] = (match[2] or "unsupported").strip()
    return found


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class SupportState:
    version: str
    status: SupportStatus
    reasons: tuple[str, ...]
    estimated_deletion: date | None = None

    @property
    def supported(self) -> bool:
        return self.status == SupportStatus.SUPPORTED


def support_state(
    version: str,
    facts: Facts,
    unsupported: Mapping[str, str],
    *,
    config_eol: bool | None,
    newer_patch: str | None,
    tag_present: bool,
    newest_major: int | None = None,
) -> SupportState:
    """Combine every signal about one release into a status with its reasons; `newest_major` is
    the newest CUDA major the registry lists (the two-majors rule also reads it)."""
    reasons = []
    entry: EolEntry | None = facts.eol.get(version)
    major = int(version.split(".")[0])
    ended = facts.ended_by(major)
    two_majors_deletion = None
    if ended is not None:
        reasons.append(
            f"CUDA {major}.x is end of life by NVIDIA's two-majors rule ({facts.major_support_wording}); "
            f"CUDA {ended.release} was released {ended.released.isoformat()}"
        )
        two_majors_deletion = add_months(ended.released, facts.deletion_after_months)
    elif newest_major is not None and newest_major >= major + facts.majors_at_a_time:
        reasons.append(
            f"CUDA {major}.x is end of life by NVIDIA's two-majors rule ({facts.major_support_wording}): "
            f"the registry lists CUDA {newest_major}"
        )
    if version in unsupported:
        reasons.append(f"NVIDIA lists {version} as unsupported: {unsupported[version]}")
    if config_eol:
        reasons.append("image config sets NVIDIA_CUDA_END_OF_LIFE (deprecation banner at start-up)")
    if newer_patch:
        reasons.append(f"newer patch {newer_patch} of the same minor exists (EOL by NVIDIA's rule)")
    deletion = entry.estimated_deletion if entry else None
    if deletion is None and entry and entry.marked_eol:
        deletion = add_months(entry.marked_eol, facts.deletion_after_months)
    if deletion is None:
        deletion = two_majors_deletion
    if not tag_present:
        return SupportState(version, SupportStatus.DELETED, ("tag is gone from the registry", *reasons), deletion)
    if reasons:
        return SupportState(version, SupportStatus.EOL, tuple(reasons), deletion)
    return SupportState(version, SupportStatus.SUPPORTED, ())


class Later(Mapping[str, str]):
    """NVIDIA's unsupported list while it is still being fetched: the registry research starts at
    once and only the planning, which reads it, waits for it."""

    def __init__(self, future: Future[tuple[Mapping[str, str], str]]) -> None:
        self._future = future

    def _value(self) -> Mapping[str, str]:
        return self._future.result()[0]

    def __getitem__(self, key: str) -> str:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())


def unsupported_or_bundled(facts: Facts, transport: HttpTransport | None) -> tuple[dict[str, str], str]:
    """NVIDIA's unsupported list: live when `transport` is given and the manifest answers, else
    the bundled table; the second value says which (a failure of the live source is said too)."""
    try:
        return unsupported_releases(facts, transport)
    except BaseImageError as exc:
        found, where = unsupported_releases(facts, None)
        return found, f"{where} (NVIDIA's manifest unavailable: {exc})"


@speaking_as("source")
def unsupported_releases(facts: Facts, transport: HttpTransport | None) -> tuple[dict[str, str], str]:
    """NVIDIA's unsupported list: live from its manifest, else the bundled table (said so)."""
    if transport is not None:
        response = transport.request("GET", facts.support_live_url)
        if classify(response.status_code) is Outcome.OK:
            return parse_unsupported(response.text, facts.support_live_url), facts.support_live_url
    bundled = {release: entry.reason for release, entry in facts.eol.items()}
    return bundled, f"bundled config/data/nvidia-support.yaml (as of {facts.eol_as_of})"
