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


class RegistryError(BaseImageError):
    """A registry request failed; `url` names the request that failed."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (401/403); retrying will not help."""


class RegistryTransientError(RegistryError):
    """429, 5xx, timeouts and connection errors that persisted through every retry."""


class RegistryUnreachableError(RegistryTransientError):
    """The registry could not be connected to at all (DNS, refused, no route)."""


class RegistryProtocolError(RegistryError):
    """The registry answered, but with something that is not what the API promises."""


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
