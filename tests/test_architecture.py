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
