"""Every status the product records, as an enum: what a validation check ended in, what NVIDIA's
support policy says of a release, what a review plans for an image and for each consumer, how a
soak and a deployment stand, what a reviewer decided. One place to read what each can be.

They are `StrEnum`s: a member is its string (``CheckStatus.PASSED == "passed"``, JSON and
f-strings write the value), so reports, artifacts and ledgers on disk keep their documented
shape; reading one back goes through the enum (`parse`), so a value the product never writes is
an error at the boundary, not a status nobody handles. A migration's one `Result` lives with the
outcome it ends (tasks/update/outcome.py)."""

from __future__ import annotations

import enum
from typing import TypeVar

from tasks.errors import ConfigError


class CheckStatus(enum.StrEnum):
    """One validation check (the policy's testing phase) or one consumer's check of the model."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class LookupStatus(enum.StrEnum):
    """The registry's answer for one reference in `baseimage scan`, or why there is none; "not
    found" is an answer (a finding), "skipped" was not asked."""

    OK = "ok"
    NOT_FOUND = "not found"
    UNREACHABLE = "unreachable"
    AUTH_ERROR = "auth error"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def failed(self) -> bool:
        """No answer from the registry (`baseimage scan` exits 3)."""
        return self in (LookupStatus.UNREACHABLE, LookupStatus.AUTH_ERROR, LookupStatus.ERROR)


class SupportStatus(enum.StrEnum):
    """A CUDA release by NVIDIA's support policy (an NGC tag is supported or deleted)."""

    SUPPORTED = "supported"
    EOL = "eol"
    DELETED = "deleted"


class PlanAction(enum.StrEnum):
    """What the review plans for an image."""

    MIGRATE = "migrate"
    UPDATE_PINS = "update-pins"
    NONE = "none"
    ERROR = "error"  # the review could not plan it (its errors say why)


class ConsumerAction(enum.StrEnum):
    """What the plan does for one consumer of the exported model (the ONNX Runtime service)."""

    OK = "ok"
    BUMP = "bump"
    EXPORT_OPSET = "export-opset"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


class SoakStatus(enum.StrEnum):
    """A staging soak window: running until it has a verdict."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self is not SoakStatus.RUNNING


class DeploymentStatus(enum.StrEnum):
    """A ledger record of one deployment to an environment."""

    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    FAILED = "failed"
    RESTORED = "restored"


class DecisionOutcome(enum.StrEnum):
    """A reviewer's answer to one approval pause, or why there was none."""

    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed out"
    NOT_REQUIRED = "not required"


class ApprovalKind(enum.StrEnum):
    """How production was allowed: a recorded approval, or break-glass with a reason."""

    APPROVAL = "approval"
    BREAK_GLASS = "break-glass"


E = TypeVar("E", bound=enum.StrEnum)


class StatusError(ConfigError):
    """A file or an API answer holds a status the product never writes."""


def parse(kind: type[E], value: object, where: str) -> E:
    """`value` as a member of `kind`, or a StatusError naming `where` it was read from and the
    values that are allowed."""
    try:
        return kind(str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise StatusError(f"{where}: {value!r} is not a {kind.__name__} (one of: {allowed})") from None
