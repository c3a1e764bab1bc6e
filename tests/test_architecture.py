"""Dependencies point one way: webapp → workers → {evaluation, fitting}."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "evaluation": {"django", "celery", "webapp", "workers"},
    "fitting": {"django", "celery", "webapp", "workers", "evaluation", "torch", "transformers"},
    "webapp": {"torch", "transformers", "lmms_eval"},
}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_against_the_flow(package):
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_top_level_modules(path) & FORBIDDEN[package])
        for path in (REPO / package).rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"{package} must not import {sorted(FORBIDDEN[package])}: {offenders}"


def test_webapp_reaches_workers_only_through_the_celery_app():
    """The web side publishes by task name; it never imports task modules (which pull libraries)."""
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "webapp").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workers")
        and node.module != "workers.celery_app"
    ]
    assert not offenders


def test_the_broker_transport_that_every_process_loads_needs_only_kombu():
    """Web processes load workers.broker through the broker_transport setting, not by an import:
    it must pull in no Django, no tasks and no libraries."""
    import sys

    imported = imported_top_level_modules(REPO / "workers" / "broker.py")
    assert imported <= set(sys.stdlib_module_names) | {"kombu"}, imported


# A vocabulary that crosses packages has one definition; others import it.
ONE_HOME = {
    "MULTI_LEVEL_LAYERS_VIT_L": "evaluation/vlm_spec.py",
    "FLOPS_FORMULA_VERSION": "fitting/flops.py",
    "BENCHMARKS": "evaluation/suites.py",
    "COMPRESSOR_METHODS": "evaluation/vlm_spec.py",
    "CELERY_TASK_ROUTES": "webapp/settings.py",
    "ROUTES": "webapp/jobs/task_names.py",
}


def top_level_assignments(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def test_each_shared_vocabulary_has_one_definition():
    homes: dict[str, list[str]] = {name: [] for name in ONE_HOME}
    for package in ("webapp", "workers", "evaluation", "fitting"):
        for path in (REPO / package).rglob("*.py"):
            for name in top_level_assignments(path) & set(ONE_HOME):
                homes[name].append(str(path.relative_to(REPO)))
    assert homes == {name: [home] for name, home in ONE_HOME.items()}


def test_the_papers_table_is_shipped_once():
    copies = [path for path in REPO.rglob("paper_reasoning_scores.csv") if ".venv" not in path.parts]
    assert [str(path.relative_to(REPO)) for path in copies] == ["fitting/data/paper_reasoning_scores.csv"]
