"""The automations as declared (unit tier): the failure notification covers every flow the code
defines, and the migrate trigger in prefect.yaml is valid for Prefect, listens to the event the
review emits, passes its report, and is created disabled (opt-in)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO_ROOT


def test_the_failure_automation_covers_every_flow() -> None:
    from baseimage.history import FLOWS
    from deployments.setup import failure_automation

    defined = set()
    for path in (REPO_ROOT / "flows").glob("*.py"):
        defined |= set(re.findall(r'@flow\(name="([^"]+)"', path.read_text()))
    assert set(FLOWS) == defined
    automation = failure_automation("00000000-0000-0000-0000-000000000000")
    assert automation.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert "{{ flow_run.state.message }}" in automation.actions[0].body


def test_the_migrate_trigger_is_declared_for_the_review_event() -> None:
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    from deployments.setup import MIGRATE_TRIGGER
    from flows.quarterly_review import EVENT

    spec = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    (migrate,) = [d for d in spec["deployments"] if d["name"] == "migrate"]
    (trigger,) = _initialize_deployment_triggers("migrate", migrate["triggers"])
    assert trigger.name == MIGRATE_TRIGGER and trigger.enabled is False, "opt-in: off until deployments.setup"
    assert trigger.expect == {EVENT}
    assert trigger.parameters == {"report_path": "{{ event.payload.report }}"}
