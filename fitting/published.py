"""The two meanings of N, and the one convention of Frontier's fits.

N is an LLM's parameter count. It has two meanings: the parameters *counted* from the weights (what an upload's
validation reports; tied input and output embeddings count once) and the *nominal* size in the model's name (what
papers publish: 0.5, 1.8, 4, 7 B for Qwen1.5, whose "0.5 B" counts 0.46 B). Frontier's fits use counted N
("counted", the default); a row whose N is only nominal is left out of such a fit, and the fit says which. A fit on
nominal N ("nominal") takes the nominal size of every row that has one and leaves out the others.

Published tables give nominal sizes; for the families below the counted size is known from the public configs
(``KNOWN_MODELS``), so their published rows carry both. No torch here: ``qwen2_parameter_count`` counts from the
config in closed form, and tests/fitting/test_fitting_published.py checks it against transformers' Qwen2ForCausalLM
built on the meta device.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

COUNTED = "counted"
NOMINAL = "nominal"
DEFAULT_N_CONVENTION = COUNTED
N_CONVENTIONS = {
    COUNTED: "parameters counted from the weights (tied embeddings once)",
    NOMINAL: "the nominal size in the model's name (e.g. 0.5 B for Qwen1.5-0.5B), as papers publish it",
}
# What a fit stores in its method: at most this many left-out checkpoints by id (the count is always there).
LEFT_OUT_IDS_MAX = 100

# Public configs (Hugging Face hub, Qwen/Qwen1.5-*-Chat config.json) of the paper's LLM family, by nominal size in
# parameters, with the parameters they count (tied embeddings once; Qwen2 layers have q/k/v biases).
QWEN15_CONFIGS = {
    500_000_000: {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 24,
                  "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 151936,
                  "tie_word_embeddings": True},
    1_800_000_000: {"hidden_size": 2048, "intermediate_size": 5504, "num_hidden_layers": 24,
                    "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 151936,
                    "tie_word_embeddings": False},
    4_000_000_000: {"hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 40,
                    "num_attention_heads": 20, "num_key_value_heads": 20, "vocab_size": 151936,
                    "tie_word_embeddings": False},
    7_000_000_000: {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 151936,
                    "tie_word_embeddings": False},
}
# (family, nominal parameters) -> parameters counted from the weights.
KNOWN_MODELS = {
    ("qwen1.5-chat", 500_000_000): 463_987_712,
    ("qwen1.5-chat", 1_800_000_000): 1_836_828_672,
    ("qwen1.5-chat", 4_000_000_000): 3_950_369_280,
    ("qwen1.5-chat", 7_000_000_000): 7_721_324_544,
}
FAMILY_CONFIGS = {"qwen1.5-chat": QWEN15_CONFIGS}


def qwen2_parameter_count(config: dict) -> int:
    """Parameters of a Qwen2ForCausalLM with this config, tied embeddings counted once."""
    hidden, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    head_dim = hidden // config["num_attention_heads"]
    kv = config.get("num_key_value_heads", config["num_attention_heads"]) * head_dim
    attention = (hidden * hidden + hidden) + 2 * (hidden * kv + kv) + hidden * hidden  # q, k, v with biases; o
    per_layer = attention + 3 * hidden * config["intermediate_size"] + 2 * hidden  # gate/up/down, two RMSNorms
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return embeddings + layers * per_layer + hidden  # the final norm


def nominal_params(n_params_b: float) -> int:
    """A published size in billions as parameters (0.5 -> 500,000,000)."""
    return round(float(n_params_b) * 1e9)


def counted_params(family: str, nominal: int) -> int | None:
    """The counted parameters of a (family, nominal size) Frontier knows, else None."""
    return KNOWN_MODELS.get((str(family).lower(), int(nominal)))


_SIZE_IN_NAME = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z0-9])", re.IGNORECASE)


def nominal_from_name(name: str) -> int | None:
    """The size in a model's name ("Qwen/Qwen1.5-0.5B-Chat" -> 500,000,000; "…-125m" -> 125,000,000), else None.
    The last size token wins ("Qwen1.5" is a version, not a size: it has no unit)."""
    matches = _SIZE_IN_NAME.findall(str(name).rsplit("/", 1)[-1])
    if not matches:
        return None
    number, unit = matches[-1]
    return round(float(number) * (1e9 if unit.lower() == "b" else 1e6))


def check_convention(convention: str | None) -> str:
    convention = DEFAULT_N_CONVENTION if convention is None else convention
    if convention not in N_CONVENTIONS:
        raise ValueError(f"unknown N convention {convention!r}; known: {', '.join(N_CONVENTIONS)}")
    return convention


def n_for_convention(points: pd.DataFrame, convention: str | None = None) -> tuple[pd.DataFrame, list[int]]:
    """The points a fit under `convention` uses, and the checkpoints it leaves out.

    `points` has llm_params_b (the stored N, billions), n_counted (whether that N was counted from the weights)
    and n_nominal_b (the nominal size, NaN where unknown). "counted" keeps the counted rows as they are;
    "nominal" sets llm_params_b to the nominal size and keeps the rows that have one. Never a silent mix."""
    convention = check_convention(convention)
    if convention == COUNTED:
        kept = points["n_counted"].to_numpy(bool)
        chosen = points
    else:
        nominal = pd.to_numeric(points["n_nominal_b"], errors="coerce").to_numpy(float)
        kept = np.isfinite(nominal)
        chosen = points.assign(llm_params_b=nominal)
    left_out = points.loc[~kept, "checkpoint"].astype(np.int64).tolist() if "checkpoint" in points else []
    return chosen.loc[kept].reset_index(drop=True), left_out


def convention_stamp(convention: str | None, left_out: list[int]) -> dict:
    """What a fit records of its N: the convention, its meaning, and the rows it left out (count, first ids)."""
    convention = check_convention(convention)
    return {"n_convention": convention, "n_meaning": N_CONVENTIONS[convention], "n_left_out": len(left_out),
            "n_left_out_checkpoints": sorted(left_out)[:LEFT_OUT_IDS_MAX]}
