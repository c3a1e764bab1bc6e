"""Compressor shapes, V validation, locality, query dependence, PruMerge and MQT behaviour."""

import pytest
import torch

from evaluation.compressors import (
    COMPRESSORS,
    AveragePooling,
    MatryoshkaQueryTransformer,
    PruMerge,
    QueCC,
    build_compressor,
)

GRID = 24
PATCHES = GRID * GRID
VISION_WIDTH = 32
MULTI_LEVEL_WIDTH = 4 * VISION_WIDTH
LLM_WIDTH = 48
PAPER_TOKENS = (1, 4, 16, 36, 64, 144, 576)
REGION_BASED = ("avgpool", "tokenpacker", "quecc")


def make(method, tokens, **params):
    torch.manual_seed(0)
    return build_compressor(method, tokens, VISION_WIDTH, MULTI_LEVEL_WIDTH, LLM_WIDTH, GRID, **params).eval()


def random_inputs(batch=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return {
        "patch_feats": torch.randn(batch, PATCHES, VISION_WIDTH, generator=generator),
        "multi_level_feats": torch.randn(batch, PATCHES, MULTI_LEVEL_WIDTH, generator=generator),
        "query_emb": torch.randn(batch, 1, LLM_WIDTH, generator=generator),
        "cls_attention": torch.rand(batch, PATCHES, generator=generator).softmax(dim=1),
        "patch_keys": torch.randn(batch, PATCHES, VISION_WIDTH, generator=generator),
    }


def run(compressor, inputs):
    with torch.no_grad():
        return compressor.compress(
            inputs["patch_feats"],
            inputs["multi_level_feats"],
            inputs["query_emb"],
            cls_attention=inputs["cls_attention"],
            patch_keys=inputs["patch_keys"],
        )


@pytest.mark.parametrize("tokens", PAPER_TOKENS)
@pytest.mark.parametrize("method", sorted(set(COMPRESSORS) - {"mqt"}))
def test_output_shape_for_every_paper_token_count(method, tokens):
    compressor = make(method, tokens)
    assert compressor.tokens == tokens
    assert run(compressor, random_inputs()).shape == (2, tokens, LLM_WIDTH)


@pytest.mark.parametrize("tokens", (*PAPER_TOKENS[:-1], 256))
def test_mqt_output_shape_over_its_range(tokens):
    assert run(make("mqt", tokens), random_inputs()).shape == (2, tokens, LLM_WIDTH)


def test_mqt_with_576_queries_supports_576_tokens():
    assert run(make("mqt", 576, max_queries=576), random_inputs(batch=1)).shape == (1, 576, LLM_WIDTH)


@pytest.mark.parametrize(
    ("method", "tokens", "params", "allowed"),
    [
        ("avgpool", 10, {}, "1, 4, 9, 16, 36, 64, 144, 576"),
        ("tokenpacker", 100, {}, "1, 4, 9, 16, 36, 64, 144, 576"),
        ("quecc", 2, {}, "1, 4, 9, 16, 36, 64, 144, 576"),
        ("prumerge", 577, {}, "1..576"),
        ("mqt", 576, {}, "1..256"),
        ("mqt", 0, {"max_queries": 64}, "1..64"),
    ],
)
def test_unsupported_token_count_is_a_clear_error(method, tokens, params, allowed):
    with pytest.raises(ValueError) as error:
        make(method, tokens, **params)
    message = str(error.value)
    assert repr(method) in message and f"V={tokens}" in message and allowed in message


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown compressor method 'pooling'"):
        make("pooling", 16)


@pytest.mark.parametrize("method", REGION_BASED)
def test_region_token_ignores_features_outside_its_region(method):
    """V = 16: token 0 covers rows 0-5, columns 0-5 of the grid; everything else may change freely."""
    compressor = make(method, 16)
    inputs = random_inputs()
    grid_mask = torch.zeros(GRID, GRID, dtype=torch.bool)
    grid_mask[:6, :6] = True
    outside = ~grid_mask.flatten()
    perturbed = dict(inputs)
    for key in ("patch_feats", "multi_level_feats"):
        noise = torch.randn_like(inputs[key]) * 5
        perturbed[key] = torch.where(outside[None, :, None], inputs[key] + noise, inputs[key])
    before, after = run(compressor, inputs), run(compressor, perturbed)
    torch.testing.assert_close(after[:, 0], before[:, 0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(after[:, 1:], before[:, 1:])


@pytest.mark.parametrize("method", REGION_BASED)
def test_region_token_follows_features_inside_its_region(method):
    compressor = make(method, 16)
    inputs = random_inputs()
    perturbed = dict(inputs)
    for key in ("patch_feats", "multi_level_feats"):
        grid = inputs[key].clone().view(2, GRID, GRID, -1)
        grid[:, 2:4, 2:4] += 3.0
        perturbed[key] = grid.view(2, PATCHES, -1)
    before, after = run(compressor, inputs), run(compressor, perturbed)
    assert not torch.allclose(after[:, 0], before[:, 0])
    torch.testing.assert_close(after[:, 1:], before[:, 1:], rtol=1e-5, atol=1e-6)


def test_quecc_output_depends_on_the_question():
    compressor = make("quecc", 16)
    inputs = random_inputs()
    other_question = dict(inputs, query_emb=torch.randn(2, 1, LLM_WIDTH))
    assert not torch.allclose(run(compressor, inputs), run(compressor, other_question))
    flat_query = dict(inputs, query_emb=inputs["query_emb"][:, 0])
    torch.testing.assert_close(run(compressor, flat_query), run(compressor, inputs))


def test_quecc_requires_a_query():
    inputs = random_inputs()
    with pytest.raises(ValueError, match="quecc needs the query embedding"):
        make("quecc", 4).compress(inputs["patch_feats"], inputs["multi_level_feats"])


def test_prumerge_requires_cls_attention():
    inputs = random_inputs()
    with pytest.raises(ValueError, match="prumerge needs cls_attention and patch_keys"):
        make("prumerge", 4).compress(inputs["patch_feats"], inputs["multi_level_feats"])


def test_prumerge_has_no_trainable_parameters_besides_the_shared_projector():
    prumerge, pooling = make("prumerge", 16), make("avgpool", 16)
    assert all(name.startswith("projector.") for name, _ in prumerge.named_parameters())
    assert prumerge.parameter_count == pooling.parameter_count


def test_prumerge_keeps_the_most_attended_patches_and_ignores_unattended_ones():
    """Zero-attention patches that are not kept add nothing: neither to merged tokens nor the extra token."""
    compressor = make("prumerge", 4)
    inputs = random_inputs(batch=1)
    attention = torch.zeros(1, PATCHES)
    attended = torch.tensor([5, 100, 300, 301, 470])
    attention[0, attended] = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05])
    inputs["cls_attention"] = attention
    unattended = torch.ones(PATCHES, dtype=torch.bool)
    unattended[attended] = False
    perturbed = dict(inputs, patch_feats=inputs["patch_feats"] + 4 * unattended[None, :, None])
    torch.testing.assert_close(run(compressor, perturbed), run(compressor, inputs))

    kept_patch_changed = inputs["patch_feats"].clone()
    kept_patch_changed[0, 100] += 4
    dropped_patch_changed = inputs["patch_feats"].clone()
    dropped_patch_changed[0, 470] += 4
    before = run(compressor, inputs)
    after_kept = run(compressor, dict(inputs, patch_feats=kept_patch_changed))
    after_dropped = run(compressor, dict(inputs, patch_feats=dropped_patch_changed))
    assert not torch.allclose(after_kept[:, :3], before[:, :3])
    assert not torch.allclose(after_dropped[:, 3], before[:, 3])


def test_mqt_tokens_are_nested():
    """The first V tokens of a V' > V model equal the V-token model with the same weights."""
    small, large = make("mqt", 4), make("mqt", 64)
    small.load_state_dict(large.state_dict())
    inputs = random_inputs()
    torch.testing.assert_close(run(small, inputs), run(large, inputs)[:, :4])


def test_parameter_counts_are_the_compressors_own():
    for method, compressor_type in COMPRESSORS.items():
        compressor = make(method, 16)
        assert isinstance(compressor, compressor_type)
        assert compressor.parameter_count == sum(p.numel() for p in compressor.parameters())
    projector_only = make("avgpool", 16).parameter_count
    assert projector_only == (VISION_WIDTH + 1) * LLM_WIDTH + (LLM_WIDTH + 1) * LLM_WIDTH
    for learned in (make("tokenpacker", 16), make("quecc", 16), make("mqt", 16)):
        assert learned.parameter_count > projector_only


def test_uses_flags_match_the_methods():
    assert QueCC.uses_query and not AveragePooling.uses_query
    assert PruMerge.uses_cls_attention and not MatryoshkaQueryTransformer.uses_cls_attention


def test_quecc_has_the_reference_implementations_parameters():
    """locuslab/llava-token-compression's QueCC (llava/model/multimodal_projector/quecc.py) at its defaults:
    ViT-L width C = 1024, multi-level and text inputs 4096 wide, a 4x4 kernel with stride 4 (V = 36 on the
    24x24 grid). Its modules, counted by hand: the attention (in-projection 3C x C + 3C, out-projection
    C x C + C), q_proj (two C x C linears and a LayerNorm), k_proj and v_proj (each 4096 -> C, C -> C and a
    LayerNorm: keys and values do not share weights), the depth-wise conv (C x 4 x 4 + C) and
    text_projection (4096 -> C and a LayerNorm). The LLaVA projector after it is not part of its count."""
    width, wide = 1024, 4096
    linear = lambda fan_in, fan_out: fan_in * fan_out + fan_out  # noqa: E731
    layer_norm = 2 * width
    reference = (
        (3 * width * width + 3 * width) + linear(width, width)  # clip_attn
        + 2 * linear(width, width) + layer_norm  # q_proj
        + 2 * (linear(wide, width) + linear(width, width) + layer_norm)  # k_proj, v_proj
        + (width * 4 * 4 + width)  # q_downsample
        + linear(wide, width) + layer_norm  # text_projection
    )
    compressor = QueCC(36, vision_width=width, multi_level_width=wide, llm_width=wide)
    projector = sum(parameter.numel() for parameter in compressor.projector.parameters())
    assert compressor.parameter_count - projector == reference
    assert compressor.downsample.kernel_size == compressor.downsample.stride == (4, 4)
    norms = [module for module in compressor.modules() if isinstance(module, torch.nn.LayerNorm)]
    assert len(norms) == 4 and all(norm.eps == 1e-6 for norm in norms)  # the reference's eps


def test_quecc_matches_the_papers_forward_pass_written_with_unfold():
    """The reference's forward, in other primitives: text added to every patch, q_proj, a depth-wise strided
    conv, then each region's query attends to that region's keys (k_proj) and values (v_proj), the regions
    cut out with F.unfold instead of the reshapes QueCC uses."""
    compressor, inputs, side = make("quecc", 16), random_inputs(), GRID // 4
    batch = inputs["patch_feats"].shape[0]

    def regions(tokens):  # (B, 576, C) -> (B * 16, side * side, C), regions row-major
        grid = tokens.transpose(1, 2).reshape(batch, VISION_WIDTH, GRID, GRID)
        patches = torch.nn.functional.unfold(grid, kernel_size=side, stride=side)  # (B, C * s * s, 16)
        return patches.reshape(batch, VISION_WIDTH, side * side, 16).permute(0, 3, 2, 1).reshape(-1, side * side, VISION_WIDTH)

    with torch.no_grad():
        x = inputs["patch_feats"] + compressor.text_proj(inputs["query_emb"])
        queries = compressor.query_proj(x).transpose(1, 2).reshape(batch, VISION_WIDTH, GRID, GRID)
        queries = compressor.downsample(queries).flatten(2).transpose(1, 2).reshape(-1, 1, VISION_WIDTH)
        keys = regions(compressor.key_proj(inputs["multi_level_feats"]))
        values = regions(compressor.value_proj(inputs["multi_level_feats"]))
        attended = compressor.local_attention.attention(queries, keys, values)[0].reshape(batch, 16, VISION_WIDTH)
        expected = compressor.projector(attended)
    torch.testing.assert_close(run(compressor, inputs), expected)
    assert not torch.allclose(compressor.key_proj[0].weight, compressor.value_proj[0].weight)
