"""`python -m fitting {fit,optimal,plot} CSV ...`; bad input exits with status 2 and one line on stderr."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fitting.fit import fit, json_safe
from fitting.flops import inference_flops
from fitting.frontier import SearchSpace, optimal_allocation, optimal_visual_tokens
from fitting.laws import LAWS
from fitting.points import FitInputError, points_from_frame
from fitting.uncertainty import bootstrap, budget_label


class CommandError(Exception):
    """A problem with the command's input, reported as one line."""


def _read(path: str, compressor: str | None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    if compressor is not None:
        if "compressor" not in frame.columns:
            raise CommandError(f"--compressor given but {path} has no compressor column")
        frame = frame[frame["compressor"] == compressor]
        if frame.empty:
            raise CommandError(f"no rows with compressor {compressor!r} in {path}")
    elif "compressor" in frame.columns and frame["compressor"].nunique() > 1:
        raise CommandError(f"{path} holds several compressors ({', '.join(map(str, frame['compressor'].unique()))}): "
                           "choose one with --compressor")
    return frame


def _space(args, frame: pd.DataFrame) -> SearchSpace:
    points = points_from_frame(frame)
    n_range = tuple(args.n_range) if args.n_range else (points.n_params_b.min(), points.n_params_b.max())
    return SearchSpace(query_tokens=args.q, generated_tokens=args.generated_tokens, n_range_b=n_range,
                       token_range=tuple(args.token_range),
                       n_options_b=tuple(np.unique(points.n_params_b)) if args.measured_sizes else None,
                       token_options=tuple(np.unique(points.visual_tokens)) if args.measured_tokens else None)


def run_fit(args) -> dict:
    frame = _read(args.csv, args.compressor)
    result = fit(frame, args.law)
    ci = {}
    if args.bootstrap > 0:
        ci = bootstrap(frame, args.law, n_resamples=args.bootstrap, seed=args.seed, full_fit=result).intervals
    summary = {
        "law": result.law.name, "params": result.params, "sse": result.sse, "rmse": result.rmse, "r2": result.r2,
        "mape": result.mape, "active_bounds": result.active_bounds, "warnings": result.warnings,
        "ci": {name: list(bounds) for name, bounds in ci.items()}, "loso_mape": result.loso_mape,
        "method": result.method, "seconds": result.seconds,
    }
    if args.json:
        return summary
    method = result.method
    repeats = (f", {method['configurations']} distinct (N, V); repeats pooled" if method["repeated_configurations"]
               else "")
    print(f"law      {result.law.formula}  ({len(result.points)} points{repeats})")
    for name, value in result.params.items():
        interval = f"  95% [{ci[name][0]:.4g}, {ci[name][1]:.4g}]" if name in ci else ""
        print(f"  {name:<6} {value:.6g}{interval}")
    r2 = "undefined" if result.r2 is None else f"{result.r2:.4f}"
    mape = "undefined" if result.mape is None else f"{result.mape:.3f} %"
    print(f"SSE {result.sse:.4e}   RMSE {result.rmse:.4e}   R² {r2}   MAPE {mape}")
    if result.loso_mape is not None:
        sizes = ", ".join(f"N={n:g}: {v:.2f} %" for n, v in result.loso_mape_by_size.items())
        print(f"leave-one-size-out MAPE {result.loso_mape:.3f} %  ({sizes})")
    for name, bounds in ci.items():
        if name not in result.params:
            print(f"  {name:<10} 95% [{bounds[0]:.4g}, {bounds[1]:.4g}]")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"fit in {result.seconds * 1e3:.1f} ms")
    return {}


def run_optimal(args) -> dict:
    frame = _read(args.csv, args.compressor)
    space = _space(args, frame)
    result = fit(frame, args.law, leave_one_size_out=False)
    points = result.points
    budgets = args.budget or list(np.geomspace(
        *inference_flops([points.n_params_b.min(), points.n_params_b.max()],
                         [points.visual_tokens.min(), points.visual_tokens.max()], args.q, args.generated_tokens), 5))
    intervals = bootstrap(frame, args.law, n_resamples=args.bootstrap, seed=args.seed, query_tokens=(args.q,),
                          budgets=budgets, space=space, full_fit=result).intervals if args.bootstrap > 0 else {}
    allocations = []
    for budget in budgets:
        try:
            allocation = optimal_allocation(result.law, result.params, budget, space)
        except ValueError as error:
            raise CommandError(str(error)) from None
        row = {**allocation.__dict__, "ci": {}}
        for field, quantity in (("n_params_b", "N*"), ("visual_tokens", "V*"), ("predicted_error", "error*")):
            label = budget_label(quantity, budget, args.q)
            if label in intervals:
                row["ci"][field] = list(intervals[label])
        allocations.append(row)
    summary = {"law": result.law.name, "params": result.params, "query_tokens": args.q,
               "generated_tokens": args.generated_tokens, "n_range_b": list(space.n_range_b),
               "token_range": list(space.token_range), "allocations": allocations}
    token_label = f"V*(Q={args.q:g})"
    if token_label in intervals:
        estimate = optimal_visual_tokens(result.law, result.params, args.q, args.generated_tokens, space.token_range)
        summary["token_optimum"] = {"visual_tokens": estimate, "ci": list(intervals[token_label])}
    if args.json:
        return summary
    print(f"law {result.law.formula}; Q={args.q:g}, G={args.generated_tokens:g}, "
          f"N in [{space.n_range_b[0]:g}, {space.n_range_b[1]:g}] B, V in [{space.token_range[0]:g}, {space.token_range[1]:g}]")
    print(f"{'budget FLOPs':>14} {'N* (B)':>22} {'V*':>22} {'predicted error':>26}")
    for row in allocations:
        def cell(field, value):
            bounds = row["ci"].get(field)
            return f"{value:.4g}" + (f" [{bounds[0]:.4g}, {bounds[1]:.4g}]" if bounds else "")
        print(f"{row['budget_flops']:>14.4g} {cell('n_params_b', row['n_params_b']):>22} "
              f"{cell('visual_tokens', row['visual_tokens']):>22} {cell('predicted_error', row['predicted_error']):>26}")
    return {}


def run_plot(args) -> dict:
    from fitting.figures import error_vs_flops_figure, exponents_figure, residuals_figure

    frame = _read(args.csv, args.compressor)
    space = _space(args, frame)
    result = fit(frame, args.law)
    name = args.compressor or (str(frame["compressor"].iloc[0]) if "compressor" in frame.columns else "all")
    intervals = bootstrap(frame, args.law, n_resamples=args.bootstrap, seed=args.seed, full_fit=result)
    figures = [error_vs_flops_figure(frame, result, space), residuals_figure(result),
               exponents_figure({name: intervals})]
    html = [figure.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, figure in enumerate(figures)]
    title = f"Scaling law fit: {result.law.formula} ({name})"
    Path(args.output).write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{''.join(html)}</body></html>", encoding="utf-8")
    if not args.json:
        print(f"wrote {args.output}")
    return {"output": args.output} if args.json else {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fitting", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("csv", help="CSV with llm_params_b, visual_tokens, avg_score (optional compressor)")
    common.add_argument("--law", choices=sorted(LAWS), default="multiplicative")
    common.add_argument("--compressor", help="fit only these rows of the compressor column")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--json", action="store_true", help="print one JSON object")
    allocation = argparse.ArgumentParser(add_help=False)
    allocation.add_argument("--q", type=float, default=0.0, help="text query tokens Q (0 = cached)")
    allocation.add_argument("--generated-tokens", type=float, default=0.0)
    allocation.add_argument("--n-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                            help="LLM sizes in billions (default: the measured range)")
    allocation.add_argument("--token-range", type=float, nargs=2, default=(1.0, 576.0), metavar=("LOW", "HIGH"))
    allocation.add_argument("--measured-sizes", action="store_true", help="restrict N to the measured sizes")
    allocation.add_argument("--measured-tokens", action="store_true", help="restrict V to the measured token counts")
    fit_command = commands.add_parser("fit", parents=[common], help="fit a law")
    fit_command.add_argument("--bootstrap", type=int, default=1000, help="resamples for intervals (0: none)")
    fit_command.set_defaults(handler=run_fit)
    optimal = commands.add_parser("optimal", parents=[common, allocation], help="law-optimal (N, V) per budget")
    optimal.add_argument("--budget", type=float, nargs="+", help="FLOPs budgets (default: 5 over the measured range)")
    optimal.add_argument("--bootstrap", type=int, default=1000)
    optimal.set_defaults(handler=run_optimal)
    plot = commands.add_parser("plot", parents=[common, allocation], help="standalone interactive HTML page")
    plot.add_argument("-o", "--output", required=True)
    plot.add_argument("--bootstrap", type=int, default=1000)
    plot.set_defaults(handler=run_plot)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = args.handler(args)
    except (CommandError, FitInputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(json_safe(summary)))
    return 0
