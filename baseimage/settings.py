"""Typed settings from ``config/policy.yaml`` and the environment (the only module that reads it).

A bad file gives an error that names the file, the key, its line and what is allowed.
Secrets are never in the file: it names environment variables that hold them.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from tasks.errors import ConfigError
from tasks.registry.auth import Credentials, realm_origin
from tasks.registry.models import Platform
from tasks.secrets import redact_url
from tasks.yaml_file import line_of, read_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "BASEIMAGE_CONFIG"
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", re.ASCII)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManagedImage(_Model):
    """One managed Dockerfile and the files that pin its Python stack."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    dockerfile: Path
    requirements: Path | None = None
    pyproject: Path | None = None  # a uv project's pyproject.toml (default: the one beside `requirements`)
    track: Literal["cuda", "ngc"]
    pin_minor: Annotated[str | None, Field(pattern=r"^\d+\.\d+$")] = None
    python: Annotated[str, Field(pattern=r"^3\.\d+$")] = "3.11"
    build_args: dict[str, str] = Field(default_factory=dict)


class Fleet(_Model):
    min_driver: Annotated[int, Field(ge=400, le=1000)] = 535


class RegistryCredentials(_Model):
    username: str
    password_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class Registries(_Model):
    concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 20.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 4
    platform: str = "linux/amd64"
    mirrors: dict[str, str] = Field(default_factory=dict)
    # Keyed by the host the credentials are for: a registry (docker.io, nvcr.io, host:port) or a
    # mirror's host[:port]; a mirror never gets its upstream registry's credentials.
    credentials: dict[str, RegistryCredentials] = Field(default_factory=dict)
    # Token services on another host than their registry that may receive its credentials
    # (host[:port] for https, or an http(s) URL); Docker Hub's auth.docker.io is known already.
    token_realms: list[str] = Field(default_factory=list)
    # A registry the user owns (host[:port][/prefix]) where every base a release was built from and
    # every released image are copied by digest, so rollbacks and rebuilds outlive NVIDIA's deletions.
    retain_to: str | None = None

    @field_validator("retain_to")
    @classmethod
    def _retain_to(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, prefix = value.partition("/")
        if "://" in value or not _HOST.fullmatch(host) or not re.fullmatch(r"([a-z0-9]+([._-][a-z0-9]+)*/?)*", prefix):
            raise ValueError(
                f"retain_to is a registry and an optional path, e.g. registry.example.com/keep or 127.0.0.1:5001, "
                f"got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("mirrors")
    @classmethod
    def _mirror_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for registry, url in value.items():
            mirror_url(registry, url)
        return value

    @field_validator("credentials")
    @classmethod
    def _credential_hosts(cls, value: dict[str, RegistryCredentials]) -> dict[str, RegistryCredentials]:
        for host in value:
            if not _HOST.fullmatch(host):
                raise ValueError(f"credentials are keyed by host[:port] (e.g. nvcr.io, 127.0.0.1:5000), got {host!r}")
        return value

    @field_validator("token_realms")
    @classmethod
    def _realms(cls, value: list[str]) -> list[str]:
        for entry in value:
            if realm_origin(entry) is None or not (_HOST.fullmatch(entry) or "://" in entry):
                raise ValueError(f"token realm {entry!r} is not host[:port] or an http(s) URL")
        return value

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        Platform.parse(value)
        return value


class Policy(_Model):
    allow_major_upgrade: bool = False
    # Packages whose missing build for the target CUDA major is accepted (the pin stays as it is)
    # instead of blocking the plan.
    allow_missing: list[Literal["onnxruntime-gpu", "cupy"]] = Field(default_factory=list)
    require_gpu: bool = True
    # A consumer whose ONNX Runtime cannot load what the planned torch exports gets its pin
    # bumped in the same migration (else the export opset is lowered, or the plan is blocked).
    bump_consumers: bool = False
    gpu_utilization_min_percent: Annotated[float, Field(ge=0, le=100)] = 10.0


class Consumer(_Model):
    """A service that loads the models the training service exports (an ONNX Runtime inference
    service): where its ``onnxruntime``/``onnxruntime-gpu`` pin is read from, or the version itself."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    requirements: Path | None = None  # a requirements file with an onnxruntime(-gpu)==X pin
    dockerfile: Path | None = None  # a Dockerfile whose RUN pip install pins onnxruntime(-gpu)==X
    onnxruntime: Annotated[str | None, Field(pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")] = None  # a fixed version

    @model_validator(mode="after")
    def _one_source(self) -> Consumer:
        given = [k for k in ("requirements", "dockerfile", "onnxruntime") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of requirements (a requirements file), dockerfile or onnxruntime (a version)"
                + (f"; got {', '.join(given)}" if given else "")
            )
        return self


class Approvals(_Model):
    timeout_s: Annotated[int, Field(ge=1)] = 86400
    required_for: list[Literal["update", "production"]] = ["update", "production"]
    distinct_reviewers: bool = True  # the update's reviewer may not also approve production

    @field_validator("required_for")
    @classmethod
    def _production_always(cls, value: list[str]) -> list[str]:
        if "production" not in value:
            raise ValueError("'production' approval cannot be switched off")
        return value


class Environment(_Model):
    """Where a release runs: a compose project on a Docker host, its health URL and soak window."""

    docker_host: str | None = None  # DOCKER_HOST URL (unix://, tcp://, ssh://); None: this host's daemon
    compose_file: Path
    project: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    service: str = "api"  # the compose service whose running image is "the environment's image"
    services: list[str] | None = None  # the services that run the managed image (default: [service])
    image: str | None = None  # the managed image deployed here (its name); None: the first one
    image_variable: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "TRAINING_IMAGE"
    variables: dict[str, str] = Field(default_factory=dict)  # more compose variables (ports, ...); no secrets
    health_url: str
    health_timeout_s: Annotated[float, Field(gt=0)] = 180.0
    soak_hours: Annotated[float, Field(gt=0, le=168)] = 24.0
    soak_interval_s: Annotated[float, Field(gt=0)] = 300.0
    soak_min_coverage: Annotated[float, Field(ge=0, le=1)] = 0.9  # share of the slots that must be sampled
    soak_on_low_coverage: Literal["extend", "fail"] = "extend"  # what a window short of samples does at its end
    soak_max_extension_hours: Annotated[float | None, Field(ge=0, le=168)] = (
        None  # extend at most this (None: the window)
    )
    max_latency_ms: Annotated[float, Field(gt=0)] = 2000.0  # a health check slower than this fails the soak
    # Changes only through a recorded approval (a migration's, or --break-glass); None: production only.
    protected: bool | None = None
    metrics_url: str | None = None  # the service's /metrics (success rate, GPU utilisation)
    min_success_rate: Annotated[float, Field(ge=0, le=1)] = 0.95
    max_health_failures: Annotated[int, Field(ge=0)] = 3

    @field_validator("docker_host")
    @classmethod
    def _docker_host(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("unix://", "tcp://", "ssh://", "npipe://")):
            raise ValueError(f"docker_host must be a DOCKER_HOST URL (unix://, tcp://, ssh://), got {value!r}")
        return value

    @field_validator("health_url")
    @classmethod
    def _health_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"health_url must be an http:// or https:// URL, got {value!r}")
        return value


class ValidationContainer(_Model):
    """One container of the candidate's service during validation."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    command: list[str] | None = None  # None: the image's own CMD
    gpu: bool = False


class Validation(_Model):
    """How the validate flow runs the candidate (host networking, loopback ports)."""

    port: Annotated[int, Field(ge=1024, le=65535)] = 18080
    base_path: str = ""  # prefix of /health, /train, ... on that port
    health_timeout_s: Annotated[float, Field(gt=0)] = 180
    train_steps: Annotated[int, Field(ge=2)] = 40
    train_timeout_s: Annotated[float, Field(gt=0)] = 900
    redis_image: str | None = "redis:7-alpine"
    redis_port: Annotated[int, Field(ge=1024, le=65535)] = 16379
    containers: list[ValidationContainer] = [
        ValidationContainer(
            name="api",
            command=[
                "uvicorn",
                "services.training.api:app",
                "--host",
                "127.0.0.1",
                "--port",
                "18080",
            ],
        ),
        ValidationContainer(
            name="worker",
            gpu=True,
            command=["celery", "-A", "services.training.worker", "worker", "--concurrency", "1"],
        ),
    ]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"


class GitHubSettings(_Model):
    """Where migration branches go for review; the token is read from a Secret block or the env."""

    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    api_url: str = "https://api.github.com"
    base_branch: str = "main"
    remote: str = "origin"
    # Names of where the token is kept, not the token.
    token_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GITHUB_TOKEN"  # noqa: S105
    token_block: str | None = "github-token"  # noqa: S105


class Alerts(_Model):
    """Where deprecation alerts go: a Prefect notification block (by name) or a JSON webhook.
    A webhook URL that is itself the secret (Slack) belongs in the environment: `webhook_url_env`."""

    block: str | None = None
    webhook_url: str | None = None
    webhook_url_env: Annotated[str | None, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = None


def _shown(value: str) -> str:
    """A rejected URL as an error may repeat it: never with what may be a secret in it."""
    return "a URL with credentials in it" if "@" in value else repr(value)


def mirror_url(registry: str, url: str) -> str:
    """`url` as the mirror of `registry` (the policy file's, --mirror's, a flow's `mirrors`):
    http(s), a host, no credentials (those go in registries.credentials, keyed by the host)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"mirror for {registry} must be an http:// or https:// URL, got {_shown(url)}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"mirror for {registry}: {_shown(url)} is not a valid URL ({exc})") from exc
    if "@" in parts.netloc:
        raise ValueError(
            f"mirror for {registry}: put no credentials in the URL; use "
            f"registries.credentials.{parts.netloc.rpartition('@')[2]}"
        )
    if not parts.hostname:
        raise ValueError(f"mirror for {registry}: {url!r} has no host")
    return url


def research_url(url: str) -> str:
    """`url` as a research source (research.pytorch_index, --pytorch-index, a flow's
    `pytorch_index`): http(s) and no credentials: the policy file is committed, and a migration
    writes the PyTorch index's base into requirements files."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {_shown(url)}")
    netloc = urlsplit(url).netloc
    if "@" in netloc:
        raise ValueError(
            f"put no credentials in the URL ({redact_url(url)}); give them to {netloc.rpartition('@')[2]} in "
            "~/.netrc, which baseimage and pip both read"
        )
    return url


class Research(_Model):
    """Where the research phase reads, for sites that mirror its sources (None: the public ones)."""

    nvidia_support_url: str | None = None  # NVIDIA's manifests/cuda.yaml (the unsupported list)
    pytorch_index: str | None = None  # a PEP 503/691 mirror of download.pytorch.org/whl
    osv_db: Path | None = None  # a directory of OSV records instead of api.osv.dev

    @field_validator("nvidia_support_url", "pytorch_index")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return value if value is None else research_url(value)


class Monitoring(_Model):
    pushgateway: str | None = None  # host:port of a Prometheus Pushgateway


class Automations(_Model):
    """Prefect automations `deployments/setup.py` creates on a server."""

    # A review that recommends a migration starts the `migrate` deployment with its report
    # (approvals still gate every change). Opt-in.
    migrate_on_recommendation: bool = False
    # A failed or crashed run of any baseimage flow is sent through `alerts.block`.
    notify_failures: bool = True


class Settings(_Model):
    version: Literal[1] = 1
    repository: Path = Path("..")
    images: list[ManagedImage]
    fleet: Fleet = Field(default_factory=Fleet)
    registries: Registries = Field(default_factory=Registries)
    policy: Policy = Field(default_factory=Policy)
    approvals: Approvals = Field(default_factory=Approvals)
    environments: dict[str, Environment] = Field(default_factory=dict)
    validation: Validation = Field(default_factory=Validation)
    github: GitHubSettings | None = None
    alerts: Alerts = Field(default_factory=Alerts)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    automations: Automations = Field(default_factory=Automations)
    research: Research = Field(default_factory=Research)
    consumers: list[Consumer] = Field(default_factory=list)
    source: Path = Path("config/policy.yaml")
    # 1-based line of each `consumers[i]` in the policy file, for messages about its pin file.
    _consumer_lines: dict[tuple[int, str], int | None] = PrivateAttr(default_factory=dict)

    @field_validator("consumers")
    @classmethod
    def _unique_consumers(cls, value: list[Consumer]) -> list[Consumer]:
        names = [c.name for c in value]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"consumer names must be unique: {', '.join(doubled)}")
        return value

    def consumer_key(self, index: int, key: str) -> str:
        """``config/policy.yaml:57: consumers[0].requirements``: where a consumer's key is set."""
        line = self._consumer_lines.get((index, key))
        return f"{self.source}{f':{line}' if line else ''}: consumers[{index}].{key}"

    @property
    def state_dir(self) -> Path:
        """Where deployment ledgers, rollback records and incident reports are kept."""
        return self.root / "reports"

    def protected(self, environment: str) -> bool:
        """Whether `environment` changes only through a recorded approval (production by default)."""
        flag = self.environments[environment].protected
        return environment == "production" if flag is None else flag

    def environment_image(self, environment: str) -> ManagedImage:
        """The managed image an environment runs (by name, else the first managed image)."""
        env = self.environments[environment]
        if env.image is None:
            return self.images[0]
        for image in self.images:
            if image.name == env.image:
                return image
        raise ConfigError(
            f"{self.source}: environments.{environment}.image is {env.image!r}, not a managed image "
            f"({', '.join(i.name for i in self.images)})"
        )

    @property
    def root(self) -> Path:
        """The repository the managed paths are relative to."""
        return (self.source.parent / self.repository).resolve()

    def path(self, relative: Path) -> Path:
        return relative if relative.is_absolute() else self.root / relative

    def webhook_url(self, environ: dict[str, str] | None = None) -> str | None:
        """The alert webhook: from `alerts.webhook_url_env` when set, else `alerts.webhook_url`."""
        env = os.environ if environ is None else environ
        if self.alerts.webhook_url_env:
            return env.get(self.alerts.webhook_url_env) or None
        return self.alerts.webhook_url

    def secret_values(self, environ: dict[str, str] | None = None) -> list[str]:
        """Every secret this configuration reads from the environment (to keep them out of logs,
        reports and artifacts): registry passwords, the GitHub token, the alert webhook URL."""
        env = os.environ if environ is None else environ
        names = {c.password_env for c in self.registries.credentials.values()}
        names |= {self.github.token_env if self.github else "GITHUB_TOKEN", "BASEIMAGE_SLACK_WEBHOOK_URL"}
        if self.alerts.webhook_url_env:
            names.add(self.alerts.webhook_url_env)
        values = [env[n] for n in sorted(names) if env.get(n)]
        return [*values, *([self.alerts.webhook_url] if self.alerts.webhook_url else [])]

    def registry_credentials(self, environ: dict[str, str] | None = None) -> dict[str, Credentials]:
        """Credentials per registry, passwords read from the environment variables named."""
        env = os.environ if environ is None else environ
        found = {}
        for registry, creds in self.registries.credentials.items():
            password = env.get(creds.password_env)
            if password:
                found[registry] = Credentials(creds.username, password)
        return found


def github_token(settings: GitHubSettings, environ: dict[str, str] | None = None) -> str | None:
    """The token from the Prefect Secret block named in the config, else the environment."""
    if settings.token_block:
        try:
            from prefect.blocks.system import Secret

            block: Any = Secret.load(settings.token_block)
            return str(block.get())
        except Exception as exc:  # no such block, or no API: fall back to the environment
            logging.getLogger(__name__).debug(
                "Secret block %s unavailable: %s", settings.token_block, type(exc).__name__
            )
    env = os.environ if environ is None else environ
    return env.get(settings.token_env) or None


def default_config_path() -> Path:
    """``$BASEIMAGE_CONFIG``, else ``./config/policy.yaml``, else this checkout's own."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path.cwd() / "config" / "policy.yaml"
    return local if local.exists() else PROJECT_ROOT / "config" / "policy.yaml"


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in error["loc"]).replace(".[", "[")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "literal_error":
        message = f"{error['input']!r} is not allowed; {message[0].lower()}{message[1:]}"
    elif error["type"] == "string_type" and isinstance(error.get("input"), int | float):
        # `python: 3.10` is the number 3.1 to YAML: say how to write the text
        message += f'; YAML read {error["input"]!r} as a number: put the value in quotes, e.g. "3.10"'
    return f"{loc or '(top level)'}: {message}"


def load_settings(path: Path | None = None) -> Settings:
    """Load and validate the policy file; each problem is a ConfigError naming key and line."""
    path = path or default_config_path()
    data, tree = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with at least 'images:'")
    try:
        settings = Settings.model_validate({**data, "source": path})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            line = line_of(tree, tuple(error["loc"]))
            problems.append(f"{path}:{line}: {_describe(dict(error))}" if line else f"{path}: {_describe(dict(error))}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from exc
    except (ValueError, TypeError, RecursionError) as exc:  # what pydantic does not wrap (e.g. odd keys)
        raise ConfigError(f"{path}: invalid config: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if settings.consumers:
        settings._consumer_lines = {
            (i, key): line_of(tree, ("consumers", i, key))
            for i in range(len(settings.consumers))
            for key in ("name", "requirements", "dockerfile", "onnxruntime")
        }
    return settings


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """Where baseimage keeps what it may rebuild (the consumers' ONNX Runtime environments):
    ``$BASEIMAGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/baseimage``, else ``~/.cache/baseimage``."""
    env = os.environ if environ is None else environ
    if env.get("BASEIMAGE_CACHE_DIR"):
        return Path(env["BASEIMAGE_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "baseimage"
    return Path(env.get("HOME") or Path.home()) / ".cache" / "baseimage"
