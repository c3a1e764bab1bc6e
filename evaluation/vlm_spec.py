"""What a FrontierVLM is made of, as plain values: importable without torch.

The torch modules build models from these (``compressors``, ``modeling``, ``tiny``); checks that
must run without torch (``training_config``, and through it the web side) read the same values.
"""

IMAGE_TOKEN = "<image>"  # the prompt's image marker, expanded to V placeholder tokens

# Compressor methods, in the order they are listed to users, and the V each supports.
REGION_COMPRESSORS = ("avgpool", "tokenpacker", "quecc")  # one token per s x s region of the patch grid
COMPRESSOR_METHODS = (*REGION_COMPRESSORS, "prumerge", "mqt")
LLAVA_PROJECTOR_METHOD = "mlp"  # llava-hf checkpoints: the MLP projector, every patch token kept
OTHER_METHOD = "other"  # published rows whose method Frontier does not implement
# The compressor vocabulary every part shares (the registry's CompressorMethod choices, pages, the API).
METHOD_LABELS = {
    "avgpool": "average pooling", "tokenpacker": "TokenPacker", "quecc": "QueCC", "prumerge": "PruMerge",
    "mqt": "Matryoshka Query Transformer", LLAVA_PROJECTOR_METHOD: "MLP projector (no compression)",
    OTHER_METHOD: "other",
}
MQT_DEFAULT_MAX_QUERIES = 256
MULTI_LEVEL_LAYERS_VIT_L = [12, 16, 22, 23]  # the CLIP ViT-L layers TokenPacker and QueCC read keys from
# Compressor layouts (config.json's ``compressor_layout``; absent = 1). Layout 2 follows the reference code
# (TokenPacker: CircleRadon/TokenPacker; QueCC: locuslab/llava-token-compression): separate key and value MLPs
# over the multi-level features and LayerNorm eps 1e-6. Layout 1 is TokenPacker's one shared key/value MLP
# (eps 1e-5) that Frontier trained until 2026-12; QueCC is the same in both (its layout-1 weights load as they are).
COMPRESSOR_LAYOUT = 2
COMPRESSOR_LAYOUTS = (1, 2)
# The modules that read the multi-level features, by method and layout.
KEY_VALUE_PROJECTIONS = {"tokenpacker": ("key_proj", "value_proj"), "quecc": ("key_proj", "value_proj")}
LEGACY_KEY_VALUE_PROJECTIONS = {"tokenpacker": ("key_value_proj",), "quecc": ("key_proj", "value_proj")}
LEGACY_QUECC_KEY_VALUE = "compressor.key_value_proj.0.weight"  # QueCC's one shared key/value MLP until 2026-12

# The tiny random-init model of tests and demos (``evaluation.tiny``): a small CLIP-shaped encoder.
# One 32-wide attention head (real ViTs' heads are 64 wide): on 577 tokens the CPU attention kernel
# runs four 8-wide heads 4x slower than one 32-wide head (1.63 s vs 0.41 s per 64 images, one thread).
TINY_IMAGE_SIZE = 96
TINY_PATCH_SIZE = 4
TINY_VISION = {
    "model_type": "clip_vision_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 5,
    "num_attention_heads": 1,
    "image_size": TINY_IMAGE_SIZE,
    "patch_size": TINY_PATCH_SIZE,
}
# Same relative depths as ViT-L's [12, 16, 22, 23] (the last one is layer -2).
TINY_MULTI_LEVEL_LAYERS = [1, 2, 3, 4]
LLM_FAMILIES = ("qwen2", "llama")
# LLaVA's named conversations a checkpoint may train and evaluate with (evaluation.prompts renders them).
CONVERSATIONS = ("v1", "qwen_1_5", "plain")
IMAGE_ASPECT_RATIOS = ("crop", "pad")  # crop: CLIP resize + centre crop; pad: to a square in the mean colour first


def key_value_projections(method: str, layout: int) -> tuple[str, ...]:
    """The compressor's modules that read the multi-level features, in a checkpoint of this layout."""
    check_layout(layout)
    return (KEY_VALUE_PROJECTIONS if layout >= 2 else LEGACY_KEY_VALUE_PROJECTIONS).get(method, ())


def check_layout(layout) -> None:
    if layout not in COMPRESSOR_LAYOUTS:
        raise ValueError(
            f"compressor_layout must be one of {', '.join(map(str, COMPRESSOR_LAYOUTS))}, got {layout!r}"
        )


def square_region_token_counts(grid_side: int) -> tuple[int, ...]:
    """V values whose tokens each cover an s x s region tiling the g x g grid: (g / s)^2 for s | g."""
    return tuple(sorted((grid_side // side) ** 2 for side in range(1, grid_side + 1) if grid_side % side == 0))


def check_method(method: str) -> None:
    if method not in COMPRESSOR_METHODS:
        raise ValueError(f"unknown compressor method {method!r}; known: {', '.join(COMPRESSOR_METHODS)}")


def allowed_tokens(
    method: str, grid_side: int, max_queries: int = MQT_DEFAULT_MAX_QUERIES, **other_params
) -> tuple[int, ...]:
    """The V a method supports on a g x g patch grid. Region methods (avgpool, TokenPacker, QueCC)
    make one token per square region; PruMerge keeps up to every patch; MQT uses the first V of its
    ``max_queries`` queries. The other method parameters (num_heads, ...) do not change V."""
    check_method(method)
    if method == "prumerge":
        return tuple(range(1, grid_side**2 + 1))
    if method == "mqt":
        return tuple(range(1, max_queries + 1))
    return square_region_token_counts(grid_side)


def describe_allowed(values: tuple[int, ...]) -> str:
    is_range = len(values) > 2 and values == tuple(range(values[0], values[-1] + 1))
    return f"{values[0]}..{values[-1]}" if is_range else ", ".join(map(str, values))


def check_tokens(method: str, tokens: int, grid_side: int, **params) -> None:
    """Raise a ValueError naming the method, V and the allowed values when V is unsupported."""
    allowed = allowed_tokens(method, grid_side, **params)
    if tokens not in allowed:
        raise ValueError(
            f"compressor {method!r} does not support V={tokens} visual tokens on a {grid_side}x{grid_side} "
            f"patch grid; allowed values: {describe_allowed(allowed)}"
        )
