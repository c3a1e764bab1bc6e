"""FLOPs formula v1 (the paper's) and v2 (plus QueCC's query pass), by hand-computed numbers."""

import numpy as np
import pandas as pd
import pytest

import fitting
from fitting.flops import (
    COMPRESSOR_FLOPS_NOTE,
    DEFAULT_FLOPS_FORMULA,
    FLOPS_FORMULA_VERSIONS,
    check_version,
    depends_on_method,
    effective_query_tokens,
    formula_text,
    inference_flops,
    method_formulas,
    with_flops,
)

OTHER_METHODS = ("avgpool", "tokenpacker", "prumerge", "mqt", "mlp", "other", None)


def test_the_versions_and_the_default_are_pinned():
    assert FLOPS_FORMULA_VERSIONS == ("v1", "v2")
    assert DEFAULT_FLOPS_FORMULA == fitting.FLOPS_FORMULA_VERSION == "v1"  # reads: existing numbers unchanged
    assert fitting.LATEST_FLOPS_FORMULA == "v2"
    assert not depends_on_method("v1") and depends_on_method("v2")


def test_v1_is_the_papers_formula_whatever_the_method():
    # N = 0.5e9, V = 4, Q = 50, G = 0: 2 · 0.5e9 · 54 = 5.4e10.
    for method in ("quecc", *OTHER_METHODS):
        assert inference_flops(0.5, 4, 50, 0, method=method, version="v1") == 5.4e10
    assert inference_flops(0.5, 4, 50, 0) == 5.4e10  # no version: v1
    assert inference_flops(0.5, 4, 50, 10, vision_encoder_flops=1e9) == 2 * 0.5e9 * 64 + 1e9


def test_v2_adds_quecc_query_pass_and_nothing_for_the_other_methods():
    assert inference_flops(0.5, 4, 50, 0, method="quecc", version="v2") == 5.4e10 + 5e10 == 1.04e11
    for method in OTHER_METHODS:
        assert inference_flops(0.5, 4, 50, 0, method=method, version="v2") == 5.4e10
    # With G and the vision encoder: the extra is 2·N·Q only.
    with_pass = inference_flops(2.0, 16, 30, 5, 7e9, method="quecc", version="v2")
    assert with_pass == 2 * 2e9 * (30 + 16 + 5) + 7e9 + 2 * 2e9 * 30


def test_a_cached_query_has_no_query_pass():
    assert inference_flops(0.5, 4, 0, 0, method="quecc", version="v2") == inference_flops(0.5, 4, 0, 0) == 4e9


def test_methods_per_configuration_as_arrays_or_series():
    methods = ["quecc", "avgpool", None, "quecc"]
    n, v = np.array([0.5, 0.5, 0.5, 1.0]), np.array([4, 4, 4, 1])
    expected = [1.04e11, 5.4e10, 5.4e10, 2 * 1e9 * 51 + 2 * 1e9 * 50]
    assert inference_flops(n, v, 50, method=np.array(methods, dtype=object), version="v2").tolist() == expected
    assert inference_flops(pd.Series(n), pd.Series(v), 50, method=pd.Series(methods), version="v2").tolist() == expected
    assert inference_flops(n, v, 50, method=methods, version="v1").tolist() == [5.4e10] * 3 + [2 * 1e9 * 51]


@pytest.mark.parametrize("version", ["v3", "V2", "", "2"])
def test_an_unknown_version_is_refused_naming_the_known_ones(version):
    with pytest.raises(ValueError, match="known versions: v1, v2"):
        inference_flops(0.5, 4, 50, method="quecc", version=version)
    with pytest.raises(ValueError, match="known versions: v1, v2"):
        check_version(version)


def test_with_flops_reads_the_compressor_column_under_v2_and_stamps_the_version():
    frame = pd.DataFrame({"llm_params_b": [0.5, 0.5], "visual_tokens": [4, 4], "compressor": ["quecc/1", "avgpool/1"]})
    v1, v2 = with_flops(frame, query_tokens=50), with_flops(frame, query_tokens=50, version="v2")
    assert v1["flops"].tolist() == [5.4e10, 5.4e10] and set(v1["flops_formula_version"]) == {"v1"}
    assert v2["flops"].tolist() == [1.04e11, 5.4e10] and set(v2["flops_formula_version"]) == {"v2"}
    assert with_flops(frame.drop(columns="compressor"), 50, version="v2")["flops"].tolist() == [5.4e10, 5.4e10]


def test_effective_query_tokens_turn_v2_into_v1_at_twice_q():
    """What the allocation and V*(Q) use: QueCC under v2 costs what v1 does with the query read twice."""
    assert float(effective_query_tokens(50, "quecc", "v2")) == 100.0
    assert float(effective_query_tokens(50, "quecc", "v1")) == float(effective_query_tokens(50, "avgpool", "v2")) == 50
    assert inference_flops(0.5, 4, 100, 0) == inference_flops(0.5, 4, 50, 0, method="quecc", version="v2")
    space = fitting.SearchSpace(query_tokens=float(effective_query_tokens(50, "quecc", "v2")), n_range_b=(0.5, 8))
    allocation = fitting.optimal_allocation("multiplicative", {"A": 1.0, "alpha": 0.08, "beta": 0.02, "D": 0.1},
                                            1e12, space)
    assert allocation.flops == pytest.approx(inference_flops(allocation.n_params_b, allocation.visual_tokens, 50,
                                                             method="quecc", version="v2"))
    assert allocation.flops <= 1e12 * (1 + 1e-9)


def test_each_methods_formula_is_stated_under_both_versions():
    rows = {row["method"]: row for row in method_formulas(["avgpool", "quecc", "mlp"])}
    assert rows["quecc"] == {"method": "quecc", "v1": "2·N·(Q + V + G)", "v2": "2·N·(Q + V + G) + 2·N·Q"}
    assert rows["avgpool"]["v1"] == rows["avgpool"]["v2"] == rows["mlp"]["v2"] == "2·N·(Q + V + G)"
    assert formula_text("v1").startswith("v1: the paper's") and "QueCC" in formula_text("v2")
    assert "compressor's own FLOPs" in COMPRESSOR_FLOPS_NOTE
