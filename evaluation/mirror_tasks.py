"""lmms-eval tasks pointed at the dataset mirror (``evaluation.datasets``): what the harness asks lmms-eval for.

``mirror_task_request(task, root)`` is the task name itself for tasks outside the catalog (synthetic, or from
``--include-path``), and for a real benchmark a config override: ``dataset_path`` the mirror folder (the task's
``dataset_name`` stays). Task code that loads more of the hub by itself (GQA's ``gqa_process_docs`` loads its
images config by hub id) runs unchanged: ``answer_hub_ids_from_mirror`` makes ``datasets.load_dataset`` read a
catalog repository's hub id from its mirror folder. A missing or invalid folder raises ``DatasetUnavailable``
naming the benchmark, the folder and the prefetch command, before lmms-eval touches the data.
"""

import functools
import sys
from pathlib import Path

from .datasets import SOURCE_BY_TASK, SOURCES, check_folder, dataset_folder, prefetch_command
from .errors import DatasetUnavailable


def mirror_task_request(task: str, root: str | Path) -> str | dict:
    source = SOURCE_BY_TASK.get(task)
    if source is None:
        return task
    folder = dataset_folder(source.repo_id, root)
    manifest, problem = check_folder(folder, source.repo_id)
    if not problem and source.revision is not None and manifest["revision"] != source.revision:
        problem = f"{folder} holds revision {manifest['revision']}, not the pinned {source.revision}"
    if problem:
        raise DatasetUnavailable(
            task,
            f"benchmark {source.key} reads {source.repo_id} from the dataset mirror, expected at {folder}, "
            f"but {problem}",
            command=prefetch_command(task),
        )
    return {"task": task, "dataset_path": str(folder)}


def mirror_stamp(tasks, root: str | Path) -> dict:
    """For a result's stamp: per catalog task, the mirror data it read (repo id, revision, fingerprint)."""
    stamp = {}
    for task in tasks:
        source = SOURCE_BY_TASK.get(task)
        if source is not None:
            manifest, _ = check_folder(dataset_folder(source.repo_id, root), source.repo_id)
            stamp[task] = {key: (manifest or {}).get(key) for key in ("repo_id", "revision", "fingerprint")}
    return stamp


_CURRENT_MIRROR: dict[str, Path] = {}


def answer_hub_ids_from_mirror(root: str | Path) -> None:
    """From now on in this process, ``datasets.load_dataset("<catalog repo id>", ...)`` reads the repository's
    folder in the mirror ``root`` (the latest root given), and a missing folder raises ``DatasetUnavailable``.

    Task utils modules bind ``load_dataset`` when imported: those imported before this call are rebound too."""
    import datasets

    _CURRENT_MIRROR["root"] = Path(root)
    if getattr(datasets.load_dataset, "frontier_mirror", False):
        return
    original = datasets.load_dataset
    tasks_by_repo = {source.repo_id: source.task for source in SOURCES.values()}

    @functools.wraps(original)
    def load_dataset(path, *args, **kwargs):
        if isinstance(path, str) and path in tasks_by_repo:
            folder = dataset_folder(path, _CURRENT_MIRROR["root"])
            _, problem = check_folder(folder, path)
            if problem:
                task = tasks_by_repo[path]
                raise DatasetUnavailable(task, f"{path} is read from the dataset mirror, but {problem}",
                                         command=prefetch_command(task))
            path = str(folder)
        return original(path, *args, **kwargs)

    load_dataset.frontier_mirror = True
    datasets.load_dataset = load_dataset
    for name, module in list(sys.modules.items()):  # task code imported before now bound the original
        if name.startswith("lmms_eval.tasks.") and getattr(module, "load_dataset", None) is original:
            module.load_dataset = load_dataset
