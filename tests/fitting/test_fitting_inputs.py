"""Every bad input gets a FitInputError whose message names the problem and the rows (the degenerate
but valid inputs are in test_fitting_degenerate.py)."""
import numpy as np
import pandas as pd
import pytest

from fitting import FitInputError, fit, paper_frame


def frame_with(row, column, value):
    frame = paper_frame()
    frame[column] = frame[column].astype(float)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("frame, message", [
    (frame_with(3, "llm_params_b", 0.0), r"llm_params_b must be > 0: rows \[3\] have 0"),
    (frame_with(5, "visual_tokens", -4), r"visual_tokens must be > 0: rows \[5\] have -4"),
    (frame_with(2, "avg_score", 43.2), r"avg_score must lie in \[0, 1\] \(percent scores must be divided by 100\): rows \[2\]"),
    (frame_with(7, "avg_score", np.nan), r"missing or non-numeric values \(NaN\) in avg_score: rows \[7\]"),
    (paper_frame().drop(columns="avg_score"), r"missing column\(s\) avg_score"),
])
def test_bad_values_are_named_with_their_rows(frame, message):
    with pytest.raises(FitInputError, match=message):
        fit(frame)


def test_fewer_points_than_parameters():
    with pytest.raises(FitInputError, match=r"3 checkpoints cover 3 distinct \(N, V\) configurations, fewer than the 4 "
                                            r"parameters \(A, alpha, beta, D\) of the multiplicative law"):
        fit(paper_frame().iloc[[0, 1, 7]])


def test_a_single_size_cannot_identify_alpha():
    with pytest.raises(FitInputError, match=r"every checkpoint has the same LLM size \(N = 4 B\).*its exponent alpha is not identified"):
        fit(paper_frame().query("llm_params_b == 4"))


def test_a_single_token_count_cannot_identify_beta():
    with pytest.raises(FitInputError, match=r"every checkpoint has the same number of visual tokens \(V = 16\).*its exponent beta is not identified"):
        fit(paper_frame().query("visual_tokens == 16"))


def test_log_loss_needs_positive_errors():
    frame = frame_with(27, "avg_score", 1.0)
    with pytest.raises(FitInputError, match="the huber_log loss needs every error > 0"):
        fit(frame, loss="huber_log")


def test_an_error_column_is_accepted_instead_of_scores():
    frame = paper_frame()
    as_errors = pd.DataFrame({"llm_params_b": frame["llm_params_b"], "visual_tokens": frame["visual_tokens"],
                              "error": 1 - frame["avg_score"]})
    assert fit(as_errors).sse == pytest.approx(fit(frame).sse)


def test_a_repeated_configuration_is_kept_not_refused():
    frame = frame_with(1, "visual_tokens", 1)  # rows 0 and 1 are now both (0.5, 1)
    result = fit(frame)
    assert len(result.points) == 28 and result.method["configurations"] == 27
