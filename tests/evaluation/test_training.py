"""Compressor training: learning on shapes, exact resume after a stop or a SIGKILL, config validation."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from evaluation.synthetic import chance_level
from evaluation.tiny import build_tiny_tokenizer, make_tiny_checkpoint, tiny_image_processor
from evaluation.training import (
    TinyModelSpec,
    Trainer,
    TrainingCancelled,
    TrainingConfig,
    TrainingConfigError,
    build_model,
    latest_state,
    validate_config,
)
from evaluation.training_batches import IGNORE_INDEX, Collator, DataCursor
from evaluation.training_data import TrainingExample

REPOSITORY = Path(__file__).resolve().parents[2]
EVALUATION_ITEMS = 100
# Small enough for CPU in seconds: this budget teaches the answer format and the answer prior (about
# chance level). Learning the visual content takes longer: see test_training_lifts_accuracy.py.
LEARNING_RUN = TrainingConfig(
    compressor="avgpool",
    tokens=4,
    stage=2,
    tiny_model=TinyModelSpec(llm_hidden=64, llm_layers=2),
    learning_rate=5e-3,
    batch_size=8,
    max_steps=120,
    warmup_steps=10,
)
# QueCC exercises the query path; a few steps are enough to compare resumed and uninterrupted runs.
RESUME_RUN = TrainingConfig(
    compressor="quecc",
    tokens=4,
    stage=2,
    tiny_model=TinyModelSpec(llm_hidden=32, llm_layers=1),
    synthetic_count=24,
    batch_size=4,
    max_steps=8,
    warmup_steps=2,
    save_every=3,
)


def trained_weights(result) -> dict[str, torch.Tensor]:
    return load_file(Path(result.checkpoint) / "model.safetensors")


def assert_same_run(resumed, reference) -> None:
    assert resumed.steps == reference.steps == len(resumed.loss_history)
    assert resumed.loss_history == pytest.approx(reference.loss_history, abs=1e-6)
    resumed_weights, reference_weights = trained_weights(resumed), trained_weights(reference)
    assert resumed_weights.keys() == reference_weights.keys()
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, atol=1e-6, rtol=0, msg=name)


@pytest.fixture(scope="module")
def learning_result(tmp_path_factory):
    return Trainer(LEARNING_RUN, tmp_path_factory.mktemp("learning"), device="cpu").run()


@pytest.fixture(scope="module")
def reference_resume_result(tmp_path_factory):
    return Trainer(RESUME_RUN, tmp_path_factory.mktemp("reference"), device="cpu").run()


def shapes_accuracy(checkpoint: Path, synthetic_root: Path) -> float:
    from evaluation.harness import evaluate_checkpoint

    outcome = evaluate_checkpoint(
        checkpoint,
        ["shapes"],
        limit=EVALUATION_ITEMS,
        batch_size=50,
        device="cpu",
        synthetic_dir=synthetic_root,
        latency_samples=0,
    )
    return next(row.value for row in outcome.rows if row.metric == "exact_match")


def test_training_lowers_the_loss_and_lifts_shapes_accuracy_to_the_answer_prior(
    learning_result, synthetic_root, tmp_path
):
    history = learning_result.loss_history
    tenth = len(history) // 10
    assert learning_result.steps == LEARNING_RUN.max_steps == len(history)
    assert sum(history[-tenth:]) / tenth < 0.5 * sum(history[:tenth]) / tenth

    spec = LEARNING_RUN.tiny_model
    untrained = make_tiny_checkpoint(
        tmp_path / "untrained", compressor="avgpool", tokens=4, llm_hidden=spec.llm_hidden, llm_layers=spec.llm_layers
    )
    untrained_accuracy = shapes_accuracy(untrained, synthetic_root)
    trained_accuracy = shapes_accuracy(Path(learning_result.checkpoint), synthetic_root)
    assert untrained_accuracy < 0.1
    assert trained_accuracy > untrained_accuracy + 0.2
    assert trained_accuracy > 0.75 * chance_level("shapes")  # valid answers of the right kind


def test_the_checkpoint_is_a_complete_loadable_folder(learning_result):
    from evaluation.loading import load_vlm

    checkpoint = Path(learning_result.checkpoint)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"):
        assert (checkpoint / name).is_file(), name
    assert TrainingConfig.from_json((checkpoint / "training_config.json").read_text()) == LEARNING_RUN
    runner = load_vlm(checkpoint)
    assert runner.visual_tokens == LEARNING_RUN.tokens
    assert learning_result.samples_per_second > 0
    assert learning_result.data_seconds + learning_result.compute_seconds <= learning_result.seconds


def test_a_stopped_run_saves_and_resumes_to_the_uninterrupted_result(reference_resume_result, tmp_path):
    steps_done = []
    stopping = Trainer(
        RESUME_RUN,
        tmp_path,
        progress=lambda step, total, loss: steps_done.append(step),
        should_stop=lambda: len(steps_done) >= 4,
    )
    with pytest.raises(TrainingCancelled, match="stopped at step 4 of 8"):
        stopping.run()
    assert latest_state(tmp_path).name == "step-000004"
    assert not (tmp_path / "checkpoint").exists()

    resumed = Trainer(RESUME_RUN, tmp_path).run()
    assert resumed.resumed_from_step == 4
    assert_same_run(resumed, reference_resume_result)


KILLED_CHILD = """
import os, signal, sys
from evaluation.training import Trainer, TrainingConfig

def die_after_step_5(step, total, loss):
    if step == 5:  # the state of step 3 is saved; steps 4 and 5 are lost
        os.kill(os.getpid(), signal.SIGKILL)

config = TrainingConfig.from_json(sys.argv[1])
Trainer(config, sys.argv[2], progress=die_after_step_5).run()
"""


def test_a_killed_process_resumes_from_its_last_save(reference_resume_result, tmp_path):
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_CHILD), RESUME_RUN.to_json(), str(tmp_path)],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert latest_state(tmp_path).name == "step-000003"

    resumed = Trainer(RESUME_RUN, tmp_path).run()
    assert resumed.resumed_from_step == 3
    assert_same_run(resumed, reference_resume_result)


def test_resuming_with_another_config_is_refused(reference_resume_result):
    output_dir = Path(reference_resume_result.checkpoint).parent
    changed = TrainingConfig.from_dict({**RESUME_RUN.to_dict(), "learning_rate": 0.5})
    with pytest.raises(TrainingConfigError, match="different config \\(learning_rate differ"):
        Trainer(changed, output_dir).run()


def test_stage_one_trains_only_the_compressor(tmp_path):
    config = TrainingConfig.from_dict({**RESUME_RUN.to_dict(), "stage": 1, "max_steps": 2, "save_every": 0})
    initial, _, _ = build_model(config)
    trained = trained_weights(Trainer(config, tmp_path).run())
    frozen = {name: tensor for name, tensor in initial.state_dict().items() if not name.startswith("compressor.")}
    assert all(torch.equal(trained[name], tensor) for name, tensor in frozen.items() if name in trained)
    compressor = initial.compressor.state_dict(prefix="compressor.")
    assert any(not torch.equal(trained[name], tensor) for name, tensor in compressor.items())


def write_llava_dataset(folder: Path, image_names: list[str], present: int) -> Path:
    (folder / "images").mkdir(parents=True)
    for name in image_names[:present]:
        Image.new("RGB", (96, 96), (200, 30, 30)).save(folder / "images" / name)
    records = [
        {
            "id": str(index),
            "image": name,
            "conversations": [
                {"from": "human", "value": "<image>\nWhat color is the square?"},
                {"from": "gpt", "value": "red"},
                {"from": "human", "value": "Is there a circle?"},
                {"from": "gpt", "value": "no"},
            ],
        }
        for index, name in enumerate(image_names)
    ]
    dataset = folder / "data.json"
    dataset.write_text(json.dumps(records))
    return dataset


def test_llava_conversations_are_labelled_on_answers_only(tmp_path):
    dataset = write_llava_dataset(tmp_path, ["a.png", "b.png"], present=2)
    config = TrainingConfig(
        tiny_model=TinyModelSpec(), tokens=4, dataset=str(dataset), image_folder=str(tmp_path / "images"), max_steps=2
    )
    examples = validate_config(config)
    assert len(examples) == 2 and len(examples[0].turns) == 2
    tokenizer = build_tiny_tokenizer()
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    collate = Collator(tokenizer, tiny_image_processor(), image_token, visual_tokens=4, uses_query=True)
    batch = collate(examples)
    labels = batch["labels"][0]
    assert (batch["input_ids"][0] == image_token).sum() == 4
    assert tokenizer.decode(labels[labels != IGNORE_INDEX]) == "red </s> no </s>"
    assert tokenizer.decode(batch["query_input_ids"][0]) == "what color is the square?"
    assert batch["pixel_values"].shape == (2, 3, 96, 96)

    result = Trainer(config, tmp_path / "run").run()
    assert result.steps == 2


def test_synthetic_examples_mirror_the_evaluation_prompt():
    tokenizer = build_tiny_tokenizer()
    collate = Collator(tokenizer, tiny_image_processor(), tokenizer.convert_tokens_to_ids("<image>"), 16, False)
    example = TrainingExample(Image.new("RGB", (96, 96)), (("How many circles are there?", "2"),))
    input_ids, labels = collate.encode(example)
    prompt_ids = input_ids[: labels.index(next(label for label in labels if label != IGNORE_INDEX))]
    assert tokenizer.decode(prompt_ids[16:]) == "how many circles are there?"
    assert prompt_ids[:16] == [tokenizer.convert_tokens_to_ids("<image>")] * 16


def test_the_data_cursor_visits_each_example_once_per_epoch_and_wraps():
    cursor = DataCursor(size=10, seed=3)
    first_epoch = cursor.next_indices(6) + cursor.next_indices(4)
    assert sorted(first_epoch) == list(range(10))
    assert DataCursor(size=10, seed=3).next_indices(10) == first_epoch  # seeded
    wrapped = cursor.next_indices(3)
    assert (cursor.epoch, cursor.index) == (1, 3)
    second_epoch = DataCursor(size=10, seed=3, epoch=1, index=0).next_indices(10)
    assert second_epoch[:3] == wrapped and second_epoch != first_epoch


def test_config_round_trips_through_json():
    config = TrainingConfig.from_dict({**RESUME_RUN.to_dict(), "epochs": 2.5, "max_steps": None})
    assert TrainingConfig.from_json(config.to_json()) == config
    assert config.total_steps(dataset_size=24) == 15  # ceil(2.5 * 24 / 4)


@pytest.fixture(scope="module")
def compressor_of_width_64(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("width64"), compressor="avgpool", tokens=4, llm_hidden=64)


def bad(**changes) -> TrainingConfig:
    return TrainingConfig.from_dict({**RESUME_RUN.to_dict(), "compressor": "avgpool", **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tokens": 5}, "compressor 'avgpool' does not support V=5 visual tokens on a 24x24 patch grid; allowed"),
        ({"compressor": "mystery"}, "unknown compressor method 'mystery'"),
        ({"batch_size": 0}, "batch_size must be > 0, got 0"),
        ({"max_steps": 0}, "max_steps must be > 0, got 0"),
        ({"max_steps": -3}, "max_steps must be > 0, got -3"),
        ({"max_steps": None}, "give exactly one of max_steps and epochs"),
        ({"epochs": 0, "max_steps": None}, "epochs must be > 0, got 0"),
        ({"gradient_accumulation": 0}, "gradient_accumulation must be > 0"),
        ({"learning_rate": 0}, "learning_rate must be > 0"),
        ({"stage": 3}, "stage must be 1 (compressor only) or 2"),
        ({"synthetic_count": 0}, "synthetic_count must be > 0, got 0"),
        ({"lr_schedule": "step"}, "unknown lr_schedule 'step'"),
        ({"tiny_model": None}, "give exactly one of base_checkpoint and tiny_model"),
        ({"dataset": "synthetic:digits"}, "unknown synthetic task 'digits'"),
        ({"dataset": "data.csv"}, "dataset must be synthetic:<task>"),
        ({"base_checkpoint": "/nonexistent", "tiny_model": None}, "no config.json in checkpoint folder /nonexistent"),
    ],
)
def test_each_bad_config_gets_its_message(changes, message):
    with pytest.raises(TrainingConfigError) as raised:
        Trainer(bad(**changes), "/nonexistent/output")
    assert message in str(raised.value)
    assert raised.value.problems and isinstance(raised.value, ValueError)


def test_all_problems_are_reported_together():
    with pytest.raises(TrainingConfigError) as raised:
        validate_config(bad(batch_size=-1, tokens=7, stage=0))
    assert len(raised.value.problems) == 3


def test_missing_images_are_counted_and_named(tmp_path):
    names = [f"img{index}.png" for index in range(9)]
    dataset = write_llava_dataset(tmp_path, names, present=2)
    with pytest.raises(TrainingConfigError) as raised:
        validate_config(bad(dataset=str(dataset), image_folder=str(tmp_path / "images")))
    assert "7 of 9 images" in str(raised.value)
    assert "img2.png, img3.png, img4.png, img5.png, img6.png, ..." in str(raised.value)
    assert "img0.png" not in str(raised.value)


def test_llm_width_mismatch_with_the_compressor_source(compressor_of_width_64, tmp_path):
    with pytest.raises(
        TrainingConfigError, match="LLM width mismatch: .* outputs width 64, the LLM has hidden size 32"
    ):
        validate_config(bad(tokens=4, compressor_from=str(compressor_of_width_64)))
    base = make_tiny_checkpoint(tmp_path / "base128", compressor="avgpool", tokens=4, llm_hidden=128)
    with pytest.raises(TrainingConfigError, match="hidden size 128"):
        validate_config(
            bad(tokens=4, tiny_model=None, base_checkpoint=str(base), compressor_from=str(compressor_of_width_64))
        )


def test_bf16_needs_cuda():
    with pytest.raises(TrainingConfigError, match="bf16 needs a CUDA device"):
        Trainer(bad(precision="bf16"), "/nonexistent/output", device="cpu")


def test_cli_trains_and_prints_the_result_as_json(tmp_path, capsys):
    from evaluation.__main__ import main

    main(
        [
            "train",
            "--out",
            str(tmp_path),
            "--compressor",
            "avgpool",
            "--tokens",
            "4",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--llm-hidden",
            "32",
            "--llm-layers",
            "1",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["steps"] == 2 and len(result["loss_history"]) == 2
    assert Path(result["checkpoint"], "config.json").is_file()
    assert "step 2/2 loss" in captured.err

    with pytest.raises(SystemExit, match="does not support V=3"):
        main(["train", "--out", str(tmp_path / "bad"), "--tokens", "3", "--steps", "2"])


def test_a_nan_loss_stops_training_before_the_weights_take_it_and_keeps_nothing(tmp_path, monkeypatch):
    """A loss that is not a number (a learning rate far too high, a bad example) stops the run with a failure
    that says what to do; no checkpoint is written and the saved state is the last finite one."""
    from dataclasses import replace

    import evaluation.training as training
    from evaluation.training import TrainingDiverged

    calls = {"n": 0}
    real = training.loss_from_features

    def loss_turning_nan(model, batch, features):
        calls["n"] += 1
        loss = real(model, batch, features)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(training, "loss_from_features", loss_turning_nan)
    config = replace(RESUME_RUN, compressor="avgpool", save_every=2)
    trainer = Trainer(config, tmp_path / "run", device="cpu")
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at step 3: training diverged .* lower the learning rate"):
        trainer.run()
    assert TrainingDiverged.failure_class == "training_diverged"
    assert not (tmp_path / "run" / "checkpoint").exists()
    saved = latest_state(tmp_path / "run")
    assert saved is not None and saved.name == "step-000002"
    assert all(torch.isfinite(tensor).all() for tensor in load_file(saved / "trainable.safetensors").values())


def test_a_model_too_large_for_the_worker_s_memory_is_refused_before_anything_loads(tmp_path):
    """A 9.7 B-parameter model on a 23 GB worker spun with growing memory (issue #15 row 9)."""
    from dataclasses import replace

    from evaluation.modeling import FrontierVLM
    from evaluation.training_memory import TrainingTooLarge, check_memory, parameter_counts

    base = make_tiny_checkpoint(tmp_path / "base", compressor="avgpool", tokens=4)
    model = FrontierVLM.from_pretrained(base)
    stage1 = TrainingConfig(compressor="avgpool", tokens=4, stage=1, base_checkpoint=str(base), max_steps=1)
    total, trainable = parameter_counts(stage1)
    assert total == sum(p.numel() for p in model.parameters()) and trainable == 0
    stage2 = replace(stage1, stage=2)
    assert parameter_counts(stage2)[1] == sum(p.numel() for p in model.language_model.parameters())

    needed = 4 * total + 12 * parameter_counts(stage2)[1]
    check_memory(stage2, torch.device("cpu"), available=needed)  # just fits
    with pytest.raises(TrainingTooLarge, match=r"needs at least .* GB .* but this worker has .* GB available on cpu"):
        check_memory(stage2, torch.device("cpu"), available=needed - 1)
    assert TrainingTooLarge.failure_class == "too_large"
    big = replace(RESUME_RUN, tiny_model=TinyModelSpec(llm_hidden=9000, llm_layers=10))  # 9.7 B parameters
    with pytest.raises(TrainingTooLarge, match=r"9\.72 B parameters"):
        check_memory(big, torch.device("cpu"), available=23 * 10**9)
