"""The harness reads a real benchmark's data only from the dataset mirror: through ``evaluate_checkpoint`` (what
the CLI and, by way of CheckpointEvaluator, the workers call) with a real lmms-eval task, ``pope``."""

import time

import pytest

from evaluation import datasets as mirror
from evaluation.errors import DatasetUnavailable


def test_a_benchmark_missing_from_the_mirror_fails_as_dataset_unavailable(quecc_checkpoint, synthetic_root, tmp_path):
    from evaluation.harness import evaluate_checkpoint

    empty = tmp_path / "mirror"
    empty.mkdir()
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable) as caught:
        evaluate_checkpoint(quecc_checkpoint, ["pope"], limit=2, device="cpu", batch_size=4,
                            synthetic_dir=synthetic_root, datasets_dir=empty, latency_samples=0)
    assert time.monotonic() - start < 60
    error = caught.value
    assert error.failure_class == "dataset_unavailable" and error.task == "pope"
    message = str(error)
    assert "benchmark pope reads lmms-lab-encoder/POPE" in message
    assert str(empty / "lmms-lab-encoder" / "POPE") in message
    assert "`python -m evaluation datasets prefetch --task pope`" in message


def test_a_folder_without_a_valid_manifest_is_unavailable_too(quecc_checkpoint, synthetic_root, tmp_path):
    from evaluation.harness import evaluate_checkpoint

    folder = tmp_path / "lmms-lab-encoder" / "POPE"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("half a download\n")
    with pytest.raises(DatasetUnavailable, match="has no .frontier-mirror.json"):
        evaluate_checkpoint(quecc_checkpoint, ["pope"], limit=2, device="cpu", batch_size=4,
                            synthetic_dir=synthetic_root, datasets_dir=tmp_path, latency_samples=0)


def _fake_pope(folder):
    import datasets
    from PIL import Image

    features = datasets.Features({
        "question_id": datasets.Value("string"), "question": datasets.Value("string"),
        "answer": datasets.Value("string"), "category": datasets.Value("string"), "image": datasets.Image(),
    })
    rows = {
        "question_id": ["1", "2", "3"],
        "question": ["Is there a cat in the image?", "Is there a dog in the image?", "Is there a car?"],
        "answer": ["yes", "no", "yes"],
        "category": ["adversarial"] * 3,
        "image": [Image.new("RGB", (32, 32), color) for color in ("red", "green", "blue")],
    }
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "data" / "test-00000.parquet"))
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n    path: data/test-*\n---\n"
    )
    mirror.write_manifest(folder, "lmms-lab-encoder/POPE", "generated:test-fake-pope@1", "generated")


def test_a_benchmark_in_the_mirror_is_evaluated_from_it(quecc_checkpoint, synthetic_root, tmp_path):
    from evaluation.harness import evaluate_checkpoint

    _fake_pope(mirror.dataset_folder("lmms-lab-encoder/POPE", tmp_path))
    outcome = evaluate_checkpoint(quecc_checkpoint, ["pope"], limit=2, device="cpu", batch_size=4,
                                  synthetic_dir=synthetic_root, datasets_dir=tmp_path, latency_samples=0)
    assert outcome.raw_results["n-samples"]["pope"] == {"original": 3, "effective": 2}
    assert {row.metric for row in outcome.rows if row.task == "pope"} >= {"pope_f1_score"}
    manifest = mirror.check_folder(mirror.dataset_folder("lmms-lab-encoder/POPE", tmp_path))[0]
    assert outcome.stamp["datasets"] == {"pope": {"repo_id": "lmms-lab-encoder/POPE",
                                                  "revision": "generated:test-fake-pope@1",
                                                  "fingerprint": manifest["fingerprint"]}}


def test_files_a_task_writes_stay_out_of_the_working_directory(quecc_checkpoint, synthetic_root, tmp_path,
                                                                monkeypatch):
    """lmms-eval's textvqa writes a submission JSON where its output path says; without one, into the working
    directory (a worker's: the repository). The harness gives it a scratch folder."""
    from evaluation.harness import evaluate_checkpoint
    from evaluation.minis import textvqa

    textvqa.write(tmp_path / "mirror", rows_per_split=2)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    outcome = evaluate_checkpoint(quecc_checkpoint, ["textvqa_val"], limit=2, device="cpu", batch_size=4,
                                  synthetic_dir=synthetic_root, datasets_dir=tmp_path / "mirror", latency_samples=0)
    assert any(row.task == "textvqa_val" for row in outcome.rows)
    assert list(workdir.iterdir()) == []
