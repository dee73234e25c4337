"""Security advisories (OSV) for the pins of every reviewed image's stack (its requirements file
with its -r/-c includes, and its pyproject.toml), looked up once together: from an OSV record
directory (``--osv-db``, ``research.osv_db``), else live, else not checked. Value:
``dict[str, list[osv.Advisory]]`` of requirements file -> advisories."""

from __future__ import annotations

from tasks.errors import BaseImageError
from tasks.research import osv
from tasks.research.sources.base import Answer, SourceContext
from tasks.update.coupled import file_reader, read_stack


class Advisories:
    name = "advisories"
    label = "advisories"

    def fetch(self, ctx: SourceContext) -> Answer:
        pins_of: dict[str, list[osv.Pin]] = {}
        read = file_reader()
        for path, pyproject in ctx.stacks:
            try:
                stack = read_stack(read, path, pyproject)
            except BaseImageError:  # the image's own row says why
                continue
            pins_of[path] = list({(n, v): osv.Pin(n, v) for _file, n, v in stack.pinned()}.values())
        unique = list({(p.name, p.version): p for pins in pins_of.values() for p in pins}.values())
        if ctx.osv_db is not None:
            found, where = osv.offline_advisories(unique, ctx.osv_db), f"OSV records in {ctx.osv_db}"
        elif not ctx.live:
            return self.unavailable(ctx, "no --osv-db and OSV is not reachable offline")
        else:
            try:
                found, where = osv.live_advisories(unique, ctx.transport), "OSV live (api.osv.dev)"
            except BaseImageError as exc:
                return self.unavailable(ctx, f"OSV unreachable ({exc}); pass --osv-db DIR")
        by_file = {path: [a for a in found if osv.Pin(a.package, a.version) in pins] for path, pins in pins_of.items()}
        return Answer(self.name, self.label, where, by_file)

    def unavailable(self, ctx: SourceContext, problem: str) -> Answer:
        return Answer(self.name, self.label, f"not checked: {problem}", {})
