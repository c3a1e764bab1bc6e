"""Inference cost.  Formula v1: FLOPs = 2 · N · (Q + V + G) [+ constant vision-encoder FLOPs].

N is the LLM's parameter count (the tables give it in billions: N = llm_params_b · 1e9),
Q text-query tokens (0 = cached query, 50 = the paper's uncached case), V visual tokens,
G generated tokens.  The vision encoder's cost is the same for every configuration, so it
is off by default; pass `vision_encoder_flops` to include it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

FLOPS_FORMULA_VERSION = "v1"
PARAMETERS_PER_BILLION = 1e9


def inference_flops(n_params_b, visual_tokens, query_tokens=0.0, generated_tokens=0.0, vision_encoder_flops=0.0):
    n_parameters = np.asarray(n_params_b, dtype=float) * PARAMETERS_PER_BILLION
    tokens = query_tokens + np.asarray(visual_tokens, dtype=float) + generated_tokens
    return 2.0 * n_parameters * tokens + vision_encoder_flops


def with_flops(frame: pd.DataFrame, query_tokens=0.0, generated_tokens=0.0, vision_encoder_flops=0.0) -> pd.DataFrame:
    """Copy of `frame` (llm_params_b, visual_tokens) with `flops`, `query_tokens` and the formula version."""
    return frame.assign(
        flops=inference_flops(frame["llm_params_b"], frame["visual_tokens"], query_tokens, generated_tokens,
                              vision_encoder_flops),
        query_tokens=query_tokens,
        flops_formula_version=FLOPS_FORMULA_VERSION,
    )
