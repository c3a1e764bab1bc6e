"""Inference FLOPs of a VLM: formula v1, the paper's, FLOPs = 2 * N * (Q + V + G); formula v2 adds what the
compressor adds to the LLM's work (QueCC's text-only query pass, 2 * N * Q). See ``fitting.flops``.

N counts every parameter of the LLM, embeddings and LM head included (tied weights once): the
paper names models by their full size (Qwen1.5-0.5B -> 0.5B), so N must be that number, counted
from the weights rather than typed in. The compressor's own parameters are not part of N, and the
vision encoder's cost is constant across the grid: it is left out unless passed explicitly.
"""

from torch import nn

from fitting.flops import (  # noqa: F401  (the formula's one home)
    FLOPS_FORMULA_VERSION,
    LATEST_FLOPS_FORMULA,
    PARAMETERS_PER_BILLION,
)
from fitting.flops import inference_flops as flops_formula


def count_parameters(module: nn.Module) -> int:
    """Number of distinct parameters of a module (tied/shared tensors counted once)."""
    return sum(parameter.numel() for parameter in module.parameters())


def inference_flops(
    llm_params: int, visual_tokens: int, query_tokens: int, generated_tokens: int, vision_encoder_flops: float = 0.0,
    compressor_method: str | None = None, version: str = FLOPS_FORMULA_VERSION,
) -> float:
    """FLOPs of one sample: 2 * N * (Q + V + G) (+ the vision encoder's FLOPs when given); under ``version`` v2
    a QueCC compressor adds its query pass, 2 * N * Q.

    Q is the number of text-query tokens (0 when the query is cached), V the visual tokens and
    G the generated tokens.
    """
    for name, value in (
        ("llm_params", llm_params),
        ("visual_tokens", visual_tokens),
        ("query_tokens", query_tokens),
        ("generated_tokens", generated_tokens),
        ("vision_encoder_flops", vision_encoder_flops),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    return float(flops_formula(
        llm_params / PARAMETERS_PER_BILLION, visual_tokens, query_tokens, generated_tokens, vision_encoder_flops,
        compressor_method, version,
    ))
