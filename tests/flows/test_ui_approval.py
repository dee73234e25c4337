"""Approvals as the user gives them: in the Prefect UI, in a real browser (Debian's headless
Chromium through Selenium and Debian's chromedriver; no browser download). A migration of the
stub service pauses for its update approval: the form's description shows the plan table and the
diff's counts, the reviewer and a comment are typed and submitted, and the run resumes with the
reviewer recorded. After validation (5 passed, 2 skipped: no GPU), staging and the soak, the
production form shows the validation counts, the soak's coverage and the staging digest; it is
rejected in the UI and staging is rolled back. Screenshots of both forms are kept in the test's
temporary directory (docs/images/ shows one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.support.prefect_server import PrefectServer, prefect_api, wait_paused
from tests.support.registry_server import LocalRegistry, free_port
from tests.support.site import PREVIOUS, Site

pytestmark = pytest.mark.docker
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# The machine's network is closed: without these Chromium tries to reach outside hosts at start.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1200",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        from tests.conftest import _unavailable

        _unavailable("Debian's chromium and chromium-driver are not installed (scripts/test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def paused(server: PrefectServer, proc: subprocess.Popen[str], timeout: float = 240) -> str:
    return str(wait_paused(server, proc, timeout)["id"])


def answer_in_the_ui(
    driver: Any, server: PrefectServer, run_id: str, *, approve: bool, reviewer: str, comment: str, shot: Path
) -> str:
    """Open the paused run's page, press Resume, fill the form, keep a screenshot, submit; returns
    the text of the form (its description included)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ui = server.api_url.removesuffix("/api")
    driver.get(f"{ui}/runs/flow-run/{run_id}")
    wait = WebDriverWait(driver, 60)
    resume = wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Resume']")))
    resume.click()
    reviewer_box = wait.until(
        ec.visibility_of_element_located(
            (By.XPATH, "//label[normalize-space()='Reviewer']/ancestor::*[.//textarea][1]//textarea")
        )
    )
    form = driver.find_element(By.XPATH, "//*[normalize-space()='Resume Flow Run']/ancestor::*[.//textarea][1]")
    text = str(form.text)
    if approve:
        toggle = driver.find_element(
            By.XPATH, "//label[starts-with(normalize-space(), 'Approve')]/following::input[@type='checkbox'][1]"
        )
        driver.execute_script("arguments[0].click()", toggle)
    reviewer_box.send_keys(reviewer)
    comment_box = driver.find_element(
        By.XPATH, "//label[starts-with(normalize-space(), 'Comment')]/ancestor::*[.//textarea][1]//textarea"
    )
    comment_box.send_keys(comment)
    driver.save_screenshot(str(shot))
    driver.find_element(By.XPATH, "//button[normalize-space()='Submit']").click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = prefect_api.get(f"{server.api_url}/flow_runs/{run_id}", timeout=10).json()["state"]["type"]
        if state != "PAUSED":
            return text
        time.sleep(0.5)
    raise AssertionError(f"the run {run_id} did not resume after Submit")


def test_approvals_given_in_the_prefect_ui(
    tmp_path: Path, browser: Any, docker_client: Any, registry: LocalRegistry, model_onnx: Path
) -> None:
    site = Site(tmp_path / "repo", f"{registry.host}/nvidia/cuda:12.6.0-runtime-ubuntu22.04", model_onnx, docker_client)
    vport = free_port()
    site.configure(
        approvals="update, production",
        extra=f"""    build_args: {{PORT: "{vport}", MODE: ok}}
policy:
  require_gpu: false
validation:
  port: {vport}
  base_path: /cgi-bin/svc
  health_timeout_s: 20
  train_steps: 4
  train_timeout_s: 30
  redis_image: null
  containers:
    - name: service
      gpu: true
""",
    )
    docker_client.images.build(
        path=str(site.root), dockerfile="dockerfiles/svc/Dockerfile", tag=PREVIOUS, labels={"baseimage.test": "1"}
    )
    site.start_previous()
    server = PrefectServer(tmp_path / "prefect-home").start()
    argv = [sys.executable, "-m", "baseimage.cli", "migrate", "--to", "12.9.1", "--no-pr", "--validation", "subflow"]
    argv += ["--config", str(site.config), "--out", str(site.root / "reports"), "--poll-interval", "1"]
    proc = subprocess.Popen(
        argv, cwd=site.root, env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        update_form = answer_in_the_ui(
            browser, server, paused(server, proc), approve=True, reviewer="alice", comment="diff reviewed in the UI",
            shot=tmp_path / "update-approval.png",
        )  # fmt: skip
        assert "Approve the update?" in update_form
        assert "current → target" in update_form and "torch / torchvision" in update_form, update_form
        assert "12.6.0-runtime-ubuntu22.04" in update_form and "12.9.1-runtime-ubuntu22.04" in update_form
        assert "files changed, +" in update_form, "the diff's counts"
        assert "Reviewer" in update_form and "Who decides" in update_form, "labels and help text"
        time.sleep(1.5)
        production_form = answer_in_the_ui(
            browser, server, paused(server, proc, timeout=400), approve=False, reviewer="bob",
            comment="latency looked off in the soak", shot=tmp_path / "production-approval.png",
        )  # fmt: skip
        assert "Approve production?" in production_form
        assert "validation passed: 5 passed, 2 skipped: no GPU (gpu-detect, gpu-utilization)" in production_form
        assert "Staging soak: passed" in production_form and "coverage" in production_form
        assert "Staging runs baseimage/svc:" in production_form and "image sha256:" in production_form
        assert proc.wait(300) == 1, proc.stdout.read() if proc.stdout else ""
        assert site.image("staging") == PREVIOUS and site.healthy("staging"), "the rejection rolled staging back"
        assert site.image("production") == PREVIOUS
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
        site.down()
    (report,) = (site.root / "reports").glob("migrate-*.json")
    outcome = json.loads(report.read_text())
    assert [(d["stage"], d["outcome"], d["reviewer"], d["comment"]) for d in outcome["decisions"]] == [
        ("update", "approved", "alice", "diff reviewed in the UI"),
        ("production", "rejected", "bob", "latency looked off in the soak"),
    ]
    assert outcome["outcome"] == "stopped at production: rejected; staging rolled back"
    assert [r["environment"] for r in outcome["rollback"]["environments"]] == ["staging"]
    for shot in ("update-approval.png", "production-approval.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("BASEIMAGE_UI_SCREENSHOTS"):  # refresh the README's picture by hand
        shutil.copy(tmp_path / "production-approval.png", REPO_ROOT / "docs" / "images" / "production-approval.png")
        shutil.copy(tmp_path / "update-approval.png", REPO_ROOT / "docs" / "images" / "update-approval.png")
