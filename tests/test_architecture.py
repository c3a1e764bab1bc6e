"""Dependencies point one way: workers → webapp → {evaluation (its torch-free parts), fitting}, and
evaluation → fitting. The Celery app is the Django project's (webapp/celery_app.py): the web side
publishes jobs by task name and never imports workers. Workers reach webapp only through its services,
selectors, models and the task table; inside webapp, the apps import each other without cycles."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "evaluation": {"django", "celery", "webapp", "workers"},
    "fitting": {"django", "celery", "webapp", "workers", "evaluation", "torch", "transformers"},
    "webapp": {"workers", "torch", "transformers", "lmms_eval"},
}
# What workers may import from webapp: writes, reads, rows, and the shared infrastructure of core.
WORKER_ENTRY_POINTS = {"services", "selectors", "models", "task_names", "celery_app", "storage", "scoring", "configs"}


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a file imports (``from a.b import c`` gives ``a.b``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imported_top_level_modules(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_against_the_flow(package):
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_top_level_modules(path) & FORBIDDEN[package])
        for path in (REPO / package).rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"{package} must not import {sorted(FORBIDDEN[package])}: {offenders}"


def test_workers_reach_webapp_only_through_services_selectors_and_models():
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in (REPO / "workers").rglob("*.py")
        for name in imported_modules(path)
        if name.startswith("webapp.") and name.split(".")[-1] not in WORKER_ENTRY_POINTS and name != "webapp.jobs"
    ]
    assert not offenders, offenders


def webapp_app_graph() -> dict[str, set[str]]:
    """App → the other webapp apps it imports (settings, urls and the Celery app are the project, not an app)."""
    project = {"settings", "urls", "wsgi", "celery_app"}
    graph: dict[str, set[str]] = {}
    for path in (REPO / "webapp").rglob("*.py"):
        parts = path.relative_to(REPO / "webapp").parts
        if len(parts) < 2 or "migrations" in parts:
            continue
        app = parts[0]
        for name in imported_modules(path):
            if name.startswith("webapp."):
                other = name.split(".")[1]
                if other != app and other not in project:
                    graph.setdefault(app, set()).add(other)
    return graph


def test_webapp_apps_import_each_other_without_cycles():
    graph = webapp_app_graph()
    cycles = []

    def visit(app, path):
        for other in sorted(graph.get(app, ())):
            if other in path:
                cycles.append(" → ".join([*path[path.index(other):], other]))
            else:
                visit(other, [*path, other])

    for app in sorted(graph):
        visit(app, [app])
    assert not cycles, sorted(set(cycles))


def test_the_broker_transport_that_every_process_loads_needs_only_kombu():
    """Every process (web, workers, beat) loads webapp.core.broker through the broker_transport setting:
    it must pull in no Django, no tasks and no libraries."""
    import sys

    imported = imported_top_level_modules(REPO / "webapp" / "core" / "broker.py")
    assert imported <= set(sys.stdlib_module_names) | {"kombu"}, imported


# A vocabulary that crosses packages has one definition; others import it.
ONE_HOME = {
    "MULTI_LEVEL_LAYERS_VIT_L": "evaluation/vlm_spec.py",
    "FLOPS_FORMULA_VERSION": "fitting/flops.py",
    "BENCHMARKS": "evaluation/suites.py",
    "COMPRESSOR_METHODS": "evaluation/vlm_spec.py",
    "METHOD_LABELS": "evaluation/vlm_spec.py",
    "LLAVA_PROJECTOR_METHOD": "evaluation/vlm_spec.py",
    "CELERY_TASK_ROUTES": "webapp/settings.py",
    "ROUTES": "webapp/jobs/task_names.py",
    "MAX_ID": "webapp/core/limits.py",
    "MAX_INT": "webapp/core/limits.py",
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


MAX_MODULE_LINES = 420  # "a module you cannot hold in your head (~400 lines) is split along its seams"


def test_modules_fit_in_ones_head_or_say_why_not():
    """A module past ~400 lines states at its top why it is not split ("Longer than 400 lines: ...")."""
    long = {}
    for package in ("webapp", "workers", "evaluation", "fitting", "bench"):
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if text.count("\n") > MAX_MODULE_LINES and "Longer than 400 lines:" not in docstring:
                long[str(path.relative_to(REPO))] = text.count("\n")
    assert not long, long
