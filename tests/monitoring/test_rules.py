"""The Prometheus alerting rules shipped in deployments/prometheus/ pass `promtool check rules`
and their own `promtool test rules` cases (each alert fires on the series the watch pushes and
stays quiet otherwise). promtool comes from Debian's prometheus package (scripts/test installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI, REPO_ROOT

RULES = REPO_ROOT / "deployments" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        if IN_CI:
            pytest.fail("promtool is missing: scripts/test installs Debian's prometheus package", pytrace=False)
        pytest.skip("promtool is not installed (Debian's prometheus package; scripts/test installs it)")
    return subprocess.run([binary, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", "baseimage-rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_promtool_rule_tests_pass() -> None:
    done = promtool("test", "rules", "baseimage-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """The check can fail: a rule with bad PromQL is refused."""
    broken = tmp_path / "broken-rules.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: max by (\n")
    done = promtool("check", "rules", str(broken))
    assert done.returncode != 0 and "broken-rules.yml" in done.stdout + done.stderr
