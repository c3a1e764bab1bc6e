"""Inference cost, under a versioned formula (the formula's one home).

Formula v1 (the paper's): FLOPs = 2 · N · (Q + V + G) [+ constant vision-encoder FLOPs], whatever the compressor.
Formula v2: v1 plus what each method adds to the LLM's work. QueCC runs the LLM over the text query first (its
last hidden state steers the compression): a text-only pass over the Q query tokens, 2 · N · Q more. With a cached
query (Q = 0) that pass is cached too, and the extra vanishes. Every other method (avgpool, TokenPacker, PruMerge,
MQT, the MLP projector, other) adds nothing to the LLM's work, so v2 = v1 for them.

Neither version counts the compressor's own FLOPs: they do not grow with N, and they are small beside the LLM's
(as the vision encoder's, they are constant per configuration).

N is the LLM's parameter count (the tables give it in billions: N = llm_params_b · 1e9),
Q text-query tokens (0 = cached query, 50 = the paper's uncached case), V visual tokens,
G generated tokens.  The vision encoder's cost is the same for every configuration, so it
is off by default; pass `vision_encoder_flops` to include it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# The paper's formula: what reads use unless asked otherwise (existing URLs, caches and numbers stay as they were).
FLOPS_FORMULA_VERSION = "v1"
DEFAULT_FLOPS_FORMULA = FLOPS_FORMULA_VERSION
# The newest formula: what an evaluation stamps on its results (they store N, V and the method, not FLOPs).
LATEST_FLOPS_FORMULA = "v2"
FLOPS_FORMULA_VERSIONS = ("v1", "v2")
PARAMETERS_PER_BILLION = 1e9

# Per version, the methods that run the LLM over the query before the compressor (each adds 2 · N · Q).
QUERY_PASS_METHODS = {"v1": frozenset(), "v2": frozenset({"quecc"})}
BASE_FORMULA = "2·N·(Q + V + G)"
QUERY_PASS_FORMULA = "2·N·(Q + V + G) + 2·N·Q"
# What the versions say, for pages and API answers.
FLOPS_FORMULAS = {
    "v1": "the paper's: 2·N·(Q + V + G) for every compressor",
    "v2": ("v1 plus what the method adds to the LLM's work: QueCC's text-only query pass, 2·N·Q more "
           "(none when the query is cached, Q = 0); other methods add nothing"),
}
COMPRESSOR_FLOPS_NOTE = ("the compressor's own FLOPs are counted in neither version: they do not grow with N "
                         "and are small beside the LLM's")


def check_version(version: str | None) -> str:
    """The version (None: the default), or a ValueError naming the known versions."""
    version = DEFAULT_FLOPS_FORMULA if version is None else version
    if version not in FLOPS_FORMULA_VERSIONS:
        raise ValueError(f"unknown FLOPs formula {version!r}; known versions: {', '.join(FLOPS_FORMULA_VERSIONS)}")
    return version


def depends_on_method(version: str | None) -> bool:
    """Whether the version's FLOPs depend on the compressor method (not only on N, V, Q, G)."""
    return bool(QUERY_PASS_METHODS[check_version(version)])


def formula_text(version: str | None, method: str | None = None) -> str:
    """The formula of a method under a version (without a method: the version's summary)."""
    version = check_version(version)
    if method is None:
        return f"{version}: {FLOPS_FORMULAS[version]}"
    return QUERY_PASS_FORMULA if method in QUERY_PASS_METHODS[version] else BASE_FORMULA


def method_formulas(methods) -> list[dict]:
    """Each method's formula under every version: [{"method", "v1", "v2", ...}] (what the compressors page shows)."""
    return [{"method": method, **{version: formula_text(version, method) for version in FLOPS_FORMULA_VERSIONS}}
            for method in methods]


def query_passes(methods, version: str | None = None):
    """1.0 where the method runs the LLM over the query first under `version`, else 0.0 (scalar or array)."""
    passes = QUERY_PASS_METHODS[check_version(version)]
    if methods is None or not passes:
        return 0.0
    if isinstance(methods, str):
        return float(methods in passes)
    return np.isin(np.asarray(pd.Series(methods, dtype=object).fillna("").to_numpy(), dtype=object),
                   list(passes)).astype(float)


def effective_query_tokens(query_tokens, method: str | None, version: str | None = None):
    """The Q the LLM reads for one method: Q, or 2·Q where it also runs the query pass (same FLOPs)."""
    return np.asarray(query_tokens, dtype=float) * (1.0 + query_passes(method, version))


def inference_flops(n_params_b, visual_tokens, query_tokens=0.0, generated_tokens=0.0, vision_encoder_flops=0.0,
                    method=None, version: str | None = None):
    """FLOPs per sample under `version` (default v1). `method`: the compressor method (a name, or one per
    configuration); only v2 reads it, and a configuration without one adds nothing."""
    n_parameters = np.asarray(n_params_b, dtype=float) * PARAMETERS_PER_BILLION
    tokens = query_tokens + np.asarray(visual_tokens, dtype=float) + generated_tokens
    flops = 2.0 * n_parameters * tokens + vision_encoder_flops
    extra = query_passes(method, version)
    if np.any(extra):
        flops = flops + 2.0 * n_parameters * np.asarray(query_tokens, dtype=float) * extra
    return flops


def with_flops(frame: pd.DataFrame, query_tokens=0.0, generated_tokens=0.0, vision_encoder_flops=0.0,
               version: str | None = None) -> pd.DataFrame:
    """Copy of `frame` (llm_params_b, visual_tokens; under v2 also `compressor`, method or method/version) with
    `flops`, `query_tokens` and the formula version."""
    version = check_version(version)
    methods = None
    if "compressor" in frame.columns:
        methods = frame["compressor"].astype(object).map(lambda name: name.split("/")[0] if isinstance(name, str)
                                                         else None)
    return frame.assign(
        flops=inference_flops(frame["llm_params_b"], frame["visual_tokens"], query_tokens, generated_tokens,
                              vision_encoder_flops, methods, version),
        query_tokens=query_tokens,
        flops_formula_version=version,
    )
