"""The counted sizes Frontier stores for the paper's LLMs (fitting.published, torch-free) are what transformers
builds from the public configs: each Qwen1.5 config instantiated as Qwen2ForCausalLM on the meta device (no memory,
no download), its parameters counted once each (tied embeddings once), as an upload's validation counts them."""
import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from fitting.published import KNOWN_MODELS, QWEN15_CONFIGS, counted_params, qwen2_parameter_count


def counted_by_transformers(config: dict) -> int:
    with torch.device("meta"):
        model = Qwen2ForCausalLM(Qwen2Config(**config))
    # parameters() yields a tied tensor once, as the validation's count does.
    return sum(parameter.numel() for parameter in model.parameters())


@pytest.mark.parametrize("nominal", sorted(QWEN15_CONFIGS))
def test_stored_counts_are_those_of_the_built_model(nominal):
    config = QWEN15_CONFIGS[nominal]
    stored = KNOWN_MODELS[("qwen1.5-chat", nominal)]
    assert counted_by_transformers(config) == stored
    assert qwen2_parameter_count(config) == stored
    assert counted_params("Qwen1.5-Chat", nominal) == stored


def test_the_half_billion_model_counts_less_than_its_name():
    # The example: "0.5 B" Qwen1.5 counts about 0.46 B (tied embeddings counted once).
    assert counted_by_transformers(QWEN15_CONFIGS[500_000_000]) == 463_987_712
    untied = {**QWEN15_CONFIGS[500_000_000], "tie_word_embeddings": False}
    assert counted_by_transformers(untied) == 463_987_712 + 151936 * 1024
