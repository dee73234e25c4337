"""The bundled facts (baseimage's config/data/*.yaml: NVIDIA's support table, drivers, PyTorch,
CuPy, ONNX Runtime, Ubuntu, NGC), read from disk, never fetched: which files the review read and
how old they are, and a finding for each file older than two quarters, naming where to refresh
it. Value: the oldest file's ``as_of`` date."""

from __future__ import annotations

from tasks.research.sources.base import Answer, SourceContext

MAX_AGE_DAYS = 183  # two quarterly reviews: older facts may miss a release or an end of life


class BundledFacts:
    name = "facts"
    label = "bundled facts"

    def fetch(self, ctx: SourceContext) -> Answer:
        files = ctx.facts.sources
        if not files:
            return self.unavailable(ctx, "no facts file was loaded")
        dates = sorted(as_of for _, as_of in files.values())
        span = f"as of {dates[0]}" if dates[0] == dates[-1] else f"as of {dates[0]} to {dates[-1]}"
        findings = tuple(
            f"the bundled facts in config/data/{name}.yaml are {(ctx.today - as_of).days} days old (as of "
            f"{as_of}): releases and end-of-life dates since then are not in them; upgrade baseimage, or "
            f"update the file from {source}"
            for name, (source, as_of) in sorted(files.items())
            if (ctx.today - as_of).days > MAX_AGE_DAYS
        )
        return Answer(
            self.name, self.label, f"baseimage's config/data ({len(files)} files, {span})", dates[0], findings
        )

    def unavailable(self, ctx: SourceContext, problem: str) -> Answer:
        return Answer(self.name, self.label, f"not checked: {problem}")
