"""The N convention, torch-free (fitting.published): which points a fit on counted or nominal N takes, and which it
leaves out; sizes read from model names; the paper comparison on the paper's nominal N, as published. (The counted
sizes themselves are checked against transformers in tests/evaluation/test_counted_params.py.)"""
import numpy as np
import pandas as pd
import pytest

from fitting import paper_comparison, paper_frame
from fitting.published import (
    KNOWN_MODELS,
    convention_stamp,
    counted_params,
    n_for_convention,
    nominal_from_name,
    nominal_params,
)

POINTS = pd.DataFrame({
    "checkpoint": [1, 2, 3, 4],
    "llm_params_b": [0.463987712, 1.836828672, 3.0, 0.0012],
    "visual_tokens": [4, 4, 4, 16],
    "error": [0.6, 0.55, 0.5, 0.8],
    "n_counted": [True, True, False, True],
    "n_nominal_b": [0.5, 1.8, 3.0, np.nan],
})


def test_a_counted_fit_keeps_counted_rows_and_names_the_others():
    kept, left_out = n_for_convention(POINTS, "counted")
    assert kept["checkpoint"].tolist() == [1, 2, 4] and left_out == [3]
    assert kept["llm_params_b"].tolist() == [0.463987712, 1.836828672, 0.0012]


def test_a_nominal_fit_takes_the_nominal_sizes_and_leaves_out_rows_without_one():
    kept, left_out = n_for_convention(POINTS, "nominal")
    assert kept["checkpoint"].tolist() == [1, 2, 3] and left_out == [4]
    assert kept["llm_params_b"].tolist() == [0.5, 1.8, 3.0]


def test_the_stamp_says_the_convention_and_what_was_left_out():
    assert convention_stamp("counted", [9, 3]) == {
        "n_convention": "counted", "n_meaning": "parameters counted from the weights (tied embeddings once)",
        "n_left_out": 2, "n_left_out_checkpoints": [3, 9]}
    with pytest.raises(ValueError, match="unknown N convention 'mixed'"):
        n_for_convention(POINTS, "mixed")


@pytest.mark.parametrize("name, size", [
    ("Qwen/Qwen1.5-0.5B-Chat", 500_000_000), ("liuhaotian/llava-v1.5-7b", 7_000_000_000),
    ("facebook/opt-125m", 125_000_000), ("Qwen1.5-1.8B", 1_800_000_000), ("gpt2", None), ("tiny-1000000", None),
])
def test_the_nominal_size_is_read_from_the_name_where_it_has_one(name, size):
    assert nominal_from_name(name) == size


def test_every_size_of_the_paper_s_table_is_known_counted():
    sizes = {(row.llm_family, nominal_params(row.llm_params_b)) for row in paper_frame().itertuples()}
    assert sizes == set(KNOWN_MODELS)
    assert counted_params("qwen1.5-chat", 500_000_000) == 463_987_712
    assert counted_params("qwen1.5-chat", 3_000_000_000) is None and counted_params("llama", 500_000_000) is None


def test_the_paper_comparison_is_on_the_paper_s_nominal_n_and_keeps_its_numbers():
    rows = {row["quantity"]: row for row in paper_comparison(n_resamples=1000, seed=0)}
    assert {row["n_convention"] for row in rows.values()} == {"nominal"}
    alpha = rows["alpha"]
    assert alpha["refit"] == pytest.approx(0.0709, abs=5e-5) and not alpha["inside"]
    assert alpha["interval"] == pytest.approx([0.0685, 0.0733], abs=5e-5)
    assert rows["beta"]["refit"] == pytest.approx(0.0151, abs=5e-5) and rows["beta"]["inside"]
    assert rows["V*(Q=50)"]["refit"] == pytest.approx(13.5, abs=0.05)
