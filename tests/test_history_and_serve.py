"""`baseimage history --since` parsing, and prefect.yaml as `baseimage serve` reads it: every
deployment's entrypoint is a flow of that name, schedules and pools as the policy wants them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from baseimage.cli import main
from baseimage.history import FLOWS, parse_since
from baseimage.serve import read_specs, to_runner_deployments
from tasks.errors import BaseImageError, ConfigError
from tests.support.prefect_server import DEPLOYMENTS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2026, 11, 21, 12, 0, tzinfo=UTC)),
        ("12h", datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 14, 12, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T06:00:00+01:00", datetime(2026, 11, 1, 5, 0, tzinfo=UTC)),
    ],
)
def test_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_since_names_what_it_accepts() -> None:
    with pytest.raises(BaseImageError, match=r"--since 'last week': use 7d, 12h, 2w or a date"):
        parse_since("last week", NOW)


def test_prefect_yaml_has_every_deployment_the_policy_needs() -> None:
    specs = {s.name: s for s in read_specs()}
    assert set(specs) == DEPLOYMENTS
    assert specs["quarterly-review"].crons == (("0 6 4 2,5,8,11 *", "UTC"),)
    assert specs["annual-update"].crons and specs["deprecation-watch"].crons == (("0 7 * * *", "UTC"),)
    assert specs["validate"].pool == specs["soak-monitor"].pool == "gpu"
    assert {specs[n].pool for n in ("quarterly-review", "annual-update", "migrate", "rollback")} == {"default"}
    assert not specs["migrate"].crons and specs["migrate"].parameters["validation"] == "deployment"
    assert read_specs(timezone="Europe/Berlin")[0].crons[0][1] == "Europe/Berlin"
    flows = {d.name: d for d in to_runner_deployments(list(specs.values()))}
    assert set(flows) == set(specs)
    for deployment in flows.values():
        assert deployment.flow_name in FLOWS, f"{deployment.flow_name} is missing from `baseimage history`"
        assert deployment.name == deployment.flow_name, "run_deployment('<flow>/<flow>') relies on it"


def test_serve_list_prints_schedules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--list", "--timezone", "Asia/Tokyo"]) == 0
    out = capsys.readouterr().out
    assert "quarterly-review" in out and "0 6 4 2,5,8,11 * (Asia/Tokyo)" in out and "ad hoc" in out


def test_bad_prefect_yaml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "prefect.yaml"
    path.write_text("deployments:\n  - entrypoint: flows/migrate.py:migrate\n")
    with pytest.raises(ConfigError, match=r"prefect\.yaml: deployments\[0\] needs a name and an entrypoint"):
        read_specs(path)


@pytest.mark.parametrize(
    ("api_url", "message"),
    [
        ("http://127.0.0.1:9/api", "set PREFECT_API_URL to the server the flows run on"),
        (None, "history needs a Prefect server: set PREFECT_API_URL"),
    ],
)
def test_history_without_a_server_says_what_to_set(api_url: str | None, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    done = subprocess.run(
        [sys.executable, "-m", "baseimage.cli", "history"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
