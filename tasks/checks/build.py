"""build: the candidate image from the Dockerfile, its bases through the configured mirrors."""

from __future__ import annotations

from tasks import containers
from tasks.checks.base import CheckRun, Results
from tasks.statuses import CheckStatus
from tasks.validation import CheckResult


class Build:
    name = "build"
    needs: tuple[str, ...] = ()
    quiet = False

    def enabled(self, run: CheckRun) -> bool:
        return True

    def run(self, run: CheckRun, done: Results) -> CheckResult:
        client = run.docker()
        for base in containers.build_bases(run.context / run.dockerfile, run.buildargs):
            run.log(f"base {containers.ensure_local(client, base, run.mirrors)}")
        built = containers.build_image(
            client,
            run.context,
            run.dockerfile,
            run.tag,
            run.labels,
            dict(run.buildargs),
            on_line=lambda line: run.log(f"build | {line}"),
        )
        return CheckResult(
            self.name,
            CheckStatus.PASSED,
            f"built {run.tag} ({built.image_id[:19]}) in {built.seconds:.1f} s",
            {"image_id": built.image_id, "tag": run.tag},
            built.seconds,
        )
