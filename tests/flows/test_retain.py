"""Keeping what a rollback needs, on the real daemon with two registries of the test's own (the
"upstream" one with NVIDIA-like bases, and the user's retain registry): two releases are built
and kept (bases copied by digest through the registry API, releases pushed), staging runs the
second; NVIDIA deletes the first release's base tag and the Docker host loses the first release;
the rollback still puts it back (from the retained copy) and a rebuild of the first release still
works (its base comes from the copy)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from tasks.registry.models import ACCEPT_MANIFESTS
from tests.conftest import _unavailable
from tests.support.private_registry import delete_tag, private_registry
from tests.support.registry_server import LocalRegistry
from tests.support.site import Site

pytestmark = pytest.mark.docker
OLD, NEW = "12.6.0-runtime-ubuntu22.04", "12.6.3-runtime-ubuntu22.04"
DOCKERFILE = "dockerfiles/svc/Dockerfile"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[LocalRegistry]:
    try:
        registry = private_registry(tmp_path / "upstream", {OLD, NEW})
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise
    yield registry
    registry.stop()


@pytest.fixture
def keep(tmp_path: Path) -> Iterator[LocalRegistry]:
    registry = LocalRegistry(tmp_path / "keep").start()
    yield registry
    registry.stop()


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def release(settings: Any, commit: str, run: str) -> tuple[str, list[dict[str, Any]]]:
    """What the deployment phase does after validation, before staging: build, then keep."""
    from flows.deployment import build_release
    from flows.retain import retain_release

    image = build_release(settings, "staging", "main", commit)
    return image, retain_release(settings, "staging", image, commit, run)


def tags_of(registry: LocalRegistry, repository: str) -> list[str]:
    return list(requests.get(f"{registry.url}/v2/{repository}/tags/list", timeout=10).json()["tags"])


def test_kept_images_survive_upstream_deletion_for_rollback_and_rebuild(
    prefect_harness: None,
    docker_client: Any,
    upstream: LocalRegistry,
    keep: LocalRegistry,
    model_onnx: Path,
    tmp_path: Path,
) -> None:
    from baseimage.settings import load_settings
    from flows.deployment import build_release
    from flows.retain import retain
    from flows.rollback import rollback, target_of
    from tasks.deploy.ledger import Ledger, RetainLog
    from tasks.deploy.release import deploy

    site = Site(tmp_path / "repo", f"{upstream.host}/nvidia/cuda:{OLD}", model_onnx, docker_client)
    site.configure(extra=f"registries:\n  retain_to: {keep.host}/keep\n")
    settings = load_settings(site.config)
    made: list[str] = []
    try:
        first_commit = git(site.root, "rev-parse", "HEAD")
        first, kept_first = release(settings, first_commit, "run-1")
        made.append(first)
        base_old = upstream.seeded[f"nvidia/cuda:{OLD}"]
        (base_entry, release_entry) = kept_first
        assert (base_entry["role"], base_entry["source"]) == ("base", f"{upstream.host}/nvidia/cuda:{OLD}")
        assert base_entry["digest"] == base_old.digest, "copied by digest: the copy is the same index"
        assert base_entry["copy"] == f"{keep.host}/keep/{upstream.host.replace(':', '-')}/nvidia/cuda@{base_old.digest}"
        assert base_entry["env"]["CUDA_VERSION"] == "12.6.0" and "NVIDIA_REQUIRE_CUDA" in base_entry["env"]
        kept_repo = f"keep/{upstream.host.replace(':', '-')}/nvidia/cuda"
        assert tags_of(keep, kept_repo) == [f"{OLD}--{base_old.digest[7:19]}"]
        for arch_digest in base_old.platform_digests.values():  # every platform of the index
            url = f"{keep.url}/v2/{kept_repo}/manifests/{arch_digest}"
            assert requests.head(url, headers={"Accept": ACCEPT_MANIFESTS}, timeout=10).status_code == 200
        assert release_entry["role"] == "release" and release_entry["copy"].startswith(
            f"{keep.host}/keep/baseimage/svc@"
        )

        staging = target_of(settings, "staging")
        ledger = Ledger(settings.state_dir, "staging")
        deploy(docker_client, staging, first, ledger)
        (site.root / DOCKERFILE).write_text((site.root / DOCKERFILE).read_text().replace(OLD, NEW))
        git(site.root, "commit", "-qam", "base 12.6.3")
        second, _ = release(settings, git(site.root, "rev-parse", "HEAD"), "run-2")
        made.append(second)
        deploy(docker_client, staging, second, ledger)
        assert site.image("staging") == second and site.healthy("staging")
        assert ledger.last().previous.digest == release_entry["copy"], "the ledger names the kept copy"

        # NVIDIA deletes the old tag; the Docker host loses the first release and the old base.
        delete_tag(upstream, "nvidia/cuda", OLD)
        docker_client.images.remove(docker_client.images.get(first).id, force=True)
        docker_client.images.remove(f"{upstream.host}/nvidia/cuda:{OLD}", force=True)

        done = rollback(environments=["staging"], reason="retain test", config_path=str(site.config), rollback_id="r1")
        (row,) = done["environments"]
        assert row["action"] == "restored" and row["health"] == "ok", row
        assert site.image("staging") == release_entry["copy"] and site.healthy("staging")

        # A rebuild of the first release: its base tag is gone upstream, so it comes from the copy.
        gone = requests.get(f"{upstream.url}/v2/nvidia/cuda/manifests/{OLD}", timeout=10)
        assert gone.status_code == 404
        for reference in (release_entry["copy"], f"{upstream.host}/nvidia/cuda:{OLD}"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(reference, force=True)
        rebuilt = build_release(settings, "staging", "main", first_commit)
        made.append(rebuilt)
        env = dict(e.split("=", 1) for e in docker_client.images.get(rebuilt).attrs["Config"]["Env"])
        assert rebuilt == first and env["CUDA_VERSION"] == "12.6.0"

        # The scheduled `retain` flow keeps the current bases (the Dockerfile at HEAD: 12.6.3).
        scheduled = retain(config_path=str(site.config))
        assert [k["source"] for k in scheduled["kept"]] == [f"{upstream.host}/nvidia/cuda:{NEW}"]
        entries = RetainLog(settings.state_dir).entries()
        assert [(e.role, e.source.rsplit(":", 1)[-1]) for e in entries] == [
            ("base", OLD),
            ("release", first.rsplit(":", 1)[-1]),
            ("base", NEW),
            ("release", second.rsplit(":", 1)[-1]),
            ("base", NEW),
        ]

        listed = subprocess.run(
            [sys.executable, "-m", "baseimage.cli", "retain", "list", "--config", str(site.config), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [r["copy"] for r in rows] == [e.copy for e in entries]
    finally:
        site.down()
        for image in made:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(image, force=True)
