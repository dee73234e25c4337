"""The review-wide research sources, each read once per review as its own task. A new source is
one module with a class that has the `Source` protocol's ``name``, ``label``, ``fetch`` and
``unavailable`` (tasks/research/sources/base.py), and one line here; its answer's ``where`` goes
into every report's sources line and its ``findings`` into the report's findings
(docs/architecture.md walks through adding one). The source read per base, the PyTorch index,
is a `WheelIndex` (base.py) built by the composition root."""

from __future__ import annotations

from tasks.research.sources.advisories import Advisories
from tasks.research.sources.base import Answer, Source, SourceContext, WheelIndex
from tasks.research.sources.bundled_facts import BundledFacts
from tasks.research.sources.nvidia_support import NvidiaSupport

SOURCES: tuple[Source, ...] = (
    NvidiaSupport(),
    Advisories(),
    BundledFacts(),
)

__all__ = ["SOURCES", "Answer", "Source", "SourceContext", "WheelIndex"]
