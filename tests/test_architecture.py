"""The house's floors (docs/architecture.md), checked by walking every import of the product's
modules, those inside functions included: no import loop, and no import from a lower floor to a
higher one.

  tasks/ (domain)  <  baseimage.settings, baseimage.wiring (configuration and the composition root)
                   <  flows/ (orchestration)  <  baseimage.cli, the other baseimage modules, deployments/

tasks/workload/ runs inside the candidate image: it imports nothing of the project but itself, and
no Prefect; services/ (the reference service in that image) imports only itself and the workload."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("tasks", "baseimage", "flows", "deployments", "services")
# The `baseimage` package itself holds only its version: importing `baseimage.wiring` runs it.
LOWER_FLOOR = {"baseimage": 1, "baseimage.settings": 2, "baseimage.wiring": 2}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


def imported(name: str, path: Path) -> Iterator[str]:
    """Every module of the product `name` imports (resolving relative imports and `from X import
    submodule`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([base] if base else [])])
            # `from package import module` imports the module; `from module import name`, the module
            subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        for target in targets:
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in MODULES:
                    if candidate != name:
                        yield candidate
                    break


GRAPH = {name: sorted(set(imported(name, path))) for name, path in MODULES.items()}


def floor(name: str) -> int:
    if name in LOWER_FLOOR:
        return LOWER_FLOOR[name]
    top = name.split(".")[0]
    return {"tasks": 1, "flows": 3}.get(top, 4)


def test_the_walk_sees_the_product() -> None:
    assert len(MODULES) > 100
    assert GRAPH["baseimage"] == [], "the package's __init__ imports nothing (everything may import it)"
    assert "tasks.research.planner" in GRAPH["tasks.research.review"]
    assert "baseimage.wiring" in GRAPH["flows.quarterly_review"], "a `from baseimage import wiring` is seen"


def test_no_import_from_a_lower_floor_to_a_higher_one() -> None:
    upward = [
        f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
        for a, targets in GRAPH.items()
        if not a.startswith("services")
        for b in targets
        if not b.startswith("services") and floor(b) > floor(a)
    ]
    assert upward == []


def test_the_workload_and_the_service_stand_alone() -> None:
    outside = [
        f"{a} imports {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if (a.startswith("tasks.workload") and not b.startswith("tasks.workload"))
        or (a.startswith("services") and not b.startswith(("services", "tasks.workload")))
        or (b.startswith("services") and not a.startswith("services"))
    ]
    assert outside == []
    assert [n for n in importing_prefect() if n.startswith("tasks.workload")] == [], (
        "the workload runs inside the candidate image, without Prefect"
    )


def importing_prefect() -> list[str]:
    return [
        name
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any(
            n.split(".")[0] == "prefect"
            for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
        )
    ]


def test_the_domain_modules_do_not_import_prefect() -> None:
    """tasks/ is the domain, below the orchestration: its modules (the validation checks too) take
    what they log through as a value; the @task wrappers and run loggers live in flows/."""
    assert [n for n in importing_prefect() if n.split(".")[0] == "tasks"] == []


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_no_import_loop() -> None:
    assert cycles() == []


@pytest.mark.parametrize(
    ("source", "target"),
    [("tasks.deploy.release", "baseimage.settings"), ("tasks.update.apply", "flows.migrate")],
)
def test_the_check_would_see_a_violation(source: str, target: str) -> None:
    """The floors rule is not vacuous: an import from tasks/ to the settings or a flow is upward."""
    assert floor(target) > floor(source)
