"""Rewrite a requirements file for a plan by exact line edits: the PyTorch index URL, torch and
the paired torchvision, CuPy (renamed across CUDA majors) and onnxruntime-gpu, each only where
the plan changes it. Everything else (comments, order, other pins, line endings) stays."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
