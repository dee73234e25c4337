"""Recognise NVIDIA's deprecation banner in container logs (shared/reference facts §1.3)."""

from __future__ import annotations

import re

# The banner's fixed lines; any one of them is evidence, all of them are the full notice.
BANNER_LINES = (
    "** DEPRECATION NOTICE! **",
    "THIS IMAGE IS DEPRECATED and is scheduled for DELETION.",
)
_PATTERN = re.compile(r"DEPRECATION NOTICE|THIS IMAGE IS DEPRECATED|scheduled for DELETION", re.I)
_POLICY_URL = "container-images/cuda/blob/master/doc/support-policy.md"


def find_deprecation_banner(log: str) -> list[str]:
    """The banner lines found in `log` (with the policy URL line when present); [] if none."""
    lines = log.splitlines()
    found = [line.strip() for line in lines if _PATTERN.search(line)]
    if found:
        found += [line.strip() for line in lines if _POLICY_URL in line]
    return found
