"""Secrets stay where they are kept. With a GitHub token, an NGC API key, a registry password and
a webhook URL (the Slack kind, where the URL is the secret) in the environment, `scan`, `review`,
`migrate` (dry run and real, with a pull request) and the deprecation watch run on a real Prefect
server; none of the secrets appears in what they print, in reports/, or in the runs' logs and
artifacts read back from the API, while each secret did reach the one place it is for."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import AUTH, REPO_ROOT, TEST_LABEL
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.prefect_server import PrefectServer
from tests.support.pytorch_index import StaticIndex, build_tree
from tests.support.registry_server import LocalRegistry
from tests.support.repo import commit_all, copy_managed

pytestmark = pytest.mark.docker
OSV = REPO_ROOT / "tests" / "fixtures" / "osv"
SECRETS = {
    "GITHUB_TOKEN": "ghp_SecretTokenValue0123456789abcdef",
    "NGC_API_KEY": "nvapi-SecretNgcKey-0123456789abcdef",
    "REG_PASSWORD": AUTH[1],
}
HOOK_PATH = "/services/T0SECRET/B0SECRET/webhookSecretPath0123"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIndex]:
    with StaticIndex(build_tree(tmp_path_factory.mktemp("pytorch") / "whl")) as served:
        yield served


def collect(server: PrefectServer) -> str:
    """Every log line, artifact and flow run (parameters included) the server holds, as text."""
    parts = []
    for kind in ("logs", "artifacts", "flow_runs", "task_runs"):
        offset = 0
        while True:
            page = requests.post(
                f"{server.api_url}/{kind}/filter", timeout=20, json={"limit": 200, "offset": offset}
            ).json()
            parts.append(json.dumps(page))
            if len(page) < 200:
                break
            offset += 200
    return "\n".join(parts)


def test_no_secret_leaves_its_place(
    tmp_path: Path,
    docker_client: Any,
    registry: LocalRegistry,
    auth_registry: LocalRegistry,
    index: StaticIndex,
) -> None:
    github_calls: list[Request] = []
    alerts: list[Request] = []

    def github(req: Request) -> Reply:
        github_calls.append(req)
        if req.path.endswith("/pulls"):
            return Reply(201, b'{"number": 7, "html_url": "http://127.0.0.1/acme/training/pull/7"}')
        return Reply(201, b"{}")

    def hook(req: Request) -> Reply:
        alerts.append(req)
        return Reply(200, b"ok")

    def nvidia(_req: Request) -> Reply:
        return Reply(404, b"not mirrored")

    repo = copy_managed(tmp_path / "repo")
    private = repo / "dockerfiles" / "private"
    private.mkdir()
    (private / "Dockerfile").write_text(f"FROM {auth_registry.host}/nvidia/cuda:12.6.0-runtime-ubuntu22.04\n")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    old = f"{registry.host}/nvidia/cuda:12.1.0-runtime-ubuntu22.04"
    docker_client.images.pull(old)
    watched = docker_client.containers.run(
        old, ["sleep", "120"], detach=True, network_mode="host",
        labels={TEST_LABEL: "1", "com.docker.compose.project": "secrets-staging"},
    )  # fmt: skip
    server = PrefectServer(tmp_path / "prefect-home").start()
    try:
        with Endpoint(github) as gh, Endpoint(hook) as hooks, Endpoint(nvidia) as support:
            webhook = f"{hooks.url}{HOOK_PATH}"
            config = repo / "config" / "policy.yaml"
            text = config.read_text()
            text = text.replace(
                "images:\n",
                "images:\n  - name: private\n    dockerfile: dockerfiles/private/Dockerfile\n    track: cuda\n",
                1,
            )
            text = text[: text.index("registries:")] + text[text.index("policy:") :]
            text = text[: text.index("environments:")]
            text = text.replace("required_for: [update, production]", "required_for: [production]")
            text += f"""
registries:
  mirrors: {{docker.io: "{registry.url}", nvcr.io: "{registry.url}"}}
  credentials:
    nvcr.io: {{username: $oauthtoken, password_env: NGC_API_KEY}}
    "{auth_registry.host}": {{username: {AUTH[0]}, password_env: REG_PASSWORD}}
environments:
  staging:
    compose_file: deployments/compose/training.yaml
    project: secrets-staging
    health_url: http://127.0.0.1:9/health
github:
  repository: acme/training
  api_url: {gh.url}
  token_block: null
alerts:
  webhook_url_env: BASEIMAGE_TEST_WEBHOOK
research:
  nvidia_support_url: "{support.url}/manifests/cuda.yaml"
  pytorch_index: "{index.url}"
  osv_db: "{OSV}"
"""
            config.write_text(text)
            commit_all(repo)
            subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(remote)], check=True)
            env = {**server.env(), **SECRETS, "BASEIMAGE_TEST_WEBHOOK": webhook, "PREFECT_LOGGING_LEVEL": "INFO"}
            cli = [sys.executable, "-m", "baseimage.cli"]
            common = ["--config", str(config)]
            runs = [
                ([*cli, "-v", "scan", *common], {0, 3}),
                (
                    [*cli, "-v", "review", *common, "--out", str(repo / "reports"), "--no-banner", "--no-docs"],
                    {0, 3, 10},
                ),
                ([*cli, "migrate", "--dry-run", "--to", "12.9.1", *common, "--out", str(repo / "reports")], {0}),
                (
                    [
                        *cli,
                        "migrate",
                        "--to",
                        "12.9.1",
                        "--validation",
                        "skip",
                        *common,
                        "--out",
                        str(repo / "reports"),
                    ],
                    {0, 1},
                ),
                (
                    [
                        sys.executable,
                        "-c",
                        "import sys; from flows.deprecation_watch import deprecation_watch; "
                        "deprecation_watch(config_path=sys.argv[1], reports_dir=sys.argv[2])",
                        str(config),
                        str(repo / "reports"),
                    ],
                    {0},
                ),
            ]
            printed = []
            for argv, codes in runs:
                done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=400, check=False)
                printed.append(done.stdout + done.stderr)
                assert done.returncode in codes, f"{argv[3:5]} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
            time.sleep(3)  # the server writes the last log batches
            stored = collect(server)
    finally:
        watched.remove(force=True)
        server.stop()
    # Each secret was used where it belongs ...
    assert any(c.headers.get("authorization") == f"Bearer {SECRETS['GITHUB_TOKEN']}" for c in github_calls)
    assert alerts and alerts[0].path == HOOK_PATH, "the alert went to the webhook"
    assert "NVIDIA_CUDA_END_OF_LIFE" in json.loads(alerts[0].body)["text"]
    # ... and nowhere else.
    reports = "\n".join(
        p.read_text(errors="replace") for p in (repo / "reports").rglob("*") if p.is_file() and p.suffix != ".png"
    )
    places = {"printed": "\n".join(printed), "reports": reports, "prefect": stored}
    for name, secret in [*SECRETS.items(), ("webhook path", HOOK_PATH.split("/")[-1])]:
        for where, text in places.items():
            assert secret not in text, f"{name} leaked into {where}"
    assert "webhook http://127.0.0.1:" in places["prefect"], "the watch says where the alert went (host only)"
