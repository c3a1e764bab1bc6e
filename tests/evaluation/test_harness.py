"""lmms-eval in process on the tiny random checkpoint: results, rows, stamp, reuse, chance, failures."""

import json
import time
from dataclasses import asdict

import pytest

from evaluation.errors import (
    CheckpointLoadError,
    DatasetUnavailable,
    EnvironmentMismatch,
    EvaluationCancelled,
    HarnessError,
)
from evaluation.suites import BENCHMARKS
from evaluation.synthetic import chance_level
from evaluation.task_identity import task_identity

STAMP_KEYS = {
    "lmms_eval_version",
    "task_versions",
    "model_args",
    "seeds",
    "dtype",
    "device",
    "batch_size",
    "torch_version",
    "transformers_version",
    "flops_formula_version",
    "visual_tokens",
    "llm_params",
    "compressor_params",
    "frontier_git_revision",
}


@pytest.fixture(scope="module")
def outcome(tiny_evaluator):
    progress = []
    result = tiny_evaluator.evaluate(["shapes", "glyphs"], limit=20, progress=lambda *done: progress.append(done))
    return result, progress


@pytest.fixture(scope="module")
def multiple_choice_tasks(synthetic_root, tmp_path_factory):
    """A user's lmms-eval task folder: shapes as a multiple_choice (loglikelihood) task."""
    folder = tmp_path_factory.mktemp("user_tasks")
    (folder / "shapes_choice_visuals.py").write_text(
        "def doc_to_visual(doc):\n    return [doc['image'].convert('RGB')]\n"
    )
    parquet = synthetic_root / "seed0" / "data" / "shapes-test.parquet"
    (folder / "shapes_choice.yaml").write_text(
        f"task: shapes_choice\ndataset_path: parquet\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(parquet))}\n"
        f"  cache_dir: {json.dumps(str(folder / 'hf_cache'))}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        "doc_to_visual: !function shapes_choice_visuals.doc_to_visual\n"
        "doc_to_text: prompt\ndoc_to_choice: options\ndoc_to_target: answer\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )
    return folder


def test_results_rows_stamp_and_latency_are_complete(outcome, quecc_checkpoint):
    result, progress = outcome
    json.dumps(result.as_dict())  # everything a worker stores is JSON
    for task in ("shapes", "glyphs"):
        metrics = result.task_results(task)
        assert 0.0 <= metrics["exact_match,none"] <= 1.0 and "exact_match_stderr,none" in metrics
        assert result.raw_results["n-samples"][task]["effective"] == 20
    rows = {(row.task, row.metric): row for row in result.rows}
    assert set(rows) >= {("shapes", "exact_match"), ("glyphs", "exact_match")}
    row = rows[("shapes", "exact_match")]
    assert (row.benchmark, row.n, row.higher_is_better, row.unit) == ("shapes", 20, True, "fraction")
    assert row.value == result.task_results("shapes")["exact_match,none"] and row.stderr is not None
    stamp = result.stamp
    assert STAMP_KEYS <= set(stamp) and all(stamp[key] not in (None, "", {}) for key in STAMP_KEYS)
    assert stamp["task_versions"] == {"shapes": 1.0, "glyphs": 1.0}
    assert (stamp["visual_tokens"], stamp["dtype"], stamp["device"], stamp["batch_size"]) == (16, "float32", "cpu", 16)
    assert stamp["seeds"]["random_seed"] == 0 and stamp["model_args"]["limit"] == 20
    assert stamp["llm_params"] > 0 and stamp["compressor_params"] > 0
    assert stamp["synthetic_suite"]["seed"] == 0
    for task in ("shapes", "glyphs"):  # evaluation.task_identity: the hash the web side compares with
        entry = stamp["tasks"][task]
        assert entry["task_hash"] == task_identity(task)["yaml_sha256"] and entry["judge"] is None
        assert entry["generation_kwargs"]["max_new_tokens"] == 8 and entry["generation_kwargs"]["until"] == ["\n"]
        assert entry["generation_kwargs"]["do_sample"] is False
    assert progress[-1] == (40, 40) and [done for done, _ in progress] == sorted(done for done, _ in progress)
    latency = result.latency
    assert len(latency["samples"]) == 3
    assert latency["median_time_to_first_token_s"] > 0 and latency["median_decode_per_token_s"] > 0


def test_model_survives_clean_and_is_reused(tiny_evaluator, outcome):
    lmm, model = tiny_evaluator.lmm, tiny_evaluator.runner.model
    again = tiny_evaluator.evaluate(["shapes"], limit=20, latency_samples=0)
    assert tiny_evaluator.lmm is lmm and tiny_evaluator.runner.model is model
    assert again.task_results("shapes") == outcome[0].task_results("shapes")


def test_random_model_is_near_chance_on_shapes(tiny_evaluator, multiple_choice_tasks):
    """Scored by likelihood over the answer options, an untrained model guesses; generating, it cannot beat chance."""
    chance = chance_level("shapes")
    choice = tiny_evaluator.evaluate(
        ["shapes_choice"], limit=120, include_path=multiple_choice_tasks, latency_samples=0
    )
    assert abs(choice.task_results("shapes_choice")["acc,none"] - chance) < 0.15
    generated = tiny_evaluator.evaluate(["shapes"], limit=120, latency_samples=0)
    assert generated.task_results("shapes")["exact_match,none"] < chance + 0.1


def test_a_user_task_is_stamped_with_its_folder_hash(tiny_evaluator, multiple_choice_tasks):
    stamp = tiny_evaluator.evaluate(["shapes_choice"], limit=2, include_path=multiple_choice_tasks,
                                    latency_samples=0).stamp
    entry = stamp["tasks"]["shapes_choice"]
    assert [row["path"] for row in stamp["task_files"]["shapes_choice"]] == [
        "shapes_choice.yaml", "shapes_choice_visuals.py"]
    assert entry["task_hash"] == task_identity("shapes_choice", [multiple_choice_tasks])["yaml_sha256"]


def test_loglikelihood_scores_every_choice(tiny_evaluator, multiple_choice_tasks):
    from lmms_eval.api.instance import Instance

    _, loaded = tiny_evaluator.load_tasks(["shapes_choice"], include_path=multiple_choice_tasks)
    task = loaded["shapes_choice"][0]
    tiny_evaluator.lmm.task_dict["shapes_choice"] = task.dataset
    document = task.eval_docs[0]
    requests = [
        Instance(
            "loglikelihood",
            (task.doc_to_text(document), f" {option}", task.doc_to_visual, 0, "shapes_choice", "test"),
            index,
            metadata={"task": "shapes_choice", "doc_id": 0, "repeats": 1},
        )
        for index, option in enumerate(document["options"])
    ]
    scores = tiny_evaluator.lmm.loglikelihood(requests)
    assert len(scores) == len(requests)
    assert all(isinstance(loss, float) and loss > 0 and isinstance(greedy, bool) for loss, greedy in scores)
    assert len({loss for loss, _ in scores}) == len(scores)  # the continuation changes the score


def test_real_task_offline_raises_dataset_unavailable_quickly(tiny_evaluator):
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable, match="gqa") as caught:
        tiny_evaluator.evaluate(["gqa"], limit=2)
    assert time.monotonic() - start < 30
    assert caught.value.task == "gqa" and caught.value.failure_class == "dataset_unavailable"


def test_unknown_task_is_a_harness_error_with_a_hint(tiny_evaluator):
    with pytest.raises(HarnessError, match="did you mean shapes"):
        tiny_evaluator.evaluate(["shapez"], limit=2)


def shapes_task_with(folder, name: str, utils: str, **functions) -> None:
    """A copy of the synthetic shapes task whose `functions` come from a `name`_utils.py of its own."""
    import yaml

    (folder / f"{name}_utils.py").write_text(utils)
    synthetic = yaml.safe_load((folder.parent / "shapes.yaml").read_text().split("doc_to_visual:")[0])
    lines = [yaml.safe_dump({**synthetic, "task": name}).rstrip()]
    lines += [f"{key}: !function {name}_utils.{value}" for key, value in functions.items()]
    (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")


def test_a_module_a_task_cannot_import_is_an_environment_error(tiny_evaluator, synthetic_root):
    """While lmms-eval builds the task (its utils import a missing module) and while it scores (a
    metric imports one lazily): the worker's environment, not the task's YAML."""
    folder = synthetic_root / "seed0" / "tasks_missing_module"
    folder.mkdir(exist_ok=True)
    visuals = "from evaluation.synthetic import doc_to_text, doc_to_visual  # noqa: F401\n"
    shapes_task_with(folder, "shapes_at_build", "import frontier_absent_at_build\n" + visuals,
                     doc_to_visual="doc_to_visual", doc_to_text="doc_to_text")
    shapes_task_with(folder, "shapes_at_scoring",
                     visuals + "def process_results(doc, results):\n    import frontier_absent_at_scoring\n",
                     doc_to_visual="doc_to_visual", doc_to_text="doc_to_text", process_results="process_results")

    for task, module in [("shapes_at_build", "frontier_absent_at_build"),
                         ("shapes_at_scoring", "frontier_absent_at_scoring")]:
        with pytest.raises(EnvironmentMismatch) as caught:
            tiny_evaluator.evaluate([task], limit=2, include_path=folder, latency_samples=0)
        message = str(caught.value)
        assert caught.value.failure_class == "environment_error" and caught.value.module == module, message
        assert f"could not import the Python module {module!r}" in message
        assert "environment differs from the lock" in message and "`make install`" in message
        assert "YAML" not in message


def test_should_stop_cancels_between_batches(tiny_evaluator):
    progress = []
    with pytest.raises(EvaluationCancelled, match="stopped after 16 of 40"):
        tiny_evaluator.evaluate(
            ["shapes"], limit=40, progress=lambda *done: progress.append(done), should_stop=lambda: bool(progress)
        )
    assert progress == [(16, 40)]


def test_unreadable_checkpoint_is_a_load_error(tmp_path):
    from evaluation.harness import evaluate_checkpoint

    with pytest.raises(CheckpointLoadError, match="make-tiny"):
        evaluate_checkpoint(tmp_path, ["shapes"], limit=1)


def test_result_rows_carry_fitting_benchmark_keys_and_units():
    from evaluation.harness import result_rows

    raw = {
        "results": {
            "mme": {
                "alias": "mme",
                "mme_perception_score,none": 1400.0,
                "mme_perception_score_stderr,none": "N/A",
                "mme_cognition_score,none": 300.0,
            },
            "mmbench_en_dev": {"gpt_eval_score,none": 61.5, "submission,none": "path/to/file.xlsx"},
        },
        "n-samples": {"mme": {"original": 2374, "effective": 2374}},
        "higher_is_better": {"mme": {"mme_perception_score": True, "mme_cognition_score": True}},
    }
    rows = {(row.benchmark, row.metric): row for row in result_rows(raw)}
    assert set(rows) == {("mme", "mme_perception_score"), ("mme", "mme_cognition_score"), ("mmbench", "gpt_eval_score")}
    assert (
        rows[("mme", "mme_perception_score")].unit == "fraction" and rows[("mme", "mme_perception_score")].stderr is None
    )
    assert rows[("mme", "mme_perception_score")].n == 2374
    assert rows[("mmbench", "gpt_eval_score")].unit == "percent"


def test_the_one_benchmark_table_feeds_the_fitting_aggregation():
    """evaluation.suites is the only benchmark table: fitting takes it as passed, in fitting's units."""
    from evaluation.suites import normalisations
    from fitting.aggregate import UNIT_SCALE

    specs, suites = normalisations(("reasoning", "ocr"))
    assert suites["reasoning"] == ("mme", "gqa", "ai2d", "mmbench", "mmmu", "scienceqa_img", "mathvista", "pope", "chartqa")
    assert suites["ocr"] == ("textvqa", "docvqa")
    assert specs["mme"].metrics == ("mme_perception_score", "mme_cognition_score") and specs["mme"].full_scale == 2800
    assert specs["pope"].metrics == ("pope_f1_score",) and specs["docvqa"].metrics == ("anls",)
    assert {benchmark.unit for benchmark in BENCHMARKS.values()} <= set(UNIT_SCALE)


def test_rows_feed_the_fitting_aggregation(outcome):
    import pandas as pd

    from fitting.aggregate import BenchmarkNormalisation, benchmark_errors

    frame = pd.DataFrame([{"checkpoint": "tiny", **asdict(row)} for row in outcome[0].rows])
    synthetic = {task: BenchmarkNormalisation(task, ("exact_match",)) for task in ("shapes", "glyphs")}
    errors = benchmark_errors(frame, benchmarks=synthetic).set_index("benchmark")["error"]
    for task in ("shapes", "glyphs"):
        assert errors[task] == pytest.approx(1 - outcome[0].task_results(task)["exact_match,none"])
