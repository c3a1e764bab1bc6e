"""Plotly figure builders."""
import plotly.graph_objects as go

from fitting import SearchSpace, bootstrap, fit, paper_frame
from fitting.figures import error_vs_flops_figure, exponents_figure, residuals_figure


def test_error_vs_flops_figure_has_points_fits_frontier_and_optimum():
    frame = paper_frame().assign(label=lambda f: "qwen " + f["llm_params_b"].astype(str) + "B/" + f["visual_tokens"].astype(str))
    result = fit(frame)
    figure = error_vs_flops_figure(frame, result, SearchSpace(query_tokens=50, n_range_b=(0.5, 7)))
    assert isinstance(figure, go.Figure) and figure.layout.xaxis.type == "log"
    names = [trace.name for trace in figure.data]
    assert names[:2] == ["measured", "measured frontier"] and names[-1] == "law-optimal"
    assert sum(name.startswith("fit N=") for name in names) == 4
    measured = figure.data[0]
    assert measured.text[0] == "qwen 0.5B/1" and len(set(measured.marker.size)) == 7
    assert min(figure.data[-1].y) >= min(result.predicted) - 0.01


def test_exponents_and_residual_figures():
    frame = paper_frame()
    result = fit(frame, leave_one_size_out=False)
    intervals = bootstrap(frame, n_resamples=100, seed=0, full_fit=result)
    figure = exponents_figure({"tokenpacker": intervals})
    alpha = figure.data[0]
    assert alpha.name == "alpha" and alpha.error_y.array[0] > 0 and alpha.error_y.arrayminus[0] > 0
    residuals = residuals_figure(result)
    assert len(residuals.data) == 4 and sum(len(trace.y) for trace in residuals.data) == 28
