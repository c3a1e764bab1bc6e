"""Scaling-law fitting for Frontier: law forms, exact fits, bootstrap intervals, Pareto
frontiers, compute-optimal allocations and Plotly figures.

A library (NumPy, SciPy, pandas, Plotly): no Django, Celery or torch.
"""
from fitting.aggregate import AggregatedScores, AggregationError, BenchmarkNormalisation, aggregate, benchmark_errors
from fitting.fit import FitResult, fit
from fitting.flops import (COMPRESSOR_FLOPS_NOTE, DEFAULT_FLOPS_FORMULA, FLOPS_FORMULA_VERSION,
                           FLOPS_FORMULA_VERSIONS, FLOPS_FORMULAS, LATEST_FLOPS_FORMULA, depends_on_method,
                           effective_query_tokens, formula_text, inference_flops, method_formulas, with_flops)
from fitting.frontier import (Allocation, SearchSpace, optimal_allocation, optimal_curve, optimal_visual_tokens,
                              pareto_frontier, pareto_frontiers, pareto_order)
from fitting.laws import LAWS, Law, PowerTerm, get_law
from fitting.paired import (ItemComparison, McNemar, PairedDifference, PairedTest, SuiteComparison, compare_items,
                            compare_suite, mcnemar, paired_bootstrap, paired_test)
from fitting.paper import PAPER_PUBLISHED, paper_comparison
from fitting.points import FitInputError, Points, paper_frame, paper_table_path, points_from_frame
from fitting.rank_bands import FrontierBadges, RankBand, band_ranks, frontier_beyond_noise, rank_bands
from fitting.uncertainty import BootstrapResult, Resamples, bootstrap, predicted_error_interval, resample

__all__ = [
    "AggregatedScores", "AggregationError", "BenchmarkNormalisation", "aggregate", "benchmark_errors", "FitResult",
    "fit", "FLOPS_FORMULA_VERSION", "DEFAULT_FLOPS_FORMULA", "FLOPS_FORMULA_VERSIONS", "FLOPS_FORMULAS",
    "LATEST_FLOPS_FORMULA", "COMPRESSOR_FLOPS_NOTE", "depends_on_method", "effective_query_tokens", "method_formulas",
    "formula_text", "inference_flops", "with_flops", "Allocation", "SearchSpace", "optimal_allocation",
    "optimal_curve", "optimal_visual_tokens", "pareto_frontier", "pareto_frontiers", "pareto_order", "LAWS", "Law",
    "PowerTerm", "get_law", "FitInputError", "Points", "paper_frame", "paper_table_path", "points_from_frame",
    "BootstrapResult", "bootstrap", "predicted_error_interval", "Resamples", "resample", "PAPER_PUBLISHED",
    "paper_comparison", "ItemComparison", "McNemar", "PairedDifference", "PairedTest", "SuiteComparison",
    "compare_items", "compare_suite", "mcnemar", "paired_bootstrap", "paired_test", "FrontierBadges", "RankBand",
    "band_ranks", "frontier_beyond_noise", "rank_bands",
]
