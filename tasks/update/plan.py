"""The migration plan: what changes in which image (the base reference, the stack's pins, the
Dockerfile's pip lines) and why, built from a review or a `--to` target (tasks/update/plans.py)
and applied by tasks/update/apply.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tasks.images.reference import parse_reference
from tasks.images.tags import CudaTag, NgcTag
from tasks.research.consumers import ConsumerPlan
from tasks.update.requirements import RequirementChanges

POLICY_DOC = "docs/base-image-policy.md"


@dataclass(frozen=True)
class ImageChange:
    image: str
    dockerfile: str  # relative to the repository
    current: str
    target: str
    requirements: str | None = None
    changes: RequirementChanges = field(default_factory=RequirementChanges)
    # What the plan decided for the Dockerfile's `RUN pip install` lines (torch, CuPy, onnxruntime-gpu,
    # the index variant); applied there, and to the ARG/ENV values those lines use.
    dockerfile_pins: RequirementChanges = field(default_factory=RequirementChanges)
    build_args: tuple[tuple[str, str], ...] = ()  # images[].build_args the FROM is resolved with
    pyproject: str | None = None  # images[].pyproject (else the pyproject.toml beside the requirements)


@dataclass(frozen=True)
class MigrationPlan:
    changes: tuple[ImageChange, ...]
    reasons: tuple[str, ...] = ()
    matrix_markdown: str | None = None  # the review's compatibility matrix, when the plan came from one
    config: str | None = None  # the policy file, relative to the repository (when it is in it)
    # The consumers of the exported model: the export opset the training service must use, the
    # coupled bumps of their ONNX Runtime pins (written with the migration), what was compared.
    consumers: ConsumerPlan = field(default_factory=ConsumerPlan)
    # What the plan leaves out and the run must say: images the review could not research.
    warnings: tuple[str, ...] = ()

    @property
    def environment(self) -> dict[str, str]:
        """Variables the training service runs with for this plan (BASEIMAGE_ONNX_OPSET)."""
        return self.consumers.environment

    @property
    def branch(self) -> str:
        tags = [parse_reference(c.target).tag or "" for c in self.changes]
        cuda = [t for t in (CudaTag.try_parse(x) for x in tags) if t]
        if cuda:
            return f"baseimage/cuda-{max(cuda, key=lambda t: t.version).version_str}"
        ngc = [t for t in (NgcTag.try_parse(x) for x in tags) if t]
        return f"baseimage/ngc-{max(ngc, key=lambda t: t.sort_key).release}" if ngc else "baseimage/update"

    def with_repository(
        self,
        build_args: Mapping[str, tuple[tuple[str, str], ...]],
        pyprojects: Mapping[str, str],
        config: str | None,
    ) -> MigrationPlan:
        """The plan with the repository's facts: each change's build args and pyproject (kept
        where the change has its own), and the policy file's path in the repository."""
        changes = tuple(
            replace(
                c,
                build_args=c.build_args or build_args.get(c.image, ()),
                pyproject=c.pyproject or pyprojects.get(c.image),
            )
            for c in self.changes
        )
        return replace(self, changes=changes, config=config)

    def on_snapshot(self, why: object) -> MigrationPlan:
        """The plan, saying first that it was made against the bundled snapshot."""
        return replace(self, warnings=(snapshot_warning(why), *self.warnings))

    def summary(self) -> str:
        lines = [f"- {c.image}: {c.current} -> {c.target}" for c in self.changes]
        lines += [f"- {b.line()}" for b in self.consumers.bumps]
        lines += [f"- the training service exports ONNX with {k}={v}" for k, v in self.environment.items()]
        lines += [f"- warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def snapshot_warning(why: object) -> str:
    return (
        "this plan was made against the bundled snapshot (config/data/snapshot), as the registry is "
        f"unreachable ({why}): its tags and digests are not today's registry; review again where it is "
        "reachable before this reaches production"
    )


@dataclass(frozen=True)
class NoMigration:
    """What planning found when nothing is due, with what the run must say of it (the review was
    of the bundled snapshot, not today's registry)."""

    where: str = ""  # " on the bundled snapshot"
    warnings: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        return f"no action: nothing to migrate{self.where}"

    @classmethod
    def on_snapshot(cls, why: object) -> NoMigration:
        """Nothing due on the bundled snapshot: which says nothing of today's registry."""
        return cls(
            " on the bundled snapshot",
            (
                "this review was of the bundled snapshot (config/data/snapshot), as the registry is "
                f"unreachable ({why}): nothing is due there, which says nothing of today's registry; "
                "review again where it is reachable",
            ),
        )

    @classmethod
    def in_offline_report(cls, where: str) -> NoMigration:
        """Nothing due in a saved review that replayed a snapshot (`migrate --report`)."""
        return cls(
            " in a review of an offline snapshot",
            (
                f"{where} is a review of an offline snapshot (its sources line says which): nothing is due "
                "there, which says nothing of today's registry; review again where the registry is reachable",
            ),
        )
