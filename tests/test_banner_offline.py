"""The review's banner check (tasks/deprecation.py) against the real Docker daemon: a live review
pulls a base it does not have (through the daemon, from the registry the reference names), and an
offline review (the bundled or a recorded snapshot, the network unreachable) asks no registry at
all, says the check did not run and why, and leaves nothing to clean up."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.deprecation import BannerCheck
from tests.support.http_endpoint import Endpoint, Reply

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("pull", [True, False])
def test_an_offline_review_pulls_nothing(docker_client: Any, pull: bool) -> None:
    with Endpoint(lambda _req: Reply(404, b"{}", {"Content-Type": "application/json"})) as registry:
        ref = f"{registry.url.removeprefix('http://')}/nvidia/cuda:12.0.0-base-ubuntu22.04"
        check = BannerCheck({}, pull=pull)
        found, note = check(ref)
        assert found is None, "the image does not exist anywhere: there is no banner to read"
        if pull:
            assert registry.requests, "a live review asks the registry (through the daemon) for the image"
            assert note.startswith("not checked: "), note
        else:
            assert not registry.requests, "an offline review reaches no registry through the daemon"
            assert note == f"not checked: an offline review pulls nothing, and {ref} is not on this host"
        assert check.cleanup() == [] and check.pulled == []
