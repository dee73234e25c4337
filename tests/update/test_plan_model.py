"""The plan value's own rules: the repository's facts it is given, what it says of the snapshot,
and the pull request it describes."""

from __future__ import annotations

from tasks.update.approval_text import pull_request_body
from tasks.update.plan import ImageChange, MigrationPlan, NoMigration


def _plan() -> MigrationPlan:
    own = ImageChange("a", "a/Dockerfile", "x:1", "x:2", build_args=(("BASE", "x:1"),), pyproject="a/pyproject.toml")
    bare = ImageChange("b", "b/Dockerfile", "x:1", "x:2")
    return MigrationPlan((own, bare), ("a: CUDA 12.6 is EOL",), warnings=("c: not researched",))


def test_repository_facts_fill_in_what_a_change_lacks_and_keep_what_it_has() -> None:
    plan = _plan().with_repository(
        {"a": (("BASE", "other"),), "b": (("CUDA", "12.6.0"),)},
        {"a": "elsewhere.toml", "b": "b/pyproject.toml"},
        "c.yaml",
    )
    a, b = plan.changes
    assert a.build_args == (("BASE", "x:1"),) and a.pyproject == "a/pyproject.toml", "a change's own facts win"
    assert b.build_args == (("CUDA", "12.6.0"),) and b.pyproject == "b/pyproject.toml"
    assert plan.config == "c.yaml" and plan.warnings == ("c: not researched",)


def test_a_plan_on_the_snapshot_says_so_first() -> None:
    plan = _plan().on_snapshot("cannot connect")
    assert plan.warnings[0].startswith("this plan was made against the bundled snapshot")
    assert "(cannot connect)" in plan.warnings[0] and plan.warnings[1] == "c: not researched"
    assert "- warning: this plan was made against the bundled snapshot" in plan.summary()


def test_nothing_due_on_the_snapshot_is_never_a_plain_all_clear() -> None:
    assert NoMigration().summary == "no action: nothing to migrate" and NoMigration().warnings == ()
    offline = NoMigration.on_snapshot("cannot connect")
    assert offline.summary == "no action: nothing to migrate on the bundled snapshot"
    assert "says nothing of today's registry" in offline.warnings[0]


def test_the_pull_request_says_the_plan_why_and_what_is_left() -> None:
    body = pull_request_body(_plan())
    assert body.startswith("## Plan\n\n- a: x:1 -> x:2\n- b: x:1 -> x:2\n- warning: c: not researched")
    assert "## Why\n\n- a: CUDA 12.6 is EOL" in body
    assert "- [ ] approval (production)" in body


def test_nothing_due_in_an_offline_report_says_which_report() -> None:
    found = NoMigration.in_offline_report("reports/review-2026-12-01.json")
    assert found.summary == "no action: nothing to migrate in a review of an offline snapshot"
    assert found.warnings[0].startswith("reports/review-2026-12-01.json is a review of an offline snapshot")
