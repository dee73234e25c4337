"""The project's exception tree: every error a user can meet derives from BaseImageError.

Messages name the object and the place (file:line, image reference, URL) and, where there is
one, what to do about it.
"""

from __future__ import annotations


class BaseImageError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(BaseImageError):
    """A configuration file or value is missing or invalid."""


class ImageReferenceError(BaseImageError):
    """An image reference does not follow the OCI/Docker reference grammar."""


class TagError(BaseImageError):
    """A tag does not follow the CUDA or NGC tag scheme it was parsed as."""


class DockerfileError(BaseImageError):
    """A Dockerfile cannot be read or rewritten as asked."""


class HttpError(BaseImageError):
    """An HTTP exchange failed (tasks/http.py); `url` names the request that failed. The transport
    raises the neutral kinds below; the registry client and the research sources re-raise them as
    their own (`RegistryError`, `SourceError`), so a message says which part was talking."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class HttpTransientError(HttpError):
    """429, 5xx, timeouts, cut bodies and connection errors that persisted through every retry."""


class HttpUnreachableError(HttpTransientError):
    """The host could not be connected to at all (DNS, refused, no route)."""


class HttpProtocolError(HttpError):
    """The host answered, but with something that is not what its API promises."""


class NotRecordedError(HttpError):
    """A replayed snapshot holds no answer for this request: that lookup cannot be answered
    offline (not a network failure: the other lookups go on, nothing is retried)."""


class RegistryError(HttpError):
    """A registry request failed; `url` names the request that failed."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (401/403); retrying will not help."""


class RegistryTransientError(RegistryError, HttpTransientError):
    """429, 5xx, timeouts and connection errors that persisted through every retry."""


class RegistryUnreachableError(RegistryTransientError, HttpUnreachableError):
    """The registry could not be connected to at all (DNS, refused, no route)."""


class RegistryProtocolError(RegistryError, HttpProtocolError):
    """The registry answered, but with something that is not what the API promises."""


class SourceError(HttpError):
    """A research source (NVIDIA's support manifest, the PyTorch index, OSV, a package index)
    failed; `url` names the request."""


class SourceTransientError(SourceError, HttpTransientError):
    """The source kept failing in a way a later attempt may not (429, 5xx, timeouts)."""


class SourceUnreachableError(SourceTransientError, HttpUnreachableError):
    """The source could not be connected to at all."""


class SourceProtocolError(SourceError, HttpProtocolError):
    """The source answered with something that is not what it publishes (a changed page)."""


_KINDS: dict[str, tuple[type[HttpError], type[HttpError], type[HttpError], type[HttpError]]] = {
    # family: (any, transient, unreachable, protocol)
    "registry": (RegistryError, RegistryTransientError, RegistryUnreachableError, RegistryProtocolError),
    "source": (SourceError, SourceTransientError, SourceUnreachableError, SourceProtocolError),
}


def recast(exc: HttpError, family: str) -> HttpError:
    """`exc` as the same kind of error of `family` ("registry" or "source"), message kept."""
    base, transient, unreachable, protocol = _KINDS[family]
    if isinstance(exc, base):
        return exc
    kind = (
        unreachable
        if isinstance(exc, HttpUnreachableError)
        else transient
        if isinstance(exc, HttpTransientError)
        else protocol
        if isinstance(exc, HttpProtocolError)
        else base
    )
    return kind(str(exc), url=exc.url, status=exc.status)


class DirtyTreeError(BaseImageError):
    """Managed files have uncommitted changes; applying would mix them into the migration."""


class PlanMismatchError(BaseImageError):
    """The plan does not match the repository: a FROM it expects is not there (stale plan)."""


class EmptyPlanError(BaseImageError):
    """The plan changes no file: there is nothing to approve or deploy."""


class BuildError(BaseImageError):
    """``docker build`` failed; `log_tail` holds the last lines of the build log."""

    def __init__(self, message: str, log_tail: list[str]) -> None:
        super().__init__(message + ("\n  " + "\n  ".join(log_tail) if log_tail else ""))
        self.log_tail = log_tail


class ContainerError(BaseImageError):
    """A container exited or kept restarting; carries its exit status and log tail."""

    def __init__(self, message: str, exit_code: int | None, log_tail: list[str]) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.log_tail = log_tail


class HealthCheckError(BaseImageError):
    """The service did not answer healthy before its deadline."""


class TrainingJobError(BaseImageError):
    """The sample training job failed or did not finish in time."""


class ModelCheckError(BaseImageError):
    """The exported ONNX model is missing or invalid."""


class GpuUnavailableError(BaseImageError):
    """A GPU check was required (policy ``require_gpu``) and no GPU is usable."""
