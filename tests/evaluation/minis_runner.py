"""Run a real lmms-eval 0.7.3 task on a miniature mirror, with a scripted predictor in place of a model.

The task is the installed one: a YAML in a temporary folder ``include:``s the installed task YAML and
overrides only ``dataset_path`` (the mini's folder, absolute), so the task's own doc_to_visual, doc_to_text,
doc_to_target, process_results and aggregation functions run. The predictor answers from a table keyed by the
document (the unit under test is the task code and the data, not a model). lmms-eval is configured as the
harness configures it (``configure_lmms_eval``: no tenacity retries, the multiple_choice fix), and scoring
runs in one thread as the harness asks (``process_docs_parallel=1``).
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from minis_expected import (
    vqa_accuracy,  # noqa: F401  (the minis tests' hand formula, shared)
)

_CACHE = tempfile.TemporaryDirectory(prefix="minis-hf-datasets-")  # not the user's ~/.cache


def load_split(folder: Path, name: str | None = None, split: str = "test"):
    """``datasets.load_dataset`` on a mini's folder, as the task reads it, caching in a temporary folder."""
    import datasets

    return datasets.load_dataset(str(folder), name, split=split, cache_dir=_CACHE.name)


def installed_task_yaml(relative: str) -> Path:
    import lmms_eval

    path = Path(lmms_eval.__file__).parent / "tasks" / relative
    assert path.is_file(), f"lmms-eval has no task YAML {relative}"
    return path


def installed_dataset_path(relative: str) -> str:
    """The ``dataset_path`` the installed task YAML (or the template it includes) names."""
    from lmms_eval.utils import load_yaml_config

    return load_yaml_config(str(installed_task_yaml(relative)), mode="simple")["dataset_path"]


@dataclass
class ScriptedRun:
    results: dict  # results[task] from simple_evaluate
    prompts: dict[int, str] = field(default_factory=dict)  # doc_id -> context lmms-eval built
    docs: dict[int, dict] = field(default_factory=dict)  # doc_id -> the document the request came from
    visuals: dict[int, int] = field(default_factory=dict)  # doc_id -> how many images doc_to_visual gave
    samples: list = field(default_factory=list)


def _scripted_model(answer: Callable[[dict], str], run: ScriptedRun):
    from lmms_eval.api.model import lmms
    from PIL import Image

    class ScriptedPredictor(lmms):
        def generate_until(self, requests):
            outputs = []
            for request in requests:
                context, _, doc_to_visual, doc_id, task, split = request.args
                doc = self.task_dict[task][split][doc_id]
                visuals = doc_to_visual(doc)
                assert visuals and all(isinstance(visual, Image.Image) for visual in visuals), visuals
                run.prompts[doc_id], run.docs[doc_id], run.visuals[doc_id] = context, doc, len(visuals)
                outputs.append(answer(doc))
            return outputs

        def loglikelihood(self, requests):
            raise AssertionError("the miniature tasks are generate_until tasks")

        def generate_until_multi_round(self, requests):
            raise AssertionError("the miniature tasks are single-round")

    return ScriptedPredictor()


def run_task(
    tmp_path: Path, task: str, task_yaml: str, dataset_dir: Path, answer: Callable[[dict], str],
    mirror_root: Path | None = None,
) -> ScriptedRun:
    """Evaluate lmms-eval's ``task`` (its installed YAML ``task_yaml``, relative to lmms_eval/tasks) on
    ``dataset_dir``, answering each document with ``answer(doc)``; with ``mirror_root``, hub ids that task code
    loads itself are read from the mirror too, as the harness does it (``answer_hub_ids_from_mirror``)."""
    from evaluation.lmms_setup import configure_lmms_eval

    evaluator = configure_lmms_eval()
    from lmms_eval.tasks import TaskManager

    include = tmp_path / f"tasks-{task}"
    include.mkdir()
    override = {"include": str(installed_task_yaml(task_yaml)), "task": task, "dataset_path": str(dataset_dir)}
    (include / f"{task}.yaml").write_text(yaml.safe_dump(override))
    manager = TaskManager(include_path=str(include), include_defaults=False)
    assert task in manager.all_tasks, manager.all_tasks
    run = ScriptedRun(results={})
    if mirror_root is not None:
        from evaluation.mirror_tasks import answer_hub_ids_from_mirror

        answer_hub_ids_from_mirror(mirror_root)
    raw = evaluator.simple_evaluate(
        model=_scripted_model(answer, run),
        tasks=[task],
        task_manager=manager,
        log_samples=True,
        verbosity="WARNING",
        process_docs_parallel=1,
    )
    run.results = raw["results"][task]
    run.samples = raw["samples"][task]
    return run


def assert_hand_scores_match(run: ScriptedRun, key: str, answer: Callable[[dict], str], filter_name: str = "none",
                             **options):
    """``minis_expected.hand_scores`` (the hand rules as functions, also applied to real models' answers) gives
    lmms-eval's value of every metric it computes, on the same documents and scripted answers (``options``: the
    hand rule's, e.g. the judge's replies)."""
    from minis_expected import hand_scores

    docs = list(run.docs.values())
    hand = hand_scores(key, docs, [answer(doc) for doc in docs], **options)
    assert hand, key
    for metric, value in hand.items():
        assert abs(run.results[f"{metric},{filter_name}"] - value) <= 1e-9, (key, metric, value, run.results)
