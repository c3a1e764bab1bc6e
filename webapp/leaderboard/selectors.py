"""Reads behind the leaderboard, frontier, compressor and deploy APIs.

Everything a page of leaderboard rows needs sits on SuiteScore (per-benchmark scores and the
newest latency are denormalised there), so a page is two queries at any size (the sorted ids of
the page, then its rows); what reads every filtered row (the count and the measured Pareto
frontier) is cached under the data version, and so is each rendered response (api/views.py)."""

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db.models import Case, ExpressionWrapper, F, FloatField, Max, Q, QuerySet, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

import fitting
from fitting.fit import json_safe
from webapp.fits.models import ScalingLawFit
from webapp.fits.selectors import cannot_fit_reasons, latest_fit_rows, no_fit_message, split_fits
from webapp.leaderboard.models import DataVersion
from webapp.registry.hub import checkpoint_hub_url, llm_hub_url
from webapp.registry.models import (
    BenchmarkResult,
    BenchmarkSuite,
    CheckpointStatus,
    HarnessOutput,
    SuiteScore,
)
from webapp.registry.selectors import visible_to_owner

# Cached values outlive their version only until this many seconds (a backstop for writes
# that do not move the version, e.g. an admin renaming an LLM).
CACHE_SECONDS = 60
CURVE_POINTS = 40
RUNNERS_UP = 5
SCOPES = ("all", "mine", "public", "published")
NO_LATENCY = {"latency_first_token_s": None, "latency_decode_per_token_s": None, "latency_device": ""}


class LeaderboardError(ValueError):
    """A request the leaderboard cannot answer as asked; the message says what to change."""


class NoFitYet(LeaderboardError):
    """No scaling-law fit exists yet for what was asked."""


# --- Data version ---------------------------------------------------------------------------------


_version_memo: tuple[float, str] = (0.0, "")


def data_version() -> str:
    """Changes whenever anything leaderboards show changes: one primary-key read, remembered in
    this process for FRONTIER_DATA_VERSION_MAX_AGE_SECONDS (a write in this process forgets it at
    once, see data_version_forget; one in another process is seen within that time).

    The change time is part of it, so a database recreated from scratch never repeats a version
    that is still cached."""
    global _version_memo
    now = time.monotonic()
    expires, version = _version_memo
    if now < expires:
        return version
    row = DataVersion.objects.filter(pk=1).values_list("counter", "changed_at").first()
    version = "0" if row is None else f"{row[0]}.{int(row[1].timestamp() * 1_000_000)}"
    _version_memo = (now + settings.FRONTIER_DATA_VERSION_MAX_AGE_SECONDS, version)
    return version


def data_version_forget() -> None:
    global _version_memo
    _version_memo = (0.0, "")


def versioned_cache(parts: tuple, compute, version: str | None = None):
    """compute() once per data version and `parts` (anything with a stable repr)."""
    version = data_version() if version is None else version
    key = "leaderboard:" + hashlib.sha1(repr((version, *parts)).encode()).hexdigest()
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return value


# --- What SuiteScore denormalises -------------------------------------------------------------------


def latest_latencies(suite: BenchmarkSuite, checkpoint_ids: list[int] | None = None) -> dict[int, dict]:
    """Per checkpoint, the latency fields of its newest harness output on the suite that measured
    latency (median time to first token and decode time per token)."""
    outputs = HarnessOutput.objects.filter(
        run__suite=suite, stamp__latency__median_time_to_first_token_s__isnull=False
    )
    if checkpoint_ids is not None:
        outputs = outputs.filter(run__checkpoint_id__in=checkpoint_ids)
    rows = outputs.order_by("-id").values_list(
        "run__checkpoint_id",
        "stamp__latency__median_time_to_first_token_s",
        "stamp__latency__median_decode_per_token_s",
        "stamp__device_name",
        "stamp__device",
    )
    latencies: dict[int, dict] = {}
    for checkpoint_id, first_token, decode, device_name, device in rows:
        if checkpoint_id not in latencies and first_token is not None:
            latencies[checkpoint_id] = {
                "latency_first_token_s": float(first_token),
                "latency_decode_per_token_s": None if decode is None else float(decode),
                "latency_device": str(device_name or device or "")[:200],
            }
    return latencies


def checkpoint_latest_results(suite: BenchmarkSuite, checkpoint_id: int) -> pd.DataFrame:
    """One ready checkpoint's long results table on a suite: the newest value per (benchmark, metric)."""
    rows = (
        BenchmarkResult.objects.filter(
            run__suite=suite, run__checkpoint_id=checkpoint_id, run__checkpoint__status=CheckpointStatus.READY
        )
        .order_by("-id")
        .values_list("benchmark__key", "metric", "value", "stderr", "higher_is_better")
    )
    newest = {}
    for key, metric, value, stderr, higher_is_better in rows:
        newest.setdefault((key, metric), (checkpoint_id, key, metric, value, stderr, higher_is_better))
    return pd.DataFrame(
        list(newest.values()), columns=["checkpoint", "benchmark", "metric", "value", "stderr", "higher_is_better"]
    )


# --- Which rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowFilter:
    """Which checkpoints' scores to show (all optional but the suite)."""

    suite: str
    scope: str = "all"
    compressors: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    n_min_b: float | None = None
    n_max_b: float | None = None
    visual_tokens: tuple[int, ...] = ()
    search: str = ""


@dataclass(frozen=True)
class Cost:
    """How FLOPs are counted: 2·N·(Q + V + G) + vision encoder (fitting.flops)."""

    query_tokens: float = 50.0
    generated_tokens: float = 0.0
    vision_encoder_flops: float = 0.0

    def flops(self, n_params_b, visual_tokens, query_tokens: float | None = None):
        q = self.query_tokens if query_tokens is None else query_tokens
        return fitting.inference_flops(n_params_b, visual_tokens, q, self.generated_tokens, self.vision_encoder_flops)

    def as_dict(self) -> dict:
        return {
            "query_tokens": self.query_tokens, "generated_tokens": self.generated_tokens,
            "vision_encoder_flops": self.vision_encoder_flops,
            "flops_formula": f"{fitting.FLOPS_FORMULA_VERSION}: 2·N·(Q + V + G) + vision encoder",
        }


def viewer_key(user) -> str:
    """Who is asking, as far as visibility goes (part of every cache key)."""
    return f"user:{user.pk}" if user.is_authenticated else "anonymous"


def suite_with_benchmark_keys(name: str) -> tuple[BenchmarkSuite, list[str]]:
    suite = BenchmarkSuite.objects.filter(name=name).first()
    if suite is None:
        known = ", ".join(BenchmarkSuite.objects.order_by("name").values_list("name", flat=True))
        raise LeaderboardError(f"Unknown suite {name!r}; known suites: {known}.")
    return suite, list(suite.benchmarks.order_by("key").values_list("key", flat=True))


def visible_scores(user, suite: BenchmarkSuite, rows: RowFilter) -> QuerySet[SuiteScore]:
    """Scores on the suite of checkpoints the user may see (own ones, public ones not hidden), narrowed
    by the filter. Nobody, staff included, sees others' private checkpoints here."""
    public = visible_to_owner(AnonymousUser(), via="checkpoint__")
    if rows.scope == "mine":
        if not user.is_authenticated:
            raise LeaderboardError("scope=mine needs you to be logged in (session or API token).")
        visible = Q(checkpoint__owner=user)
    elif rows.scope == "public":
        visible = public & Q(checkpoint__published=False)
    elif rows.scope == "published":
        visible = public & Q(checkpoint__published=True)
    else:
        visible = visible_to_owner(user, via="checkpoint__")
    scores = SuiteScore.objects.filter(visible, suite=suite)
    if rows.compressors:
        wanted = Q()
        for name in rows.compressors:
            method, _, version = name.partition("/")
            one = Q(checkpoint__compressor__method=method)
            wanted |= one & Q(checkpoint__compressor__version=version) if version else one
        scores = scores.filter(wanted)
    if rows.families:
        scores = scores.filter(checkpoint__llm__family__in=rows.families)
    if rows.n_min_b is not None:
        scores = scores.filter(checkpoint__llm__n_params__gte=rows.n_min_b * 1e9)
    if rows.n_max_b is not None:
        scores = scores.filter(checkpoint__llm__n_params__lte=rows.n_max_b * 1e9)
    if rows.visual_tokens:
        scores = scores.filter(checkpoint__visual_tokens__in=rows.visual_tokens)
    if rows.search:
        search = Q(checkpoint__name__icontains=rows.search) | Q(checkpoint__llm__name__icontains=rows.search)
        scores = scores.filter(search)
    return scores


def _points_frame(scores: QuerySet[SuiteScore], cost: Cost) -> pd.DataFrame:
    """(checkpoint, llm_params_b, visual_tokens, error, flops) of every row; N, V and FLOPs are NaN
    where the checkpoint does not say its LLM or token count."""
    rows = scores.values_list("checkpoint_id", "checkpoint__llm__n_params", "checkpoint__visual_tokens", "error")
    frame = pd.DataFrame(list(rows), columns=["checkpoint", "n_params", "visual_tokens", "error"], dtype=float)
    frame["llm_params_b"] = frame["n_params"] / 1e9
    frame["flops"] = cost.flops(frame["llm_params_b"].to_numpy(), frame["visual_tokens"].to_numpy())
    return frame


def count_and_frontier(user, suite: BenchmarkSuite, rows: RowFilter, cost: Cost) -> tuple[int, frozenset[int]]:
    """How many rows the filter shows, and which of them are on the measured Pareto frontier
    (error vs FLOPs at Q); one read of every filtered row, cached per data version, viewer, filter
    and cost, so sorting and paging reuse it."""

    def compute():
        frame = _points_frame(visible_scores(user, suite, rows), cost)
        frontier = fitting.pareto_frontier(frame.dropna(subset=["flops"]))
        return len(frame), frozenset(int(c) for c in frontier["checkpoint"])

    return versioned_cache(("count-and-frontier", viewer_key(user), suite.pk, rows, cost), compute)


# --- Leaderboard ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardQuery:
    rows: RowFilter
    cost: Cost = field(default_factory=Cost)
    ordering: tuple[str, ...] = ("error",)
    page: int = 1
    page_size: int | None = 50  # None: every filtered row on one page (exports)


def _flops_expression(query_tokens: float):
    """Orders like 2·N·(Q + V + G) (the constant factor and vision encoder do not change the order)."""
    return ExpressionWrapper(
        F("checkpoint__llm__n_params") * (F("checkpoint__visual_tokens") + Value(float(query_tokens))),
        output_field=FloatField(),
    )


SORTABLE = {
    "id": "checkpoint_id", "name": "checkpoint__name", "owner": "checkpoint__owner__username",
    "status": "checkpoint__status", "published": "checkpoint__published", "llm": "checkpoint__llm__name",
    "llm_family": "checkpoint__llm__family", "n_params": "checkpoint__llm__n_params",
    "compressor": "checkpoint__compressor__method", "visual_tokens": "checkpoint__visual_tokens",
    "error": "error", "stderr": "stderr", "n_benchmarks": "n_benchmarks", "source": "source",
    "latency_first_token_ms": "latency_first_token_s", "latency_decode_per_token_ms": "latency_decode_per_token_s",
    "updated_at": "updated_at",
}
ALIASES = {
    "family": "llm_family", "n": "n_params", "n_params_b": "n_params", "v": "visual_tokens",
    "latency": "latency_first_token_ms", "decode": "latency_decode_per_token_ms",
}
SORT_KEYS = sorted([*SORTABLE, *ALIASES, "flops", "flops_q0", "on_frontier", "bench:<key>"])


def _order_expression(key: str, benchmark_keys: list[str], cost: Cost, frontier: frozenset[int]):
    descending = key.startswith("-")
    name = ALIASES.get(key.lstrip("-"), key.lstrip("-"))
    if name.startswith("bench:"):
        benchmark = name.removeprefix("bench:")
        if benchmark not in benchmark_keys:
            raise LeaderboardError(
                f"Cannot sort by {name!r}: the suite's benchmarks are {', '.join(benchmark_keys) or 'none'}."
            )
        expression = Cast(KT(f"benchmark_scores__{benchmark}"), FloatField())
    elif name == "flops":
        expression = _flops_expression(cost.query_tokens + cost.generated_tokens)
    elif name == "flops_q0":
        expression = _flops_expression(cost.generated_tokens)
    elif name == "on_frontier":
        expression = Case(When(checkpoint_id__in=frontier, then=Value(1)), default=Value(0))
    elif name in SORTABLE:
        expression = F(SORTABLE[name])
    else:
        raise LeaderboardError(f"Cannot sort by {key!r}; sort keys (prefix - for descending): {', '.join(SORT_KEYS)}.")
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


ROW_VALUES = (
    "checkpoint_id", "checkpoint__name", "checkpoint__owner__username", "checkpoint__status",
    "checkpoint__visibility", "checkpoint__published", "checkpoint__citation", "checkpoint__source_url",
    "checkpoint__llm__name", "checkpoint__llm__family", "checkpoint__llm__n_params",
    "checkpoint__compressor__method", "checkpoint__compressor__version", "checkpoint__visual_tokens",
    "error", "stderr", "n_benchmarks", "source", "benchmark_scores",
    "latency_first_token_s", "latency_decode_per_token_s", "latency_device", "updated_at",
    "checkpoint__reference", "checkpoint__llm__source", "checkpoint__llm__revision",
)
# Rows read by id at a time: an export of every row stays under any database's parameter limit.
ROWS_PER_READ = 1000


def _milliseconds(seconds):
    return None if seconds is None else seconds * 1000.0


def _flops_or_none(values: np.ndarray, known: np.ndarray) -> list:
    return [float(value) if ok else None for value, ok in zip(values, known, strict=True)]


def leaderboard_page(user, query: LeaderboardQuery) -> dict:
    """One page of leaderboard rows (sorted, filtered), with the on-frontier badge computed over
    every filtered row, not just the page."""
    suite, benchmark_keys = suite_with_benchmark_keys(query.rows.suite)
    scores = visible_scores(user, suite, query.rows)
    count, frontier = count_and_frontier(user, suite, query.rows, query.cost)
    order = [_order_expression(key, benchmark_keys, query.cost, frontier) for key in query.ordering]
    page_size = query.page_size or max(count, 1)
    pages = max(1, -(-count // page_size))
    if query.page > pages:
        raise LeaderboardError(f"page {query.page} is past the last page ({pages}) of {count} rows.")
    start = (query.page - 1) * page_size
    # Sort narrow (the sort keys and ids), then read the page's wide rows by id: sorting whole rows
    # (JSON scores, citations) of every checkpoint would spill to disk at 10,000 rows.
    page_ids = list(scores.order_by(*order, "checkpoint_id").values_list("pk", flat=True)[start:start + page_size])
    by_id = {}
    for first in range(0, len(page_ids), ROWS_PER_READ):
        chunk = page_ids[first:first + ROWS_PER_READ]
        by_id.update((row["pk"], row) for row in SuiteScore.objects.filter(pk__in=chunk).values("pk", *ROW_VALUES))
    values = [by_id[pk] for pk in page_ids]

    n_params = np.array([row["checkpoint__llm__n_params"] or 0 for row in values], dtype=float) / 1e9
    tokens = np.array([row["checkpoint__visual_tokens"] or 0 for row in values], dtype=float)
    known = (n_params > 0) & (tokens > 0)
    flops = _flops_or_none(query.cost.flops(n_params, tokens), known)
    flops_q0 = _flops_or_none(query.cost.flops(n_params, tokens, query_tokens=0.0), known)
    results = [
        {
            "id": row["checkpoint_id"],
            "name": row["checkpoint__name"],
            "owner": row["checkpoint__owner__username"],
            "status": row["checkpoint__status"],
            "visibility": row["checkpoint__visibility"],
            "published": row["checkpoint__published"],
            "citation": row["checkpoint__citation"],
            "source_url": row["checkpoint__source_url"],
            "hub_url": checkpoint_hub_url(row["checkpoint__reference"]),
            "llm": row["checkpoint__llm__name"],
            "llm_family": row["checkpoint__llm__family"],
            "llm_hub_url": llm_hub_url(
                row["checkpoint__llm__name"], row["checkpoint__llm__source"], row["checkpoint__llm__revision"]
            ),
            "n_params": row["checkpoint__llm__n_params"],
            "n_params_b": row["checkpoint__llm__n_params"] and row["checkpoint__llm__n_params"] / 1e9,
            "compressor": row["checkpoint__compressor__method"],
            "compressor_version": row["checkpoint__compressor__version"],
            "visual_tokens": row["checkpoint__visual_tokens"],
            "flops_q0": flops_q0[index],
            "flops": flops[index],
            "latency_first_token_ms": _milliseconds(row["latency_first_token_s"]),
            "latency_decode_per_token_ms": _milliseconds(row["latency_decode_per_token_s"]),
            "latency_device": row["latency_device"],
            "scores": row["benchmark_scores"],
            "error": row["error"],
            "stderr": row["stderr"],
            "n_benchmarks": row["n_benchmarks"],
            "source": row["source"],
            "on_frontier": row["checkpoint_id"] in frontier,
            "updated_at": row["updated_at"],
        }
        for index, row in enumerate(values)
    ]
    return {
        "suite": suite.name,
        "benchmarks": benchmark_keys,
        **query.cost.as_dict(),
        "ordering": list(query.ordering),
        "count": count,
        "page": query.page,
        "page_size": query.page_size or count,
        "pages": pages,
        "frontier_size": len(frontier),
        "results": results,
    }


# --- Fits -------------------------------------------------------------------------------------------


def _fit_at(fits: list[ScalingLawFit], query_tokens: float) -> ScalingLawFit:
    """The fit row stored for this Q, else any (parameters do not depend on Q; decisions do)."""
    return next((fit for fit in fits if fit.query_tokens == query_tokens), fits[0])


def fit_decisions(fit: ScalingLawFit, cost: Cost) -> dict:
    """V*(Q) and its interval: stored for the Q values the refit fitted, else recomputed from the
    parameters (no interval then)."""
    label = f"V*(Q={cost.query_tokens:g})"
    if fit.query_tokens == cost.query_tokens and cost.generated_tokens == 0:
        return {"v_star": fit.decisions.get(label), "v_star_interval": fit.intervals.get(label),
                "stored": True, "decisions": fit.decisions}
    law = fitting.get_law(fit.law)
    v_star = None
    if law.single_product_term:
        v_star = fitting.optimal_visual_tokens(law, fit.params, cost.query_tokens, cost.generated_tokens)
    return {"v_star": v_star, "v_star_interval": None, "stored": False, "decisions": {label: v_star}}


# --- Frontier chart ---------------------------------------------------------------------------------


def frontier_chart(user, rows: RowFilter, cost: Cost) -> dict:
    """Points, the measured Pareto frontier, each law's curves per N (error vs FLOPs across V) and its
    law-optimal curve over the FLOPs range. The law is the fit of the one compressor the filter names
    (as the paper fits each compressor alone), or without a compressor filter the fit of all compressors
    together; ``fit_scope`` says which (None: the filter names several compressors, or one without a fit)."""
    suite, _ = suite_with_benchmark_keys(rows.suite)
    scores = visible_scores(user, suite, rows).exclude(checkpoint__llm=None).exclude(checkpoint__visual_tokens=None)
    values = list(scores.order_by("checkpoint_id").values(
        "checkpoint_id", "checkpoint__name", "checkpoint__llm__n_params", "checkpoint__visual_tokens",
        "checkpoint__compressor__method", "checkpoint__compressor__version", "checkpoint__published", "error",
    ))
    frame = pd.DataFrame({
        "checkpoint": [row["checkpoint_id"] for row in values],
        "llm_params_b": [row["checkpoint__llm__n_params"] / 1e9 for row in values],
        "visual_tokens": [float(row["checkpoint__visual_tokens"]) for row in values],
        "error": [row["error"] for row in values],
    })
    frame["flops"] = cost.flops(frame["llm_params_b"].to_numpy(float), frame["visual_tokens"].to_numpy(float))
    frontier = fitting.pareto_frontier(frame)
    on_frontier = set(frontier["checkpoint"].tolist())
    points = [
        {
            "id": row["checkpoint_id"], "name": row["checkpoint__name"], "n_params_b": n, "visual_tokens": v,
            "compressor": row["checkpoint__compressor__method"],
            "compressor_version": row["checkpoint__compressor__version"],
            "published": row["checkpoint__published"], "flops": flops, "error": row["error"],
            "on_frontier": row["checkpoint_id"] in on_frontier,
        }
        for row, n, v, flops in zip(values, frame["llm_params_b"], frame["visual_tokens"], frame["flops"], strict=True)
    ]
    laws = list(settings.FRONTIER_FIT_LAWS)
    fitted, cannot = split_fits(latest_fit_rows(suite, laws=laws))
    scope = _frontier_fit_scope(rows.compressors, {row.scope for row in fitted + cannot})
    by_law: dict[str, list[ScalingLawFit]] = {}
    for fit in fitted:
        if fit.scope == scope:
            by_law.setdefault(fit.law, []).append(fit)
    curves = []
    for law_name in laws:
        if law_name not in by_law:
            continue
        fit = _fit_at(by_law[law_name], cost.query_tokens)
        curves.append({
            "law": law_name, "formula": fitting.get_law(law_name).formula, "fit_id": fit.pk, "scope": fit.scope,
            "params": fit.params, "intervals": fit.intervals, "n_points": fit.n_points, **fit_decisions(fit, cost),
            **(_law_curves(fit, frame, cost) if len(frame) else {"per_n": [], "optimal": []}),
        })
    return json_safe({
        "suite": suite.name,
        **cost.as_dict(),
        "points": points,
        "frontier": [
            {"id": int(c), "flops": float(f), "error": float(e)}
            for c, f, e in frontier[["checkpoint", "flops", "error"]].itertuples(index=False)
        ],
        "fit_scope": scope,
        "laws": curves,
        "note": _frontier_note(suite, laws, curves, [row for row in cannot if row.scope == scope], scope,
                               rows.compressors),
    })


def _frontier_fit_scope(compressors: tuple[str, ...], scopes: set[str]) -> str | None:
    """"all" without a compressor filter; the one fit scope the filter names; else None."""
    if not compressors:
        return "all"
    named = [scope for scope in scopes if scope != "all" and _scope_matches(scope, compressors)]
    return named[0] if len(named) == 1 else None


def _frontier_note(
    suite: BenchmarkSuite, laws, curves: list[dict], cannot: list[ScalingLawFit], scope: str | None,
    compressors: tuple[str, ...],
) -> str | None:
    """Which fit is drawn, or why a law has no curve: every law (no fit yet, and why) or the ones that
    cannot be fitted."""
    if scope is None and len(compressors) == 1:
        return (f"No law drawn: compressor {compressors[0]} has no fit on suite {suite.name} yet (a fit needs "
                "enough scored checkpoints; /compressors/ lists the fitted ones).")
    if scope is None:
        return (f"No law drawn: the filter names {', '.join(compressors)}, and a law is fitted for one compressor "
                "at a time (or for all together, without a compressor filter).")
    if not curves:
        return no_fit_message(suite, laws, cannot, scope=scope)
    missing = [law for law in laws if law not in {curve["law"] for curve in curves}]
    reasons = {record.law: record.reason for record in cannot if record.law in missing}
    return "; ".join(f"No {law} curve: {reason}" for law, reason in reasons.items()) or None


def _law_curves(fit: ScalingLawFit, frame: pd.DataFrame, cost: Cost) -> dict:
    """Within the data's N and V ranges: error vs FLOPs across V for each N, and the law-optimal
    allocation for budgets spanning the measured FLOPs."""
    law = fitting.get_law(fit.law)
    v_low, v_high = float(frame["visual_tokens"].min()), float(frame["visual_tokens"].max())
    n_low, n_high = float(frame["llm_params_b"].min()), float(frame["llm_params_b"].max())
    tokens = np.geomspace(v_low, v_high, CURVE_POINTS) if v_high > v_low else np.array([v_low])
    per_n = []
    for n in sorted(frame["llm_params_b"].unique()):
        predicted = law.predict(fit.params, np.full_like(tokens, n), tokens)
        per_n.append({
            "n_params_b": float(n), "visual_tokens": tokens.tolist(),
            "flops": cost.flops(np.full_like(tokens, n), tokens).tolist(), "error": predicted.tolist(),
        })
    space = fitting.SearchSpace(
        query_tokens=cost.query_tokens, generated_tokens=cost.generated_tokens, n_range_b=(n_low, n_high),
        token_range=(v_low, v_high), vision_encoder_flops=cost.vision_encoder_flops,
    )
    budgets = np.geomspace(frame["flops"].min(), frame["flops"].max(), CURVE_POINTS)
    optimal = fitting.optimal_curve(law, fit.params, budgets, space)
    return {"per_n": per_n, "optimal": optimal.to_dict("records")}


# --- Compressors ------------------------------------------------------------------------------------


def compressor_table(suite_name: str, cost: Cost) -> dict:
    """Per fit scope (all compressors, then each compressor) and law: α and β with their 95 %
    intervals and the fit's details."""
    suite, _ = suite_with_benchmark_keys(suite_name)
    grouped: dict[tuple[str, str], list[ScalingLawFit]] = {}
    fitted, cannot = split_fits(latest_fit_rows(suite))
    for fit in fitted:
        grouped.setdefault((fit.scope, fit.law), []).append(fit)
    scopes: dict[str, dict] = {}
    for (scope, law_name), fits in grouped.items():
        fit = _fit_at(fits, cost.query_tokens)
        entry = scopes.setdefault(scope, {
            "scope": scope,
            "compressor": fit.compressor.method if fit.compressor else None,
            "compressor_version": fit.compressor.version if fit.compressor else None,
            "laws": [],
        })
        entry["laws"].append({
            "law": law_name, "formula": fitting.get_law(law_name).formula, "fit_id": fit.pk,
            "alpha": fit.params.get("alpha"), "alpha_interval": fit.intervals.get("alpha"),
            "beta": fit.params.get("beta"), "beta_interval": fit.intervals.get("beta"),
            "params": fit.params, "intervals": fit.intervals, **fit_decisions(fit, cost),
            "sse": fit.sse, "rmse": fit.rmse, "r2": fit.r2, "mape": fit.mape, "loso_mape": fit.loso_mape,
            "active_bounds": fit.active_bounds, "warnings": fit.warnings, "residuals": fit.residuals,
            "n_points": fit.n_points, "method": fit.method, "fitted_at": fit.created_at,
        })
    ordered = sorted(scopes.values(), key=lambda entry: (entry["scope"] != "all", entry["scope"]))
    not_fitted = {(record.scope, record.law): record for record in cannot}
    cannot_fit = [
        {"scope": scope, "law": law, "reason": record.reason, "code": record.reason_code,
         "n_points": record.n_points, "checked_at": record.created_at}
        for (scope, law), record in sorted(not_fitted.items(), key=lambda item: (item[0][0] != "all", item[0]))
    ]
    if not ordered:
        note = no_fit_message(suite, settings.FRONTIER_FIT_LAWS, cannot, scope=None)
    else:
        note = f"Not fitted: {cannot_fit_reasons(cannot)}" if cannot_fit else None
    return json_safe({"suite": suite.name, **cost.as_dict(), "scopes": ordered, "cannot_fit": cannot_fit,
                      "note": note})


# --- What should I deploy? --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployQuery:
    suite: str
    cost: Cost
    law: str
    budget_flops: float | None = None
    budget_latency_ms: float | None = None
    n_options_b: tuple[float, ...] = ()
    token_options: tuple[int, ...] = ()
    compressors: tuple[str, ...] = ()


def _scope_matches(scope: str, wanted: tuple[str, ...]) -> bool:
    return not wanted or any(scope == name or scope.split("/")[0] == name for name in wanted)


def _config(fit: ScalingLawFit, n_b: float, tokens: float, predicted: float, cost: Cost) -> dict:
    return {
        "n_params_b": float(n_b), "visual_tokens": float(tokens),
        "compressor": fit.compressor.method if fit.compressor else None,
        "compressor_version": fit.compressor.version if fit.compressor else None,
        "fit_scope": fit.scope, "fit_id": fit.pk, "predicted_error": float(predicted),
        "flops": float(cost.flops(n_b, tokens)),
    }


def _with_error_intervals(configs: list[dict], law: str) -> None:
    """Give each configuration the 95 % bootstrap interval of its predicted error, from its fit's
    stored parameter draws (read in one query, only for the configurations answered), or a note
    saying why there is none."""
    stored = ScalingLawFit.objects.filter(pk__in={config["fit_id"] for config in configs})
    draws = {pk: np.asarray(rows, dtype=float) for pk, rows in stored.values_list("pk", "parameter_draws")}
    for config in configs:
        interval = fitting.predicted_error_interval(law, draws[config["fit_id"]], config["n_params_b"],
                                                    config["visual_tokens"])
        config["error_interval"] = list(interval) if interval else None
        config["interval_note"] = None if interval else (
            f"fit #{config['fit_id']} has no stored bootstrap draws (fits stored before draws were kept have "
            "none): refit to get an interval of the predicted error"
        )


def deploy_recommendation(user, query: DeployQuery) -> dict:
    """The (N, V, compressor) with the lowest predicted error within a FLOPs budget (the law-optimal
    allocation over the allowed sizes and token counts, per compressor fit) or within a latency
    budget (among measured configurations), and the runners-up."""
    suite, _ = suite_with_benchmark_keys(query.suite)
    fits, cannot = split_fits(latest_fit_rows(suite, laws=[query.law]))
    by_scope: dict[str, list[ScalingLawFit]] = {}
    for fit in fits:
        by_scope.setdefault(fit.scope, []).append(fit)
    chosen = {scope: _fit_at(rows, query.cost.query_tokens) for scope, rows in by_scope.items()}
    per_compressor = {
        scope: fit for scope, fit in chosen.items() if scope != "all" and _scope_matches(scope, query.compressors)
    }
    if not chosen:
        raise NoFitYet(no_fit_message(suite, [query.law], cannot))
    if query.compressors and not per_compressor:
        fitted = ", ".join(sorted(scope for scope in chosen if scope != "all")) or "none"
        asked = [record for record in cannot if record.scope != "all" and _scope_matches(record.scope, query.compressors)]
        why = (cannot_fit_reasons(asked) if asked else
               f"it needs at least {len(fitting.get_law(query.law).parameter_names)} checkpoints with scores")
        raise NoFitYet(
            f"no fit yet for compressor {', '.join(query.compressors)} on suite {suite.name}: {why}; "
            f"compressors with a fit: {fitted}."
        )
    candidates = per_compressor or {"all": chosen["all"]}
    if query.budget_latency_ms is not None:
        return _deploy_by_latency(user, suite, query, candidates, chosen.get("all"))
    return _deploy_by_flops(user, suite, query, candidates)


def _allowed_sets(user, suite: BenchmarkSuite, query: DeployQuery) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The sizes and token counts asked for; by default those of the suite's visible checkpoints."""
    n_options, token_options = query.n_options_b, tuple(float(v) for v in query.token_options)
    if not n_options or not token_options:
        frame = _points_frame(visible_scores(user, suite, RowFilter(suite=suite.name)), query.cost).dropna()
        n_options = n_options or tuple(sorted(float(n) for n in frame["llm_params_b"].unique()))
        token_options = token_options or tuple(sorted(float(v) for v in frame["visual_tokens"].unique()))
    if not n_options or not token_options:
        raise LeaderboardError("Give the allowed LLM sizes (n, in billions) and token counts (v): no checkpoint "
                               "on this suite provides defaults yet.")
    return n_options, token_options


def _deploy_by_flops(user, suite, query: DeployQuery, fits: dict[str, ScalingLawFit]) -> dict:
    n_options, token_options = _allowed_sets(user, suite, query)
    cost = query.cost
    space = fitting.SearchSpace(
        query_tokens=cost.query_tokens, generated_tokens=cost.generated_tokens, n_options_b=n_options,
        token_options=token_options, vision_encoder_flops=cost.vision_encoder_flops,
    )
    if query.budget_flops < space.smallest_cost():
        raise LeaderboardError(
            f"budget_flops {query.budget_flops:.4g} is below the cheapest allowed configuration "
            f"({space.smallest_cost():.4g} FLOPs: N = {min(n_options):g} B, V = {min(token_options):g}, "
            f"Q = {cost.query_tokens:g})."
        )
    best = []
    for fit in fits.values():
        allocation = fitting.optimal_allocation(fit.law, fit.params, query.budget_flops, space)
        best.append((allocation.predicted_error, fit, allocation))
    predicted_error, fit, allocation = min(best, key=lambda item: item[0])
    recommended = _config(fit, allocation.n_params_b, allocation.visual_tokens, predicted_error, cost)
    recommended["parameter_intervals"] = {name: fit.intervals.get(name) for name in fit.params}

    # Runners-up: every other allowed configuration within budget, ranked by predicted error.
    n_grid, v_grid = (grid.ravel() for grid in np.meshgrid(n_options, token_options))
    within = cost.flops(n_grid, v_grid) <= query.budget_flops * (1 + 1e-12)
    ranked = []
    for other in fits.values():
        predicted = fitting.get_law(other.law).predict(other.params, n_grid[within], v_grid[within])
        ranked += [(float(p), other, n, v) for p, n, v in zip(predicted, n_grid[within], v_grid[within], strict=True)]
    ranked.sort(key=lambda item: (item[0], cost.flops(item[2], item[3])))
    runners_up = [
        _config(other, n, v, p, cost) for p, other, n, v in ranked
        if not (other is fit and n == allocation.n_params_b and v == allocation.visual_tokens)
    ][:RUNNERS_UP]
    _with_error_intervals([recommended, *runners_up], query.law)
    return json_safe({
        "suite": suite.name, **cost.as_dict(), "law": query.law, "budget_flops": query.budget_flops,
        "allowed": {"n_params_b": list(n_options), "visual_tokens": list(token_options),
                    "compressors": sorted(fits)},
        "recommended": recommended, "runners_up": runners_up,
    })


def _deploy_by_latency(user, suite, query: DeployQuery, fits: dict[str, ScalingLawFit], pooled) -> dict:
    """Measured configurations whose latency (time to first token + (G − 1) decode steps) fits the
    budget, ranked by the law's predicted error for their compressor."""
    rows = RowFilter(suite=suite.name, visual_tokens=query.token_options)
    scores = visible_scores(user, suite, rows).exclude(latency_first_token_s=None).exclude(checkpoint__llm=None)
    measured = list(scores.values(
        "checkpoint_id", "checkpoint__name", "checkpoint__llm__n_params", "checkpoint__visual_tokens",
        "checkpoint__compressor__method", "checkpoint__compressor__version", "error",
        "latency_first_token_s", "latency_decode_per_token_s", "latency_device",
    ))
    if not measured:
        raise LeaderboardError(f"No checkpoint on suite {suite.name} has a measured latency yet; use budget_flops.")
    decode_steps = max(query.cost.generated_tokens - 1, 0)
    configurations: dict[tuple, dict] = {}
    for row in measured:
        n_b = row["checkpoint__llm__n_params"] / 1e9
        scope = f"{row['checkpoint__compressor__method']}/{row['checkpoint__compressor__version']}"
        if query.n_options_b and not any(abs(n_b - n) <= 0.05 * n for n in query.n_options_b):
            continue
        fit = fits.get(scope) or (pooled if not query.compressors else None)
        if fit is None:
            continue
        latency_ms = 1000 * (row["latency_first_token_s"] + decode_steps * (row["latency_decode_per_token_s"] or 0.0))
        key = (scope, n_b, row["checkpoint__visual_tokens"])
        if key in configurations and configurations[key]["latency_ms"] <= latency_ms:
            continue
        predicted = float(fitting.get_law(fit.law).predict(fit.params, n_b, row["checkpoint__visual_tokens"]))
        config = _config(fit, n_b, row["checkpoint__visual_tokens"], predicted, query.cost)
        config.update({
            "compressor": row["checkpoint__compressor__method"],
            "compressor_version": row["checkpoint__compressor__version"],
            "latency_ms": latency_ms, "latency_device": row["latency_device"], "measured_error": row["error"],
            "checkpoint": {"id": row["checkpoint_id"], "name": row["checkpoint__name"]},
        })
        configurations[key] = config
    if not configurations:
        raise LeaderboardError("No measured configuration matches the allowed sizes, token counts and compressors.")
    feasible = sorted(
        (c for c in configurations.values() if c["latency_ms"] <= query.budget_latency_ms),
        key=lambda c: (c["predicted_error"], c["latency_ms"]),
    )
    if not feasible:
        fastest = min(configurations.values(), key=lambda c: c["latency_ms"])
        raise LeaderboardError(
            f"No measured configuration meets {query.budget_latency_ms:g} ms; the fastest allowed one takes "
            f"{fastest['latency_ms']:.1f} ms ({fastest['checkpoint']['name']})."
        )
    recommended, runners_up = feasible[0], feasible[1:1 + RUNNERS_UP]
    _with_error_intervals([recommended, *runners_up], query.law)
    return json_safe({
        "suite": suite.name, **query.cost.as_dict(), "law": query.law, "budget_latency_ms": query.budget_latency_ms,
        "allowed": {"n_params_b": list(query.n_options_b), "visual_tokens": list(query.token_options),
                    "compressors": sorted(fits)},
        "recommended": recommended, "runners_up": runners_up,
    })
