"""QueCC and TokenPacker against their reference implementations, through the reference key names.

The reference modules (``tests/llava_reference.py``) are written from the public code's description
(locuslab/llava-token-compression's QueCC inside LLaVA's ``mlp2x_gelu`` projector; CircleRadon/TokenPacker):
the reference's tensor names, its sequence-first attention and its own way of cutting the grid into
regions, none of Frontier's helpers. Random reference weights (LayerNorms included) are renamed with
``evaluation.compressors.from_reference_keys`` into Frontier's compressor, which must give the same
compressed tokens on the same inputs (max abs diff <= 1e-5 in float32).
"""

import json

import pytest
import torch
from llava_reference import (
    GRID,
    HEADS,
    LEVELS,
    LLM,
    TEXT,
    C,
    ReferenceMlp2xGelu,
    ReferenceQueCC,
    ReferenceTokenPacker,
    randomize,
)
from torch import nn

from evaluation.compressors import REFERENCE_KEYS, build_compressor, from_reference_keys
from evaluation.modeling import FrontierVLM, FrontierVLMConfig, from_pretrained_complete
from evaluation.vlm_spec import COMPRESSOR_LAYOUT, TINY_MULTI_LEVEL_LAYERS, TINY_VISION


def inputs(batch=3, seed=7):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, GRID * GRID, C, generator=generator),
        torch.randn(batch, GRID * GRID, LEVELS * C, generator=generator),
        torch.randn(batch, 1, TEXT, generator=generator),
    )


def converted(method, tokens, reference, **params):
    tensors = {f"model.mm_projector.{name}": tensor for name, tensor in reference.state_dict().items()}
    renamed = from_reference_keys(method, tensors)
    heads = {} if method == "avgpool" else {"num_heads": HEADS}
    compressor = build_compressor(method, tokens, C, LEVELS * C, LLM, GRID, **heads, **params)
    compressor.load_state_dict({name.removeprefix("compressor."): t for name, t in renamed.items()}, strict=True)
    return compressor.eval()


@pytest.mark.parametrize("kernel", (24, 6, 4, 2))
def test_quecc_equals_the_paper_code_on_the_same_weights(kernel):
    # QueCC at index 0 of mlp2x_gelu, whose first Linear reads QueCC's C-wide output (mm_hidden_size = C).
    reference = randomize(ReferenceMlp2xGelu(ReferenceQueCC(kernel), nn.Linear(C, LLM), nn.GELU(), nn.Linear(LLM, LLM)),
                          seed=kernel)
    tokens = (GRID // kernel) ** 2
    frontier = converted("quecc", tokens, reference)
    patches, multi, text = inputs()
    with torch.no_grad():
        expected = reference((multi, text, patches))
        actual = frontier.compress(patches, multi, text)
    assert actual.shape == (3, tokens, LLM)
    assert (actual - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("scale_factor", (2, 4, 6))
def test_tokenpacker_equals_the_reference_code_on_the_same_weights(scale_factor):
    reference = randomize(ReferenceTokenPacker(scale_factor), seed=scale_factor)
    tokens = (GRID // scale_factor) ** 2
    frontier = converted("tokenpacker", tokens, reference)
    patches, multi, _ = inputs()
    with torch.no_grad():
        expected = reference((patches, multi))
        actual = frontier.compress(patches, multi)
    assert actual.shape == (3, tokens, LLM)
    assert (actual - expected).abs().max().item() <= 1e-5


def test_llava_mlp2x_gelu_is_average_pooling_at_576_tokens():
    reference = randomize(ReferenceMlp2xGelu(nn.Linear(C, LLM), nn.GELU(), nn.Linear(LLM, LLM)), seed=1)
    frontier = converted("avgpool", 576, reference)
    patches, multi, _ = inputs()
    with torch.no_grad():
        assert (frontier.compress(patches, multi) - reference(patches)).abs().max().item() <= 1e-5


def test_a_name_outside_the_reference_layout_is_named_in_the_error():
    reference = ReferenceTokenPacker(2)
    tensors = {f"model.mm_projector.{name}": t for name, t in reference.state_dict().items()}
    tensors["model.mm_projector.extra_gate.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="extra_gate.weight.*mm_vision_token_compression_type"):
        from_reference_keys("tokenpacker", tensors)
    with pytest.raises(ValueError, match="no reference layout for 'mqt'"):
        from_reference_keys("mqt", tensors)


def test_every_reference_rule_names_a_frontier_tensor():
    for method, rules in REFERENCE_KEYS.items():
        tokens = 576 if method == "avgpool" else 144
        names = set(build_compressor(method, tokens, C, LEVELS * C, LLM, GRID).state_dict())
        for _, frontier in rules:
            assert any(name.startswith(frontier) for name in names), (method, frontier)


def tiny_tokenpacker_config(**extra):
    return FrontierVLMConfig(
        vision_config=TINY_VISION, text_config={"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
                                                "intermediate_size": 64, "num_hidden_layers": 1,
                                                "num_attention_heads": 4, "num_key_value_heads": 2},
        compressor_method="tokenpacker", visual_tokens=16, multi_level_layers=TINY_MULTI_LEVEL_LAYERS,
        image_token_id=63, **extra,
    )


def test_a_layout_1_tokenpacker_checkpoint_keeps_loading(tmp_path):
    """Saved before layouts had a number: one shared key/value MLP, and no compressor_layout in config.json."""
    torch.manual_seed(0)
    old = FrontierVLM(tiny_tokenpacker_config(compressor_layout=1)).eval()
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config.pop("compressor_layout") == 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = from_pretrained_complete(FrontierVLM, tmp_path).eval()
    assert loaded.config.compressor_layout == 1 and hasattr(loaded.compressor, "key_value_proj")
    patches, multi, _ = inputs(batch=1)
    with torch.no_grad():
        assert torch.equal(loaded.compressor.compress(patches, multi), old.compressor.compress(patches, multi))


def test_a_new_checkpoint_writes_its_layout(tmp_path):
    FrontierVLM(tiny_tokenpacker_config()).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["compressor_layout"] == COMPRESSOR_LAYOUT == 2
    loaded = from_pretrained_complete(FrontierVLM, tmp_path)
    assert loaded.config.compressor_layout == 2 and hasattr(loaded.compressor, "value_proj")
    with pytest.raises(ValueError, match="compressor_layout must be one of 1, 2"):
        tiny_tokenpacker_config(compressor_layout=3)


def test_training_from_a_layout_1_compressor_keeps_its_layout(tmp_path):
    """compressor_from a TokenPacker of layout 1: the trained checkpoint is layout 1 too, and loads."""
    from evaluation.tiny import make_tiny_checkpoint
    from evaluation.training import Trainer, TrainingConfig

    base = make_tiny_checkpoint(tmp_path / "base", compressor="tokenpacker", tokens=16)
    current = from_pretrained_complete(FrontierVLM, base)
    config = current.config
    config.compressor_layout = 1
    old = FrontierVLM(config)
    old.load_state_dict(current.state_dict(), strict=False)  # the same tower and LLM, a layout-1 compressor
    old.save_pretrained(tmp_path / "old")
    training = TrainingConfig(compressor="tokenpacker", tokens=16, base_checkpoint=str(base), tiny_model=None,
                              compressor_from=str(tmp_path / "old"), synthetic_count=4, max_steps=1, batch_size=2)
    result = Trainer(training, tmp_path / "run").run()
    trained = from_pretrained_complete(FrontierVLM, result.checkpoint)
    assert trained.config.compressor_layout == 1 and hasattr(trained.compressor, "key_value_proj")
