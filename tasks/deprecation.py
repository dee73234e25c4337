"""NVIDIA's deprecation banner (shared/reference facts §1.3): recognised in container logs, and
read from a base image by running it once (`BannerCheck`, the review's banner check)."""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

from tasks.containers import LABEL, through_mirror

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


class BannerCheck:
    """Runs each base image once without a GPU and with no network to read NVIDIA's start-up
    banner; images it had to pull are removed again afterwards (see `cleanup`). With
    ``pull=False`` (an offline review) it reads only images already on this host and asks no
    registry for the others: an offline review does not reach the network through the daemon."""

    def __init__(self, mirrors: dict[str, str], *, pull: bool = True) -> None:
        self.mirrors = mirrors
        self.pull = pull
        self.pulled: list[str] = []
        self._lock = threading.Lock()
        self.client: Any = None
        self.unavailable: str | None = None
        # The Docker SDK's import and the daemon's ping (about 0.15 s) run beside the registry
        # research, which reaches the first banner check only after its own lookups.
        self._connecting = threading.Thread(target=self._connect, name="banner-check-docker", daemon=True)
        self._connecting.start()

    def _connect(self) -> None:
        try:
            import docker

            client = docker.from_env(timeout=120)
            client.ping()
            self.client = client
        except Exception as exc:  # no daemon here: the banner check is reported as not run
            self.unavailable = f"not checked: no Docker daemon ({type(exc).__name__})"

    def __call__(self, ref: str) -> tuple[list[str] | None, str]:
        self._connecting.join()
        if self.unavailable:
            return None, self.unavailable
        import docker.errors

        pull = through_mirror(ref, self.mirrors) or ref
        try:
            try:
                self.client.images.get(pull)
            except docker.errors.ImageNotFound:
                if not self.pull:
                    return None, f"not checked: an offline review pulls nothing, and {pull} is not on this host"
                self.client.images.pull(pull)
                with self._lock:
                    self.pulled.append(pull)
            # The banner is printed by the entrypoint at start: the image needs no network to show it.
            container = self.client.containers.run(
                pull, ["true"], detach=True, network_mode="none", labels={LABEL: "review-banner"}
            )
            try:
                container.wait(timeout=120)
                log = container.logs().decode(errors="replace")
            finally:
                container.remove(force=True)
        except Exception as exc:  # a pull or run failure is evidence too, not a crash
            return None, f"not checked: {type(exc).__name__}: {exc}"
        return find_deprecation_banner(log), f"ran {pull} without a GPU or network"

    def cleanup(self) -> list[str]:
        """Remove the images this review pulled (those that were on the host before stay)."""
        import docker.errors

        self._connecting.join()
        removed = []
        for image in self.pulled:
            with contextlib.suppress(docker.errors.APIError):  # in use elsewhere now: it stays
                self.client.images.remove(image)
                removed.append(image)
        return removed
