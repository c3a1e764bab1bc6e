"""Non-hollow proof: a tiny checkpoint trained briefly on the ``shapes`` train split answers its test
split clearly above chance, scored by the worker's code path (lmms-eval through CheckpointEvaluator),
while the same model untrained is not above chance."""

import statistics
from pathlib import Path

import pytest
import torch

from evaluation.synthetic import METRIC, chance_level, process_results, synthetic_examples
from evaluation.tiny import build_tiny_vlm, make_tiny_checkpoint, tiny_image_processor
from evaluation.training import TinyModelSpec, Trainer, TrainingConfig

pytestmark = pytest.mark.slow  # trains models for minutes: not in `make test-fast`

TEST_ITEMS = 200
# About 100 s of CPU time (50 s on 2 idle cores): every train image is encoded once (the encoder is
# frozen), then 1,500 steps of 32 examples (24 epochs of the 2,000 train items).
SHAPES_RUN = TrainingConfig(
    compressor="avgpool",
    tokens=9,  # one visual token per cell of the 3 x 3 grid the shapes are drawn in
    stage=2,
    tiny_model=TinyModelSpec(llm_hidden=64, llm_layers=2, seed=0),
    learning_rate=1.5e-3,
    batch_size=32,
    max_steps=1500,
    warmup_steps=75,
    seed=0,
)
# Measured with seed 0 (this test) since tiny models start at the relative init scale (README "Initial
# scale"): trained 0.625, untrained 0.000, chance 0.354. At that scale lr 3e-3 overshoots (0.575, existence
# 0.60); before it, at lr 3e-3, seeds 0, 1, 2 gave 0.615, 0.570, 0.535.
TRAINED_MARGIN = 0.15
UNTRAINED_MARGIN = 0.05


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    result = Trainer(SHAPES_RUN, tmp_path_factory.mktemp("shapes-run"), device="cpu").run()
    return Path(result.checkpoint)


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory) -> Path:
    spec = SHAPES_RUN.tiny_model
    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("untrained"),
        compressor=SHAPES_RUN.compressor,
        tokens=SHAPES_RUN.tokens,
        llm_hidden=spec.llm_hidden,
        llm_layers=spec.llm_layers,
        seed=spec.seed,
    )


def shapes_scores(checkpoint: Path, synthetic_root: Path) -> tuple[float, dict[str, float]]:
    """(exact match from lmms-eval on the first TEST_ITEMS test items, accuracy per question kind)."""
    from evaluation.harness import CheckpointEvaluator

    evaluator = CheckpointEvaluator(checkpoint, batch_size=50, device="cpu", synthetic_dir=synthetic_root)
    outcome = evaluator.evaluate(["shapes"], limit=TEST_ITEMS, latency_samples=0)
    [row] = [row for row in outcome.rows if row.metric == METRIC]
    assert row.n == TEST_ITEMS
    items = synthetic_examples("shapes", "test", count=TEST_ITEMS)
    images, prompts = [item.image for item in items], [item.prompt for item in items]
    answers = evaluator.runner.generate(images, prompts, max_new_tokens=8)  # the task's generation settings
    by_kind: dict[str, list[float]] = {}
    for item, answer in zip(items, answers, strict=True):
        by_kind.setdefault(item.category, []).append(process_results({"answer": item.answer}, [answer])[METRIC])
    return row.value, {kind: statistics.mean(scores) for kind, scores in by_kind.items()}


def test_the_tiny_encoder_features_vary_with_the_image_more_than_they_share():
    """The cause of hollow training: random CLIP features dominated by one offset shared by every patch."""
    model, _ = build_tiny_vlm(compressor="avgpool", tokens=9, seed=SHAPES_RUN.tiny_model.seed)
    images = [item.image for item in synthetic_examples("shapes", "test", count=32)]
    pixel_values = tiny_image_processor()(images=images, return_tensors="pt")["pixel_values"]
    patches = model.encode_images(pixel_values).patch_feats  # (images, patches, width), layer -2
    offset = patches.mean(dim=(0, 1)).pow(2).mean().sqrt()
    spread_within_images = (patches - patches.mean(dim=1, keepdim=True)).pow(2).mean().sqrt()
    spread_across_images = patches.mean(dim=1).std(dim=0).pow(2).mean().sqrt()
    assert offset < 0.2 * spread_within_images  # uncalibrated: about 2.6 times larger
    assert spread_across_images > 0.1 * spread_within_images
    assert torch.isfinite(patches).all()


def test_training_lifts_shapes_accuracy_clearly_above_chance(
    trained_checkpoint, untrained_checkpoint, synthetic_root, record_property
):
    chance = chance_level("shapes", test_size=TEST_ITEMS)
    untrained, untrained_by_kind = shapes_scores(untrained_checkpoint, synthetic_root)
    trained, trained_by_kind = shapes_scores(trained_checkpoint, synthetic_root)
    record_property("shapes_accuracy", {"chance": chance, "untrained": untrained, "trained": trained})
    record_property("shapes_accuracy_by_kind", {"untrained": untrained_by_kind, "trained": trained_by_kind})
    print(f"chance {chance:.3f}; untrained {untrained:.3f} {untrained_by_kind}")
    print(f"trained {trained:.3f} {trained_by_kind}")

    assert untrained <= chance + UNTRAINED_MARGIN
    assert trained >= chance + TRAINED_MARGIN
    # The per-kind scores come from the same model outside lmms-eval: they agree with its number.
    assert statistics.mean(trained_by_kind.values()) == pytest.approx(trained, abs=0.03)
    assert trained_by_kind["existence"] > 0.5 + 0.1  # yes/no from the image, not the (balanced) prior
