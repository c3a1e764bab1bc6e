"""Every bad input gets a FitInputError whose message names the problem and the rows."""
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
    (frame_with(1, "visual_tokens", 1), r"duplicate \(llm_params_b, visual_tokens\) pairs: rows \[0, 1\]"),
    (paper_frame().drop(columns="avg_score"), r"missing column\(s\) avg_score"),
])
def test_bad_values_are_named_with_their_rows(frame, message):
    with pytest.raises(FitInputError, match=message):
        fit(frame)


def test_fewer_points_than_parameters():
    with pytest.raises(FitInputError, match=r"3 points for the 4 parameters \(A, alpha, beta, D\) of the multiplicative law"):
        fit(paper_frame().iloc[[0, 1, 7]])


def test_a_single_size_cannot_identify_alpha():
    with pytest.raises(FitInputError, match="every point has the same llm_params_b = 4: the exponent alpha cannot be identified"):
        fit(paper_frame().query("llm_params_b == 4"))


def test_a_single_token_count_cannot_identify_beta():
    with pytest.raises(FitInputError, match="every point has the same visual_tokens = 16: the exponent beta cannot be identified"):
        fit(paper_frame().query("visual_tokens == 16"))


def test_log_loss_needs_positive_errors():
    frame = frame_with(27, "avg_score", 1.0)
    with pytest.raises(FitInputError, match="huber_log needs every error > 0"):
        fit(frame, loss="huber_log")


def test_an_error_column_is_accepted_instead_of_scores():
    frame = paper_frame()
    as_errors = pd.DataFrame({"llm_params_b": frame["llm_params_b"], "visual_tokens": frame["visual_tokens"],
                              "error": 1 - frame["avg_score"]})
    assert fit(as_errors).sse == pytest.approx(fit(frame).sse)
