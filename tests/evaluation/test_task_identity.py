"""A task's identity (evaluation.task_identity): the hash over the installed YAML files a task resolves through
and the code its ``!function`` tags name; stable, changed by one byte of an included YAML or a utils module, and
defined for every benchmark of evaluation.suites (the 13 real ones and the synthetic ones)."""

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from evaluation import synthetic
from evaluation.suites import BENCHMARKS
from evaluation.task_identity import (
    TaskIdentityError,
    current_task_hashes,
    lmms_eval_tasks_dir,
    lmms_eval_version,
    task_identity,
    tasks_stamp,
)

TASKS_DIR = lmms_eval_tasks_dir()


def _paths(identity: dict) -> list[str]:
    return [row["path"] for row in identity["files"]]


@pytest.mark.parametrize("key", list(BENCHMARKS))
def test_every_benchmark_has_an_identity(key):
    identity = task_identity(BENCHMARKS[key].task)
    assert len(identity["yaml_sha256"]) == 64
    assert identity["lmms_eval_version"] == lmms_eval_version()
    assert identity == task_identity(BENCHMARKS[key].task)  # stable
    assert any(path.endswith(".yaml") for path in _paths(identity))
    assert any(path.endswith(".py") for path in _paths(identity)), "the task's code is part of it"


def test_include_chain_and_utils_are_covered():
    vqav2 = _paths(task_identity("vqav2_val"))
    assert {"vqav2/vqav2_val.yaml", "vqav2/_default_template_vqav2_yaml", "vqav2/utils.py"} <= set(vqav2)
    assert "_task_utils/vqa_eval_metric.py" in vqav2  # imported by the utils module
    mmbench = _paths(task_identity("mmbench_en_dev"))
    assert {"mmbench/en_utils.py", "mmbench/mmbench_evals.py", "mmbench/mmbench.yaml"} <= set(mmbench)  # read by utils


def test_a_group_covers_its_members():
    group = _paths(task_identity("mathvista"))  # group: mathvista_testmini, mathvista_test
    assert {"mathvista/mathvista.yaml", "mathvista/mathvista_testmini.yaml", "mathvista/mathvista_test.yaml"} <= set(
        group
    )


def test_hashes_differ_between_tasks_and_cover_every_benchmark():
    hashes = current_task_hashes()
    assert set(hashes) == set(BENCHMARKS)
    assert len(set(hashes.values())) == len(hashes)


@pytest.fixture
def vqav2_copy(tmp_path):
    root = tmp_path / "tasks"
    shutil.copytree(TASKS_DIR / "vqav2", root / "vqav2", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_copied_folder_hashes_the_same_until_a_byte_changes(vqav2_copy):
    installed = task_identity("vqav2_val")
    copied = task_identity("vqav2_val", include_paths=[vqav2_copy])
    assert copied["files"] == installed["files"] and copied["yaml_sha256"] == installed["yaml_sha256"]

    template = vqav2_copy / "vqav2" / "_default_template_vqav2_yaml"  # included by vqav2_val.yaml
    original = template.read_bytes()
    template.write_bytes(original.replace(b"max_new_tokens: 16", b"max_new_tokens: 17"))
    changed = task_identity("vqav2_val", include_paths=[vqav2_copy])["yaml_sha256"]
    assert changed != installed["yaml_sha256"]
    template.write_bytes(original)
    assert task_identity("vqav2_val", include_paths=[vqav2_copy])["yaml_sha256"] == installed["yaml_sha256"]

    utils = vqav2_copy / "vqav2" / "utils.py"
    utils.write_bytes(utils.read_bytes() + b" ")
    assert task_identity("vqav2_val", include_paths=[vqav2_copy])["yaml_sha256"] != installed["yaml_sha256"]


def test_an_unrelated_file_does_not_change_the_hash(vqav2_copy):
    before = task_identity("vqav2_val", include_paths=[vqav2_copy])["yaml_sha256"]
    (vqav2_copy / "vqav2" / "vqav2_test.yaml").write_text("task: vqav2_test\n# edited\n")
    (vqav2_copy / "vqav2" / "notes.txt").write_text("not part of any task")
    assert task_identity("vqav2_val", include_paths=[vqav2_copy])["yaml_sha256"] == before


def test_unknown_task():
    with pytest.raises(TaskIdentityError, match="no_such_task"):
        task_identity("no_such_task")


def test_synthetic_identity_is_the_suite_as_written(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    for task in synthetic.SYNTHETIC_TASKS:  # the YAML write_synthetic_suite writes, without the data
        (suite / f"{task}.yaml").write_text(synthetic.task_yaml_text(task, suite))
    (suite / f"{synthetic.HELPER_MODULE}.py").write_text(synthetic.HELPER_SOURCE)
    for task in synthetic.SYNTHETIC_TASKS:
        identity = task_identity(task)
        assert _paths(identity) == ["evaluation/synthetic.py", f"synthetic/{synthetic.HELPER_MODULE}.py",
                                    f"synthetic/{task}.yaml"]
        written = (suite / f"{task}.yaml").read_text().replace(str(suite), "$SUITE")
        assert written == synthetic.task_yaml_text(task, "$SUITE")
    assert len({task_identity(task)["yaml_sha256"] for task in synthetic.SYNTHETIC_TASKS}) == 3


def test_torch_free():
    code = ("import sys; from evaluation.task_identity import current_task_hashes; current_task_hashes(); "
            "assert 'torch' not in sys.modules and 'lmms_eval.api' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def _leaf(task, generation_kwargs, metrics):
    config = SimpleNamespace(task=task, generation_kwargs=generation_kwargs,
                             metric_list=[{"metric": metric} for metric in metrics])
    return SimpleNamespace(config=config)


def test_the_stamp_entry_has_hash_generation_kwargs_and_judge():
    stamp = tasks_stamp({
        "pope": [_leaf("pope", {"until": ["\n"], "max_new_tokens": 128, "temperature": 0.0, "do_sample": False},
                       ["pope_accuracy", "pope_f1_score"])],
        "mmbench_en_dev": [_leaf("mmbench_en_dev", {"max_new_tokens": 1024}, ["gpt_eval_score", "submission"])],
        "mathvista": [_leaf("mathvista_testmini", {"max_new_tokens": 16}, ["llm_as_judge_eval"]),
                      _leaf("mathvista_test", {"max_new_tokens": 16}, ["submission"])],
    })
    pope = stamp["tasks"]["pope"]
    assert pope["task_hash"] == task_identity("pope")["yaml_sha256"] and pope["judge"] is None
    assert pope["generation_kwargs"] == {"until": ["\n"], "max_new_tokens": 128, "temperature": 0.0, "do_sample": False}
    assert stamp["tasks"]["mmbench_en_dev"]["judge"] == {"kind": "none"}  # LLM-judged; no judge configured yet
    assert set(stamp["tasks"]["mathvista"]["generation_kwargs"]) == {"mathvista_testmini", "mathvista_test"}
    assert stamp["task_files"]["pope"] == task_identity("pope")["files"]
    unknown = tasks_stamp({"not_a_task": [_leaf("not_a_task", None, [])]})["tasks"]["not_a_task"]
    assert unknown["task_hash"] is None and "not_a_task" in unknown["task_hash_problem"]
