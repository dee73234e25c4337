"""NVIDIA's unsupported CUDA releases: live from NVIDIA's manifest, else the bundled table (the
answer says which). Value: ``dict[str, str]`` of release -> reason."""

from __future__ import annotations

from tasks.research.sources.base import Answer, SourceContext
from tasks.research.support import unsupported_or_bundled


class NvidiaSupport:
    name = "nvidia-support"
    label = "NVIDIA support"

    def fetch(self, ctx: SourceContext) -> Answer:
        found, where = unsupported_or_bundled(ctx.facts, ctx.transport if ctx.live else None)
        return Answer(self.name, self.label, where, found)

    def unavailable(self, ctx: SourceContext, problem: str) -> Answer:
        found, where = unsupported_or_bundled(ctx.facts, None)
        return Answer(self.name, self.label, f"{where} (NVIDIA's manifest unavailable: {problem})", found)
