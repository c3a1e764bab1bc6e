"""LLaVA's named conversations: rendered as LLaVA's ``Conversation.get_prompt()`` does, in training and evaluation.

The expected strings are written out by hand from LLaVA's conversation.py (conv_vicuna_v1: SeparatorStyle.TWO,
sep " ", sep2 "</s>"; conv_llava_plain: sep "\\n"; LLaVA-NeXT's conv_qwen: ChatML with Qwen's default system).
"""

import json
from pathlib import Path

import pytest
import torch

from evaluation.loading import load_vlm
from evaluation.modeling import FrontierVLMConfig
from evaluation.prompts import PLAIN, PromptFormat, conversation_format, format_of_conversation
from evaluation.tiny import build_tiny_tokenizer, make_tiny_checkpoint
from evaluation.training_batches import IGNORE_INDEX, Collator
from evaluation.training_data import TrainingExample
from evaluation.validation import CheckpointInvalid, validate_checkpoint_dir

V1_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
             "detailed, and polite answers to the user's questions.")
EXPECTED_SINGLE = {
    "v1": V1_SYSTEM + " USER: <image>\nWhat is shown? ASSISTANT:",
    "qwen_1_5": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat is shown?"
                "<|im_end|>\n<|im_start|>assistant\n",
    "plain": "<image>\nWhat is shown?\n",
}
EXPECTED_TWO_TURNS = {  # the full training text of [(q1, a1), (q2, a2)]
    "v1": V1_SYSTEM + " USER: <image>\nWhat is shown? ASSISTANT: a dog</s>USER: How many? ASSISTANT: two</s>",
    "qwen_1_5": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat is shown?"
                "<|im_end|>\n<|im_start|>assistant\na dog<|im_end|>\n<|im_start|>user\nHow many?<|im_end|>\n"
                "<|im_start|>assistant\ntwo<|im_end|>\n",
    "plain": "<image>\nWhat is shown?\na dog\nHow many?\ntwo\n",
}
TURNS = (("<image>\nWhat is shown?", "a dog"), ("How many?", "two"))


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.mark.parametrize("name", sorted(EXPECTED_SINGLE))
def test_a_named_conversation_renders_as_llava_does(name, tokenizer):
    prompt_format = conversation_format(name)
    assert prompt_format.render("What is shown?", tokenizer) == EXPECTED_SINGLE[name]
    assert prompt_format.render("<image>\nWhat is shown?", tokenizer) == EXPECTED_SINGLE[name]
    turns = prompt_format.training_turns(TURNS, tokenizer)
    assert "".join(human + answer for human, answer in turns) == EXPECTED_TWO_TURNS[name]
    assert turns[0][0] == EXPECTED_SINGLE[name]  # training's first prompt is what evaluation feeds
    assert prompt_format.stamp()["name"] == f"llava_{name}" and len(prompt_format.stamp()["template_sha256"]) == 64


def test_plain_is_unchanged_for_frontier_checkpoints(tokenizer):
    assert format_of_conversation(None) == PromptFormat() and PromptFormat().name == PLAIN
    assert PromptFormat().training_turns(TURNS) == [("<image>\nWhat is shown?", None), ("How many?", None)]
    assert PromptFormat().render("What is shown?") == "<image>\nWhat is shown?"


def test_an_unknown_conversation_is_refused_where_it_is_written(tmp_path):
    with pytest.raises(ValueError, match="conversation must be one of v1, qwen_1_5, plain"):
        FrontierVLMConfig(conversation="vicuna")
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny", compressor="avgpool", tokens=4)
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "conversation": "vicuna"}))
    with pytest.raises(CheckpointInvalid, match="conversation must be one of v1, qwen_1_5, plain or absent"):
        validate_checkpoint_dir(checkpoint)


@pytest.fixture(scope="module")
def v1_checkpoint(tmp_path_factory):
    checkpoint = make_tiny_checkpoint(tmp_path_factory.mktemp("v1"), compressor="quecc", tokens=4)
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "conversation": "v1"}))
    return checkpoint


def test_training_sequences_start_with_the_prompt_evaluation_feeds(v1_checkpoint):
    runner = load_vlm(v1_checkpoint)
    assert validate_checkpoint_dir(v1_checkpoint).prompt_format["name"] == "llava_v1"
    collate = Collator(runner.tokenizer, runner.image_processor, runner.image_token_id, runner.visual_tokens, True,
                       runner.prompt_format)
    example = TrainingExample(image=None, turns=TURNS)
    input_ids, labels = collate.encode(example)
    prompt_ids = runner._prompt_ids("What is shown?")
    assert input_ids[: len(prompt_ids)] == prompt_ids
    assert labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    answer = [token for token in labels[len(prompt_ids):] if token != IGNORE_INDEX]
    # Labelled: both answers with the template's closing </s>; not the second USER turn.
    assert runner.tokenizer.decode(answer) == runner.tokenizer.decode(
        runner.tokenizer(" a dog</s> two</s>", add_special_tokens=False).input_ids
    )
    assert runner.tokenizer.eos_token_id in answer


def test_a_checkpoint_trained_from_a_v1_base_keeps_its_conversation(v1_checkpoint, tmp_path):
    from evaluation.training import Trainer, TrainingConfig

    config = TrainingConfig(compressor="avgpool", tokens=4, base_checkpoint=str(v1_checkpoint), tiny_model=None,
                            dataset="synthetic:shapes", synthetic_count=8, max_steps=2, batch_size=2, seed=0)
    result = Trainer(config, tmp_path / "run").run()
    trained = json.loads((Path(result.checkpoint) / "config.json").read_text())
    assert trained["conversation"] == "v1" and trained["compressor_layout"] == 2
    assert load_vlm(result.checkpoint).prompt_format.name == "llava_v1"
    assert torch.isfinite(torch.tensor(result.final_loss))
