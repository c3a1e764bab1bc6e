"""The dataset mirror (evaluation.datasets, evaluation.prefetch, `python -m evaluation datasets`): the source table
against lmms-eval's installed task YAML files, the manifest and status of real folders, the offline prefetch, and
the harness reading a benchmark's data only from the mirror."""

import json
import re
import time
from pathlib import Path

import lmms_eval
import pytest
import yaml

from evaluation import datasets as mirror
from evaluation.__main__ import main
from evaluation.suites import BENCHMARKS

TASKS_DIR = Path(lmms_eval.__file__).parent / "tasks"
SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")


class _TaskLoader(yaml.SafeLoader):
    pass


_TaskLoader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !function: irrelevant here


def _load(path: Path) -> dict:
    """A task YAML with its ``include:`` files merged under it (its own keys win), as lmms-eval does."""
    config = yaml.load(path.read_text(), Loader=_TaskLoader) or {}
    include = config.pop("include", None)
    if include:
        config = {**_load(path.parent / include), **config}
    return config


def _task_yaml(task: str) -> Path:
    pattern = re.compile(rf"^task:\s*[\"']?{re.escape(task)}[\"']?\s*$", re.MULTILINE)
    found = [path for path in TASKS_DIR.rglob("*.yaml") if pattern.search(path.read_text(errors="replace"))]
    assert len(found) == 1, f"{task}: task YAML files {found}"
    return found[0]


def _leaf_configs(task: str) -> list[dict]:
    config = _load(_task_yaml(task))
    if isinstance(config.get("task"), list):  # a group: its tasks, with the group's overrides
        return [leaf for name in config["task"] for leaf in _leaf_configs(name)]
    return [config]


@pytest.mark.parametrize("key", sorted(mirror.SOURCES))
def test_the_source_table_agrees_with_lmms_evals_task_yaml_files(key):
    source = mirror.SOURCES[key]
    assert BENCHMARKS[key].task == source.task
    for config in _leaf_configs(source.task):
        assert config["dataset_path"] == source.repo_id
        assert config.get("dataset_name") == source.config
        assert tuple(config[split] for split in SPLIT_KEYS if config.get(split)) == source.splits


def test_every_real_benchmark_has_a_source_and_task_code_loading_more_data_is_listed():
    assert set(mirror.SOURCES) == {key for key, benchmark in BENCHMARKS.items() if not benchmark.offline}
    for source in mirror.SOURCES.values():
        code = "\n".join(path.read_text() for path in _task_yaml(source.task).parent.glob("*.py"))
        loaded = set(re.findall(r"load_dataset\(\s*\"([^\"]+)\",\s*\"([^\"]+)\",\s*split=\"([^\"]+)\"", code))
        assert loaded == {(source.repo_id, config, splits[0]) for config, splits in source.extra_configs}


def write_hub_like_dataset(folder: Path, rows: dict, split: str = "test", config: str | None = None) -> Path:
    """A folder as the hub stores a parquet dataset: README.md with configs + data/<split>-*.parquet."""
    import datasets

    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    name = config or "default"
    (folder / "README.md").write_text(
        f"---\nconfigs:\n- config_name: {name}\n  data_files:\n  - split: {split}\n    path: data/{split}-*\n---\n"
    )
    return folder


def test_a_folder_with_a_manifest_is_present_and_loads_offline(tmp_path):
    import datasets

    folder = write_hub_like_dataset(mirror.dataset_folder("lmms-lab-encoder/POPE", tmp_path), {"q": ["a", "b"]})
    manifest = mirror.write_manifest(folder, "lmms-lab-encoder/POPE", "0" * 40, "hub")
    on_disk = json.loads((folder / mirror.MANIFEST_NAME).read_text())
    assert on_disk == manifest and set(manifest) == set(mirror.MANIFEST_KEYS)
    assert set(manifest["files"]) == {"README.md", "data/test-00000-of-00001.parquet"}
    assert manifest["fingerprint"] == mirror.files_fingerprint(manifest["files"])
    listed = [path for path in folder.rglob("*") if path.is_file() and path.name != ".frontier-mirror.json"]
    assert manifest["bytes"] == sum(path.stat().st_size for path in listed)
    records = {record.key: record for record in mirror.mirror_status(tmp_path)}
    assert records["pope"].present and records["pope"].revision == "0" * 40 and records["pope"].problem == ""
    assert not records["gqa"].present and "no folder" in records["gqa"].problem
    assert records["gqa"].prefetch == "python -m evaluation datasets prefetch --task gqa"
    assert datasets.load_dataset(str(folder), split="test", cache_dir=str(tmp_path / "cache"))["q"] == ["a", "b"]


def test_a_folder_that_no_longer_matches_its_manifest_is_not_present(tmp_path):
    folder = write_hub_like_dataset(tmp_path / "lmms-lab-encoder" / "POPE", {"q": ["a", "b"]})
    assert "no .frontier-mirror.json" in mirror.check_folder(folder, "lmms-lab-encoder/POPE")[1]
    mirror.write_manifest(folder, "lmms-lab-encoder/POPE", "0" * 40, "hub")
    assert "holds 'lmms-lab-encoder/POPE'" in mirror.check_folder(folder, "lmms-lab-encoder/MME")[1]
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("test", "tset"))  # same size, other bytes
    assert mirror.check_folder(folder, "lmms-lab-encoder/POPE")[1] == ""  # the quick check compares sizes
    assert "README.md changed" in mirror.check_folder(folder, "lmms-lab-encoder/POPE", verify=True)[1]
    (folder / "extra.parquet").write_bytes(b"x")
    assert "unlisted extra.parquet" in mirror.check_folder(folder, "lmms-lab-encoder/POPE")[1]
    (folder / "extra.parquet").unlink()
    (folder / "data" / "test-00000-of-00001.parquet").unlink()
    record = mirror.source_status(mirror.SOURCES["pope"], tmp_path)
    assert not record.present and "missing data/test-00000-of-00001.parquet" in record.problem


def test_prefetch_trims_the_card_to_the_splits_the_task_reads(tmp_path):
    """A hub card lists every split; prefetch downloads only the task's, so the card must not name the others."""
    import datasets

    from evaluation.prefetch import _trim_card

    folder = tmp_path / "repo"
    datasets.Dataset.from_dict({"q": ["a", "b"]}).to_parquet(str(folder / "en" / "dev-00000-of-00001.parquet"))
    card = {
        "dataset_info": [
            {"config_name": name, "features": [{"name": "q", "dtype": "string"}],
             "splits": [{"name": "dev", "num_bytes": 10, "num_examples": 2},
                        {"name": "test", "num_bytes": 10, "num_examples": 5}]}
            for name in ("en", "cn")
        ],
        "configs": [
            {"config_name": name, "data_files": [{"split": "dev", "path": f"{name}/dev-*"},
                                                 {"split": "test", "path": f"{name}/test-*"}]}
            for name in ("en", "cn")
        ],
    }
    (folder / "README.md").write_text("---\n" + yaml.safe_dump(card) + "---\n# MMBench\n")
    with pytest.raises(ValueError):  # as on the hub, the card needs files this folder lacks
        datasets.load_dataset(str(folder), "en", cache_dir=str(tmp_path / "cache0"))
    assert _trim_card(folder / "README.md", {"en": ("dev",)}) == ["en/dev-*"]
    assert (folder / "README.md").read_text().endswith("---\n# MMBench\n")
    loaded = datasets.load_dataset(str(folder), "en", cache_dir=str(tmp_path / "cache1"))
    assert list(loaded) == ["dev"] and loaded["dev"]["q"] == ["a", "b"]


def test_status_command_lists_every_benchmark(tmp_path, capsys):
    write_hub_like_dataset(tmp_path / "lmms-lab-encoder" / "POPE", {"q": ["a"]})
    mirror.write_manifest(tmp_path / "lmms-lab-encoder" / "POPE", "lmms-lab-encoder/POPE", "abc123", "hub")
    main(["datasets", "status", "--json", "--root", str(tmp_path)])
    records = {record["key"]: record for record in json.loads(capsys.readouterr().out)["benchmarks"]}
    assert set(records) == set(mirror.SOURCES)
    assert records["pope"]["present"] and records["pope"]["revision"] == "abc123"
    assert not records["mme"]["present"]
    main(["datasets", "status", "--root", str(tmp_path)])
    text = capsys.readouterr().out
    assert re.search(r"^pope .* present +abc123", text, re.MULTILINE)
    assert "MISSING" in text and "python -m evaluation datasets prefetch --task mmbench_en_dev" in text


def _mirror_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.mark.parametrize("hub", ["offline", "unreachable"])
def test_prefetch_without_the_hub_fails_fast_and_leaves_nothing(tmp_path, monkeypatch, capsys, hub):
    root = tmp_path / "mirror"
    old = write_hub_like_dataset(root / "lmms-lab-encoder" / "MME", {"q": ["kept"]})
    mirror.write_manifest(old, "lmms-lab-encoder/MME", "1" * 40, "hub")
    before = _mirror_files(root)
    monkeypatch.delenv("FRONTIER_HF_OFFLINE_DEFAULTED", raising=False)
    if hub == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # online mode, but nothing listens there: a real connection error
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("FRONTIER_DATASETS_DIR", str(root))
    start = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main(["datasets", "prefetch", "--suite", "reasoning"] if hub == "offline" else
             ["datasets", "prefetch", "--task", "pope", "mme"])
    assert time.monotonic() - start < 30
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert "this machine has no access to the Hugging Face hub" in error
    first = "mme" if hub == "offline" else "pope"
    assert f"run `python -m evaluation datasets prefetch --task {first}`" in error
    assert "copy the folder" in error and str(root) in error
    assert _mirror_files(root) == before  # no .partial-* folder, the old MME untouched
    assert mirror.source_status(mirror.SOURCES["mme"], root).present


def test_prefetch_rejects_unknown_tasks_and_skips_generated_ones(tmp_path, capsys, monkeypatch):
    from evaluation.prefetch import sources_for

    assert sources_for(tasks=["shapes", "pope", "mmbench"]) == [mirror.SOURCES["pope"], mirror.SOURCES["mmbench"]]
    assert [source.key for source in sources_for("ocr")] == ["textvqa", "docvqa"]
    with pytest.raises(SystemExit):
        main(["datasets", "prefetch", "--task", "popee", "--root", str(tmp_path)])
    assert "no hub dataset is known for popee" in capsys.readouterr().err


def test_gqa_reads_its_images_config_from_the_mirror_too(tmp_path):
    """lmms-eval's own gqa_process_docs loads a second config by hub id; the mirror answers that id."""
    import datasets
    from PIL import Image

    from evaluation.errors import DatasetUnavailable
    from evaluation.mirror_tasks import answer_hub_ids_from_mirror, mirror_task_request

    with pytest.raises(DatasetUnavailable, match="prefetch --task gqa"):
        mirror_task_request("gqa", tmp_path)
    answer_hub_ids_from_mirror(tmp_path)
    from lmms_eval.tasks.gqa import utils as gqa_utils  # lmms-eval's own task code, unchanged

    with pytest.raises(DatasetUnavailable, match="prefetch --task gqa"):
        datasets.load_dataset("lmms-lab-encoder/GQA", "testdev_balanced_images", split="testdev")
    folder = mirror.dataset_folder("lmms-lab-encoder/GQA", tmp_path)
    questions = datasets.Dataset.from_dict({"imageId": ["b", "a"], "question": ["q1", "q2"]})
    questions.to_parquet(str(folder / "testdev_balanced_instructions" / "testdev-00000.parquet"))
    images = datasets.Dataset.from_dict(
        {"id": ["a", "b"], "image": [Image.new("L", (4, 4), 10), Image.new("L", (4, 4), 200)]},
        features=datasets.Features({"id": datasets.Value("string"), "image": datasets.Image()}),
    )
    images.to_parquet(str(folder / "testdev_balanced_images" / "testdev-00000.parquet"))
    (folder / "README.md").write_text("---\nconfigs:\n" + "".join(
        f"- config_name: {name}\n  data_files:\n  - split: testdev\n    path: {name}/testdev-*\n"
        for name in ("testdev_balanced_instructions", "testdev_balanced_images")) + "---\n")
    mirror.write_manifest(folder, "lmms-lab-encoder/GQA", "2" * 40, "hub")
    request = mirror_task_request("gqa", tmp_path)
    assert request == {"task": "gqa", "dataset_path": str(folder)}
    assert mirror_task_request("shapes", tmp_path) == "shapes"
    processed = gqa_utils.gqa_process_docs(questions)
    visuals = [gqa_utils.gqa_doc_to_visual(doc)[0] for doc in processed]
    assert [image.mode for image in visuals] == ["RGB", "RGB"]
    assert [image.getpixel((0, 0)) for image in visuals] == [(200, 200, 200), (10, 10, 10)]


def test_a_worker_process_is_offline_before_anything_imports_datasets(tmp_path):
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "FRONTIER_HF_OFFLINE_DEFAULTED")}
    probe = ("import workers.celery_app, os, datasets, huggingface_hub.constants as hub\n"
             "print(os.environ['HF_DATASETS_OFFLINE'], datasets.config.HF_DATASETS_OFFLINE, hub.HF_HUB_OFFLINE)")
    completed = subprocess.run([sys.executable, "-c", probe], env={**env, "FRONTIER_VAR_DIR": str(tmp_path)},
                               capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["1", "True", "True"]


def test_the_fingerprint_is_the_sha256_of_the_sorted_path_sha_lines():
    """The formula other writers of the mirror (evaluation.minis) use too."""
    import hashlib

    files = {"b.parquet": "2" * 64, "README.md": "1" * 64}
    expected = hashlib.sha256(f"README.md:{'1' * 64}\nb.parquet:{'2' * 64}\n".encode()).hexdigest()
    assert mirror.files_fingerprint(files) == expected
