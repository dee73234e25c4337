"""Read what a requirements file (or a Dockerfile's ``RUN pip install`` lines) pins, and rewrite a
requirements file for a plan by exact line edits: the PyTorch index URL, torch and the paired
torchvision, CuPy (renamed across CUDA majors) and onnxruntime-gpu, each only where the plan
changes it. Everything else (comments, order, other pins, line endings) stays."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

_INDEX = re.compile(r"^(?P<opt>\s*--(?:extra-)?index-url[ =]\s*)(?P<url>\S*/whl/)(?P<variant>cu\d+)(?P<rest>/?\s*)$")
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?(?P<op>\s*==\s*)(?P<version>[^\s;#]+)(?P<rest>.*)$"
)


@dataclass(frozen=True)
class RequirementChanges:
    variant: str | None = None  # cu129
    index_base: str | None = None  # https://download.pytorch.org/whl/
    torch: str | None = None
    torchvision: str | None = None
    cupy_package: str | None = None
    cupy_version: str | None = None
    onnxruntime_gpu: str | None = None

    def to_json(self) -> dict[str, str]:
        """Only what changes (an empty dict: nothing)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RequirementChanges:
        data = data or {}
        return cls(**{k: (str(v) if v is not None else None) for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def empty(self) -> bool:
        return not self.to_json()


@dataclass(frozen=True)
class CurrentPins:
    """What a requirements file or a Dockerfile's ``pip install`` lines ask for."""

    index_variant: str | None = None  # cu126, from --extra-index-url .../whl/cu126
    pins: dict[str, str] = field(default_factory=dict)  # normalised name -> version as written (``==``)
    ranges: dict[str, str] = field(default_factory=dict)  # normalised name -> specifier (``>=2.4,<2.9``)

    def version(self, name: str) -> str | None:
        return self.pins.get(name)

    @property
    def cupy_package(self) -> str | None:
        names = [n for n in (*self.pins, *self.ranges) if n.startswith("cupy-cuda")]
        return names[0] if names else None

    def wants(self, name: str) -> bool:
        return name in self.pins or name in self.ranges

    def to_json(self) -> dict[str, Any]:
        return {"index_variant": self.index_variant, "pins": dict(self.pins), "ranges": dict(self.ranges)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CurrentPins:
        data = data or {}
        return cls(data.get("index_variant"), dict(data.get("pins") or {}), dict(data.get("ranges") or {}))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _add(requirement: str, pins: dict[str, str], ranges: dict[str, str]) -> None:
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return
    specs = list(req.specifier)
    name = _normal(req.name)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        pins[name] = specs[0].version
    elif specs:
        ranges[name] = str(req.specifier)


def read_requirements(text: str) -> CurrentPins:
    """The index variant, ``==`` pins and ranges of a requirements file (options other than the
    index URL, includes and editable lines are not followed)."""
    variant: str | None = None
    pins: dict[str, str] = {}
    ranges: dict[str, str] = {}
    for line in text.splitlines():
        body = line.split(" #", 1)[0].strip()
        if not body or body.startswith("#"):
            continue
        index = _INDEX.match(body)
        if index:
            variant = index["variant"]
            continue
        if body.startswith("-"):
            continue
        _add(body, pins, ranges)
    return CurrentPins(variant, pins, ranges)


_PIP_INSTALL = re.compile(r"\bpip3?\s+install\b|\bpython3?(?:\.\d+)?\s+-m\s+pip\s+install\b")
_RUN_PIN = re.compile(r"""(?:^|[\s"'])([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*==\s*[^\s"';&|)]+)""")
_RUN_INDEX = re.compile(r"--(?:extra-)?index-url[ =]\s*\S*/whl/(cu\d+)")


def dockerfile_pins(text: str) -> CurrentPins:
    """``name==version`` pins in the ``RUN ... pip install`` instructions of a Dockerfile."""
    from tasks.dockerfile.lexer import lex

    variant: str | None = None
    pins: dict[str, str] = {}
    ranges: dict[str, str] = {}
    for instruction in lex(text).instructions:
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|\|\||;|\n", instruction.text):
            if not _PIP_INSTALL.search(command):
                continue
            found = _RUN_INDEX.search(command)
            variant = found[1] if found else variant
            for match in _RUN_PIN.finditer(command):
                _add(match[1].replace(" ", ""), pins, ranges)
    return CurrentPins(variant, pins, ranges)


def _with_local(version: str, old: str, variant: str | None) -> str:
    """Keep the file's style: a pin written ``2.5.1+cu126`` gets the new variant too."""
    if "+" in old and variant:
        return f"{version}+{variant}"
    return version


def rewrite_requirements(text: str, changes: RequirementChanges) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        index = _INDEX.match(body)
        if index and changes.variant:
            base = changes.index_base or index["url"]
            body = f"{index['opt']}{base}{changes.variant}{index['rest']}"
        pin = _PIN.match(body)
        if pin:
            name = pin["name"].lower().replace("_", "-")
            new_name, new_version = pin["name"], None
            if name == "torch" and changes.torch:
                new_version = _with_local(changes.torch, pin["version"], changes.variant)
            elif name == "torchvision" and changes.torchvision:
                new_version = _with_local(changes.torchvision, pin["version"], changes.variant)
            elif name.startswith("cupy-cuda") and changes.cupy_package and changes.cupy_version:
                new_name, new_version = changes.cupy_package, changes.cupy_version
            elif name == "onnxruntime-gpu" and changes.onnxruntime_gpu:
                new_version = changes.onnxruntime_gpu
            if new_version is not None:
                body = f"{new_name}{pin['extras'] or ''}{pin['op']}{new_version}{pin['rest']}"
        out.append(body + ending)
    return "".join(out)
