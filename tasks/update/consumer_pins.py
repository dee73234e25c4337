"""The consumers' ONNX Runtime pins: read from a requirements file or a Dockerfile's ``RUN pip
install`` lines (``onnxruntime==X`` or ``onnxruntime-gpu==X``), and rewritten by exact substring
for a coupled bump (the rest of the file stays byte for byte)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.errors import ConfigError
from tasks.research.consumers import ConsumerBump, ConsumerRuntime

_PIN = re.compile(
    r"(?<![A-Za-z0-9._-])(?P<name>onnxruntime(?:[-_]gpu)?)(?P<extras>\[[^\]]*\])?\s*==\s*(?P<version>[0-9][^\s\"';&|)\\#,]*)",
    re.IGNORECASE,
)
_PIP = re.compile(r"\bpip3?\s+install\b|\bpython3?(?:\.\d+)?\s+-m\s+pip\s+install\b")


@dataclass(frozen=True)
class Pin:
    package: str  # onnxruntime | onnxruntime-gpu
    version: str
    line: int  # 1-based


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _pip_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every physical line of a ``RUN`` instruction that runs pip install."""
    out: list[tuple[int, str]] = []
    group: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not group and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        group.append((number, raw))
        if raw.rstrip().endswith("\\"):
            continue
        joined = " ".join(line for _, line in group if not line.lstrip().startswith("#"))
        if joined.lstrip().upper().startswith("RUN") and _PIP.search(joined):
            out.extend((n, line) for n, line in group if not line.lstrip().startswith("#"))
        group = []
    return out


def find_pin(text: str, dockerfile: bool = False) -> Pin | None:
    """The ``onnxruntime``/``onnxruntime-gpu`` ``==`` pin of a requirements file (comments are not
    read), or of a Dockerfile's ``RUN ... pip install`` instructions (continuations included)."""
    lines = (
        _pip_lines(text) if dockerfile else [(n, line.split("#", 1)[0]) for n, line in enumerate(text.splitlines(), 1)]
    )
    for number, body in lines:
        match = _PIN.search(body)
        if match:
            return Pin(_normal(match["name"]), match["version"], number)
    return None


def rewrite_pin(text: str, label: str, bump: ConsumerBump, dockerfile: bool = False) -> str:
    """`text` with the consumer's pin moved to the bump's target (that substring only); a file whose
    pin is not the one planned is refused (the plan is stale)."""
    from tasks.errors import PlanMismatchError

    pin = find_pin(text, dockerfile)
    if pin is None or pin.package != bump.package or pin.version != bump.current:
        found = f"{pin.package}=={pin.version} at line {pin.line}" if pin else "no onnxruntime pin"
        raise PlanMismatchError(
            f"{label}: the plan bumps {bump.package}=={bump.current} -> {bump.target} for consumer "
            f"{bump.consumer}, but the file has {found}: the plan is stale; run migrate again"
        )
    lines = text.splitlines(keepends=True)
    line = lines[pin.line - 1]
    match = next(m for m in _PIN.finditer(line) if m["version"] == pin.version)
    start, end = match.span("version")
    lines[pin.line - 1] = line[:start] + bump.target + line[end:]
    new = "".join(lines)
    again = find_pin(new, dockerfile)
    if again is None or again.version != bump.target:
        raise PlanMismatchError(f"{label}: could not set {bump.package} to {bump.target}")
    return new


def read_consumers(
    settings: Any, root: Path | None = None, read: Callable[[Path], str] | None = None
) -> list[ConsumerRuntime]:
    """Each configured consumer and its ONNX Runtime version (its pin file read relative to the
    repository, or to `root`: a worktree of the branch being validated); a missing file or pin is a
    ConfigError naming the policy file, line and key."""
    out = []
    for index, consumer in enumerate(settings.consumers):
        if consumer.onnxruntime is not None:
            out.append(
                ConsumerRuntime(
                    consumer.name,
                    consumer.onnxruntime,
                    "onnxruntime",
                    None,
                    settings.consumer_key(index, "onnxruntime"),
                )
            )
            continue
        key = "requirements" if consumer.requirements is not None else "dockerfile"
        relative = consumer.requirements if consumer.requirements is not None else consumer.dockerfile
        path = root / relative if root is not None and not relative.is_absolute() else settings.path(relative)
        try:
            text = read(path) if read else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{settings.consumer_key(index, key)}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from exc
        pin = find_pin(text, dockerfile=key == "dockerfile")
        if pin is None:
            raise ConfigError(
                f"{settings.consumer_key(index, key)}: {relative} pins neither onnxruntime nor onnxruntime-gpu "
                "with == (write onnxruntime==X there, or give consumers[].onnxruntime: X)"
            )
        out.append(
            ConsumerRuntime(
                consumer.name, pin.version, pin.package, str(relative), f"{relative}:{pin.line}", key == "dockerfile"
            )
        )
    return out
