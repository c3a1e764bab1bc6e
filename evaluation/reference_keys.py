"""The reference implementations' tensor names and Frontier's, for converting their checkpoints.

A checkpoint trained with the paper's code (locuslab/llava-token-compression) keeps QueCC at index 0
of LLaVA's ``mlp2x_gelu`` projector, under ``model.mm_projector.``; TokenPacker's code
(CircleRadon/TokenPacker) replaces the projector with its module; LLaVA-1.5 without compression has
the bare ``mlp2x_gelu`` projector, which is Frontier's average pooling at V = 576 (a 1 x 1 region).
Frontier's compressors in layout 2 (``evaluation.vlm_spec.COMPRESSOR_LAYOUT``) have the same tensors
under the names below, so a conversion only renames. No torch here.
"""

from collections.abc import Mapping
from typing import TypeVar

LLAVA_PROJECTOR_PREFIX = "model.mm_projector."
FRONTIER_PREFIX = "compressor."

# method -> (reference name prefix, Frontier name prefix), both relative to their module.
REFERENCE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "quecc": (
        ("0.text_projection.", "text_proj."),  # Linear(text width -> C), LayerNorm
        ("0.q_proj.", "query_proj."),  # Linear, GELU, Linear, LayerNorm
        ("0.k_proj.", "key_proj."),  # Linear(4C -> C), GELU, Linear, LayerNorm
        ("0.v_proj.", "value_proj."),
        ("0.q_downsample.", "downsample."),  # depth-wise Conv2d(kernel = stride = region side)
        ("0.clip_attn.", "local_attention.attention."),  # nn.MultiheadAttention(C, 8 heads)
        ("1.", "projector.0."),  # mlp2x_gelu after QueCC: Linear(C -> D), GELU, Linear(D -> D)
        ("3.", "projector.2."),
    ),
    "tokenpacker": (
        ("q_proj_1.", "query_proj.0."),  # Linear(C -> C, no bias), then ln_q_1
        ("ln_q_1.", "query_proj.1."),
        ("k_proj_1.", "key_proj."),  # Linear(4C -> C), GELU, Linear at 0 and 2, then ln_k_1
        ("ln_k_1.", "key_proj.3."),
        ("v_proj_1.", "value_proj."),
        ("ln_v_1.", "value_proj.3."),
        ("clip_attn.", "local_attention.attention."),
        ("mlp.", "projector."),  # Linear(C -> D), GELU, Linear(D -> D)
    ),
    "avgpool": (("0.", "projector.0."), ("2.", "projector.2.")),  # LLaVA-1.5's mlp2x_gelu, every patch kept
}

Tensor = TypeVar("Tensor")


def frontier_name(method: str, reference_name: str) -> str | None:
    """Frontier's full name (``compressor.…``) of a tensor named relative to the reference module, or None."""
    if method not in REFERENCE_KEYS:
        raise ValueError(f"no reference layout for {method!r}; known: {', '.join(REFERENCE_KEYS)}")
    matches = [(old, new) for old, new in REFERENCE_KEYS[method] if reference_name.startswith(old)]
    if not matches:
        return None
    old, new = max(matches, key=lambda pair: len(pair[0]))
    return FRONTIER_PREFIX + new + reference_name[len(old) :]


def from_reference_keys(
    method: str, tensors: Mapping[str, Tensor], prefix: str = LLAVA_PROJECTOR_PREFIX
) -> dict[str, Tensor]:
    """The tensors under ``prefix`` renamed to Frontier's; a name no rule covers is an error that names it."""
    renamed, unknown = {}, []
    for name, tensor in tensors.items():
        if not name.startswith(prefix):
            continue
        target = frontier_name(method, name[len(prefix) :])
        if target is None:
            unknown.append(name)
        else:
            renamed[target] = tensor
    if unknown:
        raise ValueError(
            f"{len(unknown)} tensors under {prefix} are not part of the reference {method} layout "
            f"({', '.join(sorted(unknown)[:5])}); is mm_vision_token_compression_type right?"
        )
    if not renamed:
        raise ValueError(f"no tensors under {prefix}: the checkpoint has no projector weights")
    return renamed
