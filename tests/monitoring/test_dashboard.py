"""The Grafana dashboard only charts metrics this project exports."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO_ROOT

EXPORTED = {
    "baseimage_deprecated_images",
    "baseimage_days_to_deletion",
    "baseimage_last_review_timestamp_seconds",
    "baseimage_soak_passed",
    "training_tasks_total",
    "cuda_oom_total",
    "training_gpu_util_peak_percent",
    "training_gpu_util_mean_percent",
}


def test_dashboard_uses_exported_metrics() -> None:
    dashboard = json.loads((REPO_ROOT / "deployments" / "grafana" / "baseimage-dashboard.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b(?:baseimage|training|cuda)_[a-z_]+\b", target["expr"]))
    assert names and names <= EXPORTED, names - EXPORTED
    assert {"baseimage_deprecated_images", "baseimage_days_to_deletion"} <= names
