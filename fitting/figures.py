"""Plotly figure builders (each returns a go.Figure) for notebooks and web pages."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from fitting.fit import FitResult
from fitting.flops import inference_flops
from fitting.frontier import SearchSpace, optimal_curve, pareto_frontier
from fitting.points import points_from_frame
from fitting.uncertainty import BootstrapResult

COLOURSCALE = "Viridis"


def _size_colour(n_params_b, n_min, n_max) -> str:
    position = 0.0 if n_max == n_min else (np.log(n_params_b) - np.log(n_min)) / (np.log(n_max) - np.log(n_min))
    return sample_colorscale(COLOURSCALE, [float(position)])[0]


def error_vs_flops_figure(frame: pd.DataFrame, fit: FitResult | None = None, space: SearchSpace = SearchSpace(),
                          label_column: str = "label") -> go.Figure:
    """Measured error against inference FLOPs (log x): colour = N, marker size = V.

    With a fit: the fitted curve of each measured N over V ∈ token_range and the law-optimal
    curve over the plotted budget range (N within space.n_range_b).  Always: the measured frontier.
    """
    points = points_from_frame(frame)
    flops = inference_flops(points.n_params_b, points.visual_tokens, space.query_tokens,
                            space.generated_tokens, space.vision_encoder_flops)
    measured = pd.DataFrame({"flops": flops, "error": points.error, "n": points.n_params_b, "v": points.visual_tokens})
    labels = frame[label_column].astype(str).tolist() if label_column in frame.columns else \
        [f"N={n:g}B, V={v:g}" for n, v in zip(points.n_params_b, points.visual_tokens)]
    n_min, n_max = points.n_params_b.min(), points.n_params_b.max()
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=flops, y=points.error, mode="markers", name="measured", text=labels,
        hovertemplate="%{text}<br>FLOPs %{x:.3g}<br>error %{y:.4f}<extra></extra>",
        marker=dict(color=np.log(points.n_params_b), colorscale=COLOURSCALE, size=6 + 3 * np.log2(points.visual_tokens),
                    colorbar=dict(title="N (B)", tickvals=np.log(np.unique(points.n_params_b)),
                                  ticktext=[f"{n:g}" for n in np.unique(points.n_params_b)]),
                    line=dict(width=1, color="white")),
    ))
    frontier = pareto_frontier(measured)
    figure.add_trace(go.Scatter(x=frontier["flops"], y=frontier["error"], mode="lines", line_shape="hv",
                                name="measured frontier", line=dict(color="black", dash="dash")))
    if fit is not None:
        tokens = np.geomspace(*space.token_range, 60)
        for n in np.unique(points.n_params_b):
            figure.add_trace(go.Scatter(
                x=inference_flops(n, tokens, space.query_tokens, space.generated_tokens, space.vision_encoder_flops),
                y=fit.predict(n, tokens), mode="lines", name=f"fit N={n:g}B", hoverinfo="skip",
                line=dict(color=_size_colour(n, n_min, n_max), width=1.5), opacity=0.7))
        curve = optimal_curve(fit.law, fit.params, np.geomspace(flops.min(), flops.max(), 40), space)
        figure.add_trace(go.Scatter(
            x=curve["flops"], y=curve["predicted_error"], mode="lines", name="law-optimal",
            line=dict(color="crimson", dash="dot", width=2),
            text=[f"N*={n:.3g}B, V*={v:.3g}" for n, v in zip(curve["n_params_b"], curve["visual_tokens"])],
            hovertemplate="%{text}<br>FLOPs %{x:.3g}<br>predicted %{y:.4f}<extra></extra>"))
    figure.update_layout(xaxis=dict(type="log", title=f"inference FLOPs (Q={space.query_tokens:g})"),
                         yaxis=dict(title="error"), template="plotly_white", legend=dict(orientation="h"))
    return figure


def exponents_figure(results: Mapping[str, BootstrapResult], parameters=("alpha", "beta")) -> go.Figure:
    """Exponent estimates per compressor with bootstrap interval bars."""
    figure = go.Figure()
    names = list(results)
    for parameter in parameters:
        estimates = np.array([results[name].estimate[parameter] for name in names])
        low = np.array([results[name].intervals[parameter][0] for name in names])
        high = np.array([results[name].intervals[parameter][1] for name in names])
        figure.add_trace(go.Scatter(
            x=names, y=estimates, mode="markers", name=parameter, marker=dict(size=10),
            error_y=dict(type="data", symmetric=False, array=high - estimates, arrayminus=estimates - low)))
    figure.update_layout(xaxis_title="compressor", yaxis_title="exponent (95 % interval)", template="plotly_white")
    return figure


def residuals_figure(fit: FitResult) -> go.Figure:
    """Observed − predicted error against V (log x), one trace per N."""
    points = fit.points
    figure = go.Figure()
    n_min, n_max = points.n_params_b.min(), points.n_params_b.max()
    for n in np.unique(points.n_params_b):
        mask = points.n_params_b == n
        figure.add_trace(go.Scatter(x=points.visual_tokens[mask], y=fit.residuals[mask], mode="markers+lines",
                                    name=f"N={n:g}B", line=dict(color=_size_colour(n, n_min, n_max))))
    figure.add_hline(y=0, line=dict(color="grey", dash="dash"))
    figure.update_layout(xaxis=dict(type="log", title="visual tokens V"), yaxis_title="residual (observed − predicted)",
                         template="plotly_white")
    return figure
