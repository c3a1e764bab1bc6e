"""A checkpoint whose weights do not cover its model is refused, never filled with a random init:
transformers only logs missing tensors and initializes them afresh, so such a model would be scored
(or trained on) as if it were the uploaded one. QueCC's shared key/value MLP of Frontier before
2026-12 gets a message that says what changed and what to do."""

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from evaluation.errors import CheckpointLoadError
from evaluation.loading import load_vlm
from evaluation.modeling import IncompleteWeights
from evaluation.training import TinyModelSpec, TrainingConfig, build_model
from evaluation.validation import CheckpointInvalid, validate_checkpoint_dir

WEIGHTS = "model.safetensors"


def rewrite_weights(source: Path, out: Path, edit) -> Path:
    shutil.copytree(source, out)
    tensors = load_file(out / WEIGHTS)
    save_file(edit(tensors), out / WEIGHTS, metadata={"format": "pt"})
    return out


def legacy_quecc(tensors: dict) -> dict:
    """The pre-2026-12 layout: one key_value_proj, no separate value MLP."""
    renamed = {name.replace("compressor.key_proj.", "compressor.key_value_proj."): tensor for name, tensor in tensors.items()}
    return {name: tensor for name, tensor in renamed.items() if not name.startswith("compressor.value_proj.")}


@pytest.fixture(scope="module")
def legacy_checkpoint(quecc_checkpoint, tmp_path_factory) -> Path:
    return rewrite_weights(quecc_checkpoint, tmp_path_factory.mktemp("legacy") / "ckpt", legacy_quecc)


def test_the_complete_checkpoint_loads(quecc_checkpoint):
    assert load_vlm(quecc_checkpoint).model.visual_tokens == 16


def test_a_missing_tensor_is_refused_by_name(quecc_checkpoint, tmp_path):
    dropped = "compressor.projector.2.bias"
    folder = rewrite_weights(quecc_checkpoint, tmp_path / "ckpt", lambda t: {k: v for k, v in t.items() if k != dropped})
    with pytest.raises(IncompleteWeights, match=rf"1 weights are missing \({dropped}\)"):
        load_vlm(folder)


def test_the_legacy_quecc_layout_is_refused_at_load_with_what_to_do(legacy_checkpoint):
    with pytest.raises(IncompleteWeights, match="shared key/value MLP .*train it again") as caught:
        load_vlm(legacy_checkpoint)
    assert "compressor.value_proj.0.weight" in str(caught.value) or "7 more" in str(caught.value)


def test_the_legacy_quecc_layout_is_refused_at_validation(legacy_checkpoint):
    with pytest.raises(CheckpointInvalid) as caught:
        validate_checkpoint_dir(legacy_checkpoint)
    problems = "\n".join(caught.value.problems)
    assert "missing tensor compressor.value_proj.0.weight" in problems
    assert "shared key/value MLP" in problems and "train it again" in problems


def test_the_evaluator_reports_it_as_a_load_error(legacy_checkpoint):
    from evaluation.harness import CheckpointEvaluator

    with pytest.raises(CheckpointLoadError, match="shared key/value MLP"):
        CheckpointEvaluator(legacy_checkpoint, device="cpu")


def test_training_from_it_is_refused(legacy_checkpoint):
    config = TrainingConfig(compressor="quecc", tokens=16, stage=1, dataset="synthetic:spots",
                            compressor_from=str(legacy_checkpoint), tiny_model=TinyModelSpec(llm_hidden=64))
    with pytest.raises(IncompleteWeights, match="shared key/value MLP"):
        build_model(config)
