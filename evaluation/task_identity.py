"""What defines an lmms-eval task, hashed: a result is stale when the task it was computed with changed.

``task_identity("pope")`` finds the task's YAML the way lmms-eval 0.7.3 indexes tasks (the ``--include-path``
folders first, then lmms-eval's own ``tasks/`` folder), follows its ``include:`` chain and, for a group, its task
list, and collects the Python modules its ``!function`` tags name (resolved as lmms-eval resolves them: a file
next to the YAML that names it, else a module of ``lmms_eval.tasks``), with the ``lmms_eval.tasks`` modules and
sibling files they import and the YAML files they read (MMBench's and MathVista's utils read a config YAML).
The identity is ``{"task", "yaml_sha256", "files": [{"path", "sha256"}], "lmms_eval_version"}``:
``yaml_sha256`` (the stamp's ``task_hash``) is sha256 over the sorted ``path:sha256\\n`` lines, paths relative
to the folder searched (so a copy of a task folder hashes the same until a byte of it changes).

The synthetic tasks' YAML files hold absolute paths of the machine that wrote them: their identity is the YAML
``evaluation.synthetic`` renders (paths replaced by ``$SUITE``), its helper module and ``evaluation/synthetic.py``.

Torch-free and Django-free (it reads files; it never imports lmms-eval): the web side imports it to know the
current identity of each benchmark (``current_task_hashes``, cached per process).
"""

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import warnings
from pathlib import Path

import yaml

# Metrics whose value a language model judges (MMBench's gpt_eval_score, MathVista's llm_as_judge_eval).
LLM_JUDGED_METRICS = frozenset({"gpt_eval_score", "llm_as_judge_eval"})
GENERATION_KEYS = ("until", "max_new_tokens", "temperature", "top_p", "num_beams", "do_sample")
_IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints"}


class TaskIdentityError(LookupError):
    """A task whose YAML cannot be found or read; the message says which and where it looked."""


class _FunctionRef:
    def __init__(self, name: str, yaml_dir: Path):
        self.name, self.yaml_dir = name, yaml_dir


class _Loader(yaml.SafeLoader):
    """lmms-eval's YAML with ``!function`` kept as a reference (never imported)."""


def _function_ref(loader, node):
    return _FunctionRef(loader.construct_scalar(node), Path(loader.name).parent)


_Loader.add_constructor("!function", _function_ref)


def lmms_eval_tasks_dir() -> Path:
    spec = importlib.util.find_spec("lmms_eval")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise TaskIdentityError("lmms-eval is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


def lmms_eval_version() -> str | None:
    try:
        return importlib.metadata.version("lmms_eval")
    except importlib.metadata.PackageNotFoundError:
        return None


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, "rb") as file:
            loader = _Loader(file)
            loader.name = str(path)
            try:
                config = loader.get_single_data()
            finally:
                loader.dispose()
    except (OSError, yaml.YAMLError) as error:
        raise TaskIdentityError(f"cannot read task YAML {path}: {error}") from error
    return config if isinstance(config, dict) else {}


def _yaml_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        found.extend(Path(folder) / name for name in sorted(files) if name.endswith(".yaml"))
    return found


@functools.cache
def _index(root: str) -> dict[str, Path]:
    """Task and group names defined in ``root``'s YAML files -> the file (cached per process and folder)."""
    pattern = re.compile(r"^(?:task|group):[ \t]*[\"']?([^\s\"'#\[]+)[\"']?[ \t]*(?:#.*)?$", re.MULTILINE)
    index: dict[str, Path] = {}
    for path in _yaml_files(Path(root)):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for name in pattern.findall(text):
            index.setdefault(name, path)
    return index


def _find_yaml(task: str, roots: list[Path]) -> tuple[Path, Path]:
    """(the YAML defining ``task``, the root it was found in): the first root that defines it wins."""
    for root in roots:
        path = _index(str(root)).get(task)
        if path is not None:
            return path, root
    raise TaskIdentityError(f"no task YAML defines {task!r} in {', '.join(str(root) for root in roots)}")


def _function_module(ref: _FunctionRef, package_dir: Path) -> Path | None:
    """The module file a ``!function a.b.f`` tag names: ``a/b.py`` next to the YAML, else in lmms_eval."""
    module = ref.name.rpartition(".")[0]
    if not module:
        return None
    relative = ref.yaml_dir / f"{module}.py"
    if relative.is_file():
        return relative
    return _module_file(module, package_dir)


def _module_file(module: str, package_dir: Path) -> Path | None:
    """A ``lmms_eval.tasks...`` module's file (package dir, module or package ``__init__``), else None."""
    if not module.startswith("lmms_eval.tasks."):  # lmms-eval's own library code is the version's
        return None
    base = package_dir.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _python_dependencies(path: Path, package_dir: Path) -> list[Path]:
    """Files a task module imports from lmms_eval.tasks or its own folder, and the YAML files it names."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # lmms-eval's own invalid escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = ast.parse(path.read_text(errors="replace"))
    except (OSError, SyntaxError):
        return []
    found = []
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            folder = path.parent.joinpath(*([".."] * (node.level - 1)))
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found.extend(p for name in names if (p := folder.joinpath(*name.split(".")).with_suffix(".py")).is_file())
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".yaml"):
            sibling = path.parent / node.value
            if "/" not in node.value and sibling.is_file():
                found.append(sibling)
        for module in modules:
            file = _module_file(module, package_dir) or (
                path.parent / f"{module}.py" if "." not in module and (path.parent / f"{module}.py").is_file() else None
            )
            if file is not None:
                found.append(file)
    return found


def _walk_values(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_values(item)
    else:
        yield value


class _Collector:
    def __init__(self, roots: list[Path]):
        self.roots = roots  # include paths first, lmms-eval's tasks folder last
        self.package_dir = lmms_eval_tasks_dir().parent
        self.files: set[Path] = set()
        self.tasks_seen: set[str] = set()

    def add_file(self, path: Path) -> bool:
        path = path.resolve()
        if path in self.files:
            return False
        self.files.add(path)
        return True

    def add_python(self, path: Path) -> None:
        if self.add_file(path):
            for dependency in _python_dependencies(path, self.package_dir):
                self.add_python(dependency) if dependency.suffix == ".py" else self.add_file(dependency)

    def add_config(self, config: dict, yaml_dir: Path) -> None:
        includes = config.get("include") or []
        for include in [includes] if isinstance(includes, str) else includes:
            self.add_yaml(Path(include) if Path(include).is_file() else yaml_dir / include)
        for value in _walk_values({key: value for key, value in config.items() if key != "task"}):
            if isinstance(value, _FunctionRef) and (module := _function_module(value, self.package_dir)):
                self.add_python(module)
        subtasks = config.get("task")
        if isinstance(subtasks, list):  # a group: each member by name, or an inline config
            for entry in subtasks:
                if isinstance(entry, str):
                    self.add_task(entry)
                elif isinstance(entry, dict):
                    if isinstance(entry.get("task"), str) and entry["task"] not in self.tasks_seen:
                        try:
                            self.add_task(entry["task"])
                        except TaskIdentityError:
                            pass  # an inline task defined here only
                    self.add_config(entry, yaml_dir)

    def add_yaml(self, path: Path) -> None:
        if not path.is_file():
            raise TaskIdentityError(f"task YAML {path} (included) does not exist")
        if self.add_file(path):
            self.add_config(_read_yaml(path), path.parent)

    def add_task(self, task: str) -> None:
        self.tasks_seen.add(task)
        self.add_yaml(_find_yaml(task, self.roots)[0])

    def label(self, path: Path) -> str:
        """The path relative to the folder searched (lmms-eval's tasks folder, or an include path)."""
        for root in [self.roots[-1], *self.roots[:-1]]:
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return path.name

    def listing(self) -> list[dict]:
        rows = [{"path": self.label(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
                for path in self.files]
        return sorted(rows, key=lambda row: row["path"])


def _identity(task: str, files: list[dict]) -> dict:
    digest = hashlib.sha256("".join(f"{row['path']}:{row['sha256']}\n" for row in files).encode()).hexdigest()
    return {"task": task, "yaml_sha256": digest, "files": files, "lmms_eval_version": lmms_eval_version()}


def _synthetic_identity(task: str) -> dict:
    from . import synthetic  # PIL, no torch

    files = {
        f"synthetic/{task}.yaml": synthetic.task_yaml_text(task, "$SUITE").encode(),
        f"synthetic/{synthetic.HELPER_MODULE}.py": synthetic.HELPER_SOURCE.encode(),
        "evaluation/synthetic.py": Path(synthetic.__file__).read_bytes(),
    }
    return _identity(task, [{"path": path, "sha256": hashlib.sha256(data).hexdigest()}
                            for path, data in sorted(files.items())])


def task_identity(task: str, include_paths=()) -> dict:
    """The identity of one lmms-eval task (see the module docstring); ``include_paths`` are searched first."""
    from .synthetic import SYNTHETIC_TASKS

    roots = [Path(path).resolve() for path in include_paths]
    if task in SYNTHETIC_TASKS and not any(task in _index(str(root)) for root in roots):
        return _synthetic_identity(task)
    collector = _Collector(roots + [lmms_eval_tasks_dir().resolve()])
    collector.add_task(task)
    return _identity(task, collector.listing())


@functools.cache
def current_task_hashes() -> dict[str, str]:
    """Benchmark key -> the installed task's ``yaml_sha256`` (a task that cannot be read is left out);
    computed once per process."""
    from .suites import BENCHMARKS

    hashes = {}
    for key, benchmark in BENCHMARKS.items():
        try:
            hashes[key] = task_identity(benchmark.task)["yaml_sha256"]
        except TaskIdentityError:
            continue
    return hashes


@functools.cache
def current_hashes_by_task() -> dict[str, str]:
    """lmms-eval task -> its installed ``yaml_sha256``, for every catalog benchmark's task and the rule-based
    variant it runs without a judge (a task that cannot be read is left out); computed once per process."""
    from .suites import BENCHMARKS

    hashes = {BENCHMARKS[key].task: value for key, value in current_task_hashes().items()}
    for benchmark in BENCHMARKS.values():
        if benchmark.rule_based_task:
            try:
                hashes[benchmark.rule_based_task] = task_identity(benchmark.rule_based_task)["yaml_sha256"]
            except TaskIdentityError:
                continue
    return hashes


def _plain(value):
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def loaded_task_stamp(task: str, leaves: list, include_paths=()) -> tuple[dict, list[dict]]:
    """A result stamp's entry for one requested task: its hash, the generation kwargs lmms-eval resolved (per
    leaf task when it is a group) and the judge (None unless a metric is LLM-judged); and the files hashed."""
    try:
        identity = task_identity(task, include_paths)
    except TaskIdentityError as error:
        identity = {"yaml_sha256": None, "files": [], "problem": str(error)}
    kwargs = {leaf.config.task: _plain(dict(leaf.config.generation_kwargs or {})) for leaf in leaves}
    metrics = {entry.get("metric") for leaf in leaves for entry in (leaf.config.metric_list or [])}
    entry = {
        "task_hash": identity["yaml_sha256"],
        "generation_kwargs": kwargs[task] if list(kwargs) == [task] else kwargs,
        # evaluation.judges replaces it with the judge the run used
        "judge": {"kind": "none"} if metrics & LLM_JUDGED_METRICS else None,
        **({"task_hash_problem": identity["problem"]} if "problem" in identity else {}),
    }
    return entry, identity["files"]


def tasks_stamp(loaded: dict[str, list], include_paths=()) -> dict:
    """The stamp's ``tasks`` (per requested task: ``task_hash``, ``generation_kwargs``, ``judge``) and
    ``task_files`` (per task: the files hashed, ``[{"path", "sha256"}]``); ``loaded``: name -> leaf task objects."""
    stamps = {task: loaded_task_stamp(task, leaves, include_paths) for task, leaves in loaded.items()}
    return {"tasks": {task: entry for task, (entry, _) in stamps.items()},
            "task_files": {task: files for task, (_, files) in stamps.items()}}
