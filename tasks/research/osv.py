"""Security advisories from OSV for the pinned requirements: live ``querybatch`` or a directory of
OSV JSON records. Local versions (``2.5.0+cu126``) are matched by their public part."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from tasks.errors import SourceProtocolError
from tasks.http import HttpTransport, Outcome, classify, speaking_as

OSV_API = "https://api.osv.dev/v1"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str  # as written, local part included

    @property
    def public(self) -> str:
        return self.version.split("+", 1)[0]


@dataclass
class Advisory:
    id: str
    package: str
    version: str
    summary: str
    severity: str
    fixed: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


def _severity(record: dict[str, Any]) -> str:
    specific = (record.get("database_specific") or {}).get("severity")
    if specific:
        return str(specific).upper()
    for item in record.get("severity") or []:
        if item.get("score"):
            return f"{item.get('type', 'CVSS')}: {item['score']}"
    return "UNKNOWN"


def affects(record: dict[str, Any], pin: Pin) -> tuple[bool, list[str]]:
    """Whether `record` affects `pin` (PyPI), and the fixed versions it names."""
    try:
        version = Version(pin.public)
    except InvalidVersion:
        return False, []
    hit, fixed = False, []
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        if package.get("ecosystem") != "PyPI" or package.get("name", "").lower().replace("_", "-") != pin.name:
            continue
        if pin.public in (affected.get("versions") or []):
            hit = True
        for rng in affected.get("ranges") or []:
            if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            introduced, inside = None, False
            for event in rng.get("events") or []:
                if "introduced" in event:
                    introduced = event["introduced"]
                    inside = introduced == "0" or version >= Version(introduced)
                elif "fixed" in event:
                    fixed.append(str(event["fixed"]))
                    if inside and version < Version(event["fixed"]):
                        hit = True
                    inside = False
                elif "last_affected" in event:
                    if inside and version <= Version(event["last_affected"]):
                        hit = True
                    inside = False
            if inside:
                hit = True
    return hit, fixed


def _advisory(record: dict[str, Any], pin: Pin, fixed: list[str]) -> Advisory:
    return Advisory(
        str(record["id"]),
        pin.name,
        pin.version,
        str(record.get("summary") or record.get("details", ""))[:200],
        _severity(record),
        sorted(set(fixed), key=Version),
        list(record.get("aliases") or []),
    )


def offline_advisories(pins: list[Pin], directory: Path) -> list[Advisory]:
    """Advisories from a directory of OSV JSON records (e.g. an export of the PyPI ecosystem)."""
    found = []
    for path in sorted(directory.rglob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SourceProtocolError(f"{path}: not an OSV JSON record ({exc})") from exc
        for pin in pins:
            hit, fixed = affects(record, pin)
            if hit:
                found.append(_advisory(record, pin, fixed))
    return found


@speaking_as("source")
def live_advisories(pins: list[Pin], transport: HttpTransport, api: str = OSV_API) -> list[Advisory]:
    """``POST /v1/querybatch`` for every pin, then ``GET /v1/vulns/{id}`` once per advisory."""
    if not pins:
        return []
    queries = [{"package": {"name": p.name, "ecosystem": "PyPI"}, "version": p.public} for p in pins]
    response = transport.request(
        "POST",
        f"{api}/querybatch",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"queries": queries}).encode(),
    )
    if classify(response.status_code) is not Outcome.OK:
        raise SourceProtocolError(f"POST {api}/querybatch: HTTP {response.status_code}", url=f"{api}/querybatch")
    results = json.loads(response.content).get("results") or []
    found = []
    records: dict[str, dict[str, Any]] = {}
    for pin, result in zip(pins, results, strict=False):
        for vuln in result.get("vulns") or []:
            vid = str(vuln["id"])
            if vid not in records:
                detail = transport.request("GET", f"{api}/vulns/{vid}")
                records[vid] = json.loads(detail.content) if detail.status_code == 200 else {"id": vid}
            _, fixed = affects(records[vid], pin)
            found.append(_advisory(records[vid], pin, fixed))
    return found
