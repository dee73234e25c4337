"""The composition root: the clients a run needs, built from `Settings` in one place (the HTTP
transport, live, recording or replaying a snapshot; the registry session; the research sources;
GitHub; the secret redactor) and handed to the domain code as plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baseimage.settings import Settings, github_token, mirror_url, research_url
from tasks.errors import BaseImageError, ConfigError
from tasks.http import HttpTransport, RetryPolicy
from tasks.registry.models import Platform
from tasks.registry.session import RegistrySession
from tasks.registry.snapshot import RecordingTransport, ReplayTransport
from tasks.research.facts import Facts, load_facts
from tasks.secrets import Redactor
from tasks.update.github import GitHub, GitHubRepo

if TYPE_CHECKING:
    from tasks.checks import CheckRun
    from tasks.deploy.release import Target as DeployTarget
    from tasks.research.consumers import ConsumerRuntime
    from tasks.research.sources.base import WheelIndex
    from tasks.research.targets import Target
    from tasks.update.plan import MigrationPlan
    from tasks.update.plans import Rules

BUNDLED_SNAPSHOT = Path(__file__).resolve().parent.parent / "config" / "data" / "snapshot"


def checked_overrides(mirrors: Mapping[str, str] | None, pytorch_index: str | None) -> None:
    """A flow's `mirrors` and `pytorch_index` parameters (a deployment's, the UI's) under the rules
    the policy file and the command line apply: a ConfigError naming the parameter, never
    repeating a secret. Flows call it first, before any retried task."""
    try:
        for registry, url in (mirrors or {}).items():
            mirror_url(registry, url)
    except ValueError as exc:
        raise ConfigError(f"mirrors: {exc}") from None
    if pytorch_index is not None:
        try:
            research_url(pytorch_index)
        except ValueError as exc:
            raise ConfigError(f"pytorch_index: {exc}") from None


def research_sources(settings: Settings, pytorch_index: str | None) -> tuple[Facts, str]:
    """The bundled facts with NVIDIA's support URL from `research:` when set, and the PyTorch index
    to read: the one given, else `research.pytorch_index`, else the public one."""
    checked_overrides(None, pytorch_index)
    facts = load_facts()
    if settings.research.nvidia_support_url:
        facts = replace(facts, support_live_url=settings.research.nvidia_support_url)
    return facts, pytorch_index or settings.research.pytorch_index or facts.pytorch_index_url


def network_down(settings: Settings, mirrors: Sequence[tuple[str, str]] = ()) -> str | None:
    """Why the live registries are unreachable, or None when they answer (or are mirrored): what
    ``--sources auto`` and a migration's own review decide on."""
    mirrored = {**settings.registries.mirrors, **dict(mirrors)}
    if "docker.io" in mirrored:
        return None
    probe = HttpTransport(retry=RetryPolicy(attempts=1), timeout=(3.0, 5.0))
    try:
        probe.request("GET", "https://registry-1.docker.io/v2/")
    except BaseImageError as exc:
        return str(exc)
    return None


def wheel_index(url: str, transport: HttpTransport) -> WheelIndex:
    """The run's reader of the wheel index at `url` (research_sources says which), shared by the
    research of every base."""
    from tasks.research.sources.pytorch_index import PyTorchIndex

    return PyTorchIndex(url, transport)


def make_transport(
    settings: Settings, sources: str, offline_dir: Path | None, record_dir: Path | None
) -> tuple[HttpTransport, str]:
    """The transport for `sources` (live, offline: replaying a snapshot, or live and recording
    one) and how the report describes it."""
    reg = settings.registries
    common: dict[str, Any] = {
        "timeout": (min(5.0, reg.timeout_s), reg.timeout_s),
        "max_concurrency": reg.concurrency,
    }
    if sources == "offline":
        directory = offline_dir or BUNDLED_SNAPSHOT
        replay = ReplayTransport(directory, retry=RetryPolicy(attempts=1), **common)
        # The bundled one by its name in the product, not this machine's path: the description
        # goes into the user's policy document and reports they commit.
        where = "bundled with baseimage (config/data/snapshot)" if directory == BUNDLED_SNAPSHOT else str(directory)
        note = f"; {replay.note}" if replay.note else ""
        return replay, f"offline snapshot {where} (recorded {replay.recorded}{note})"
    if record_dir is not None:
        recorder = RecordingTransport(record_dir, retry=RetryPolicy(attempts=reg.attempts), **common)
        return recorder, f"live, recorded to {record_dir}"
    return HttpTransport(retry=RetryPolicy(attempts=reg.attempts), **common), "live"


def transport(settings: Settings) -> HttpTransport:
    """The live HTTP transport with the policy's attempts, timeouts and concurrency."""
    reg = settings.registries
    return HttpTransport(
        retry=RetryPolicy(attempts=reg.attempts),
        timeout=(min(5.0, reg.timeout_s), reg.timeout_s),
        max_concurrency=reg.concurrency,
    )


def registry_session(
    settings: Settings, http: HttpTransport | None = None, mirrors: Mapping[str, str] | None = None
) -> RegistrySession:
    """One run's registry access: the policy's mirrors (with `mirrors` taking precedence),
    credentials keyed by host, trusted token realms and platform."""
    reg = settings.registries
    checked_overrides(mirrors, None)
    return RegistrySession(
        mirrors={**reg.mirrors, **dict(mirrors or {})},
        credentials=settings.registry_credentials(),
        transport=http or transport(settings),
        platform=Platform.parse(reg.platform),
        token_realms=reg.token_realms,
    )


def github_client(settings: Settings) -> GitHub | None:
    """The GitHub API client for `github:`, or None when no repository or token is configured."""
    if settings.github is None:
        return None
    token = github_token(settings.github)
    if not token:
        return None
    return GitHub(GitHubRepo.parse(settings.github.repository, settings.github.api_url), token)


def redactor(settings: Settings) -> Redactor:
    """Removes every secret this configuration reads (and secret-shaped text) from a string."""
    return Redactor.of(settings.secret_values())


def check_run(
    settings: Settings,
    context: Path,
    dockerfile: str,
    run_label: str,
    buildargs: Mapping[str, str] | None = None,
    require_gpu: bool | None = None,
    environment: Mapping[str, str] | None = None,
) -> CheckRun:
    """What the validation checks read, from the policy's `validation:`, `policy:` and
    `consumers:` (read from the tree being validated)."""
    from baseimage.settings import cache_dir
    from tasks.checks import CheckRun, ServiceSpec
    from tasks.update.consumer_pins import read_consumers

    validation = settings.validation

    def consumers(tree: Path) -> list[ConsumerRuntime]:
        return read_consumers(settings, tree)

    return CheckRun(
        context=context,
        dockerfile=dockerfile,
        tag=f"baseimage-candidate:{run_label[:12]}",
        run_label=run_label,
        base_url=validation.base_url,
        buildargs=dict(buildargs or {}),
        mirrors=dict(settings.registries.mirrors),
        environment=dict(environment or {}),
        require_gpu=settings.policy.require_gpu if require_gpu is None else require_gpu,
        health_timeout_s=validation.health_timeout_s,
        train_steps=validation.train_steps,
        train_timeout_s=validation.train_timeout_s,
        gpu_utilization_min=settings.policy.gpu_utilization_min_percent,
        redis_image=validation.redis_image,
        redis_port=validation.redis_port,
        services=tuple(
            ServiceSpec(c.name, tuple(c.command) if c.command else None, c.gpu) for c in validation.containers
        ),
        consumers=consumers if settings.consumers else None,
        cache=cache_dir() / "onnxruntime",
    )


def targets_of(settings: Settings, paths: Sequence[str] | None) -> list[Target]:
    """The Dockerfiles a review reads: `paths` (scanned, with default options), else the policy's
    images with their options."""
    from tasks.research.review import ReviewOptions
    from tasks.research.targets import Target

    if paths:
        from tasks.scan import discover

        defaults = ReviewOptions(
            python="3.11",
            fleet_min_driver=settings.fleet.min_driver,
            allow_major=settings.policy.allow_major_upgrade,
            pin_minor=None,
            allow_missing=frozenset(settings.policy.allow_missing),
        )
        return [Target(str(p), p, str(p), {}, defaults, False) for p in discover([Path(x) for x in paths])]
    out = []
    for image in settings.images:
        options = ReviewOptions(
            python=image.python,
            fleet_min_driver=settings.fleet.min_driver,
            allow_major=settings.policy.allow_major_upgrade,
            pin_minor=image.pin_minor,
            allow_missing=frozenset(settings.policy.allow_missing),
            requirements=settings.path(image.requirements) if image.requirements else None,
            requirements_label=str(image.requirements) if image.requirements else None,
            pyproject=settings.path(image.pyproject) if image.pyproject else None,
        )
        path = settings.path(image.dockerfile)
        out.append(Target(image.name, path, str(image.dockerfile), dict(image.build_args), options, True))
    return out


def target_of(settings: Settings, environment: str) -> DeployTarget:
    """Where `environment` runs: its compose file, Docker host and the override baseimage writes."""
    from tasks.deploy.release import Target as Deployed
    from tasks.errors import ConfigError

    if environment not in settings.environments:
        raise ConfigError(
            f"no environment {environment!r} in {settings.source}: "
            f"one of {', '.join(sorted(settings.environments)) or 'none'}"
        )
    env = settings.environments[environment]
    override = settings.state_dir / "deployments" / f"{environment}.compose-override.yml"
    return Deployed(environment, env, settings.path(env.compose_file), override)


def build_args_at(settings: Settings, image_name: str, tree: Path) -> dict[str, str]:
    """The build args of `image_name` as the policy file at `tree` (the migration commit) has
    them: a migration may have moved them there."""
    try:
        rel = settings.source.resolve().relative_to(settings.root)
    except ValueError:
        rel = None
    if rel is not None and (tree / rel).exists():
        from baseimage.settings import load_settings

        committed = load_settings(tree / rel)
        for image in committed.images:
            if image.name == image_name:
                return dict(image.build_args)
    return next((dict(i.build_args) for i in settings.images if i.name == image_name), {})


def plan_rules(settings: Settings) -> Rules:
    """What a `--to` or `--report` plan is checked against: the fleet, the policy's allowances and
    the consumers of the exported model."""
    from tasks.update.consumer_pins import read_consumers
    from tasks.update.plans import Rules

    return Rules(
        settings.fleet.min_driver,
        frozenset(settings.policy.allow_missing),
        tuple(read_consumers(settings)),
        settings.policy.bump_consumers,
    )


def with_repository_facts(plan: MigrationPlan, settings: Settings) -> MigrationPlan:
    """Each change carries the build args its FROM is read with and its pyproject; the plan knows
    where the policy file is in the repository (a FROM set through build args is changed there)."""
    try:
        config: str | None = str(settings.source.resolve().relative_to(settings.root))
    except ValueError:
        config = None
    return plan.with_repository(
        {i.name: tuple(sorted(i.build_args.items())) for i in settings.images},
        {i.name: str(i.pyproject) for i in settings.images if i.pyproject},
        config,
    )
