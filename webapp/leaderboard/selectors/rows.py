"""Which rows a reader sees: the filter, how FLOPs are counted, visibility, and the count and measured
Pareto frontier of the filtered rows (cached per data version)."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

import fitting
from webapp.core.versioning import data_version, versioned_memo
from webapp.registry.models import BenchmarkSuite, CompressorMethod, SuiteScore
from webapp.registry.selectors import visible_to_owner

SCOPES = ("all", "mine", "public", "published")


class LeaderboardError(ValueError):
    """A request the leaderboard cannot answer as asked; the message says what to change."""


class NoFitYet(LeaderboardError):
    """No scaling-law fit exists yet for what was asked."""


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
    """How FLOPs are counted: `formula` (fitting.flops: v1, the paper's 2·N·(Q + V + G), or v2, which adds
    QueCC's query pass 2·N·Q) + vision encoder. Part of every cache key of what depends on FLOPs."""

    query_tokens: float = 50.0
    generated_tokens: float = 0.0
    vision_encoder_flops: float = 0.0
    formula: str = fitting.DEFAULT_FLOPS_FORMULA

    def flops(self, n_params_b, visual_tokens, query_tokens: float | None = None, methods=None):
        """FLOPs per configuration; `methods` (the compressor method, one or one per configuration) matters
        only under a formula that depends on it (v2)."""
        q = self.query_tokens if query_tokens is None else query_tokens
        return fitting.inference_flops(n_params_b, visual_tokens, q, self.generated_tokens, self.vision_encoder_flops,
                                       methods, self.formula)

    def query_tokens_for(self, method: str | None) -> float:
        """The Q that counts this method's FLOPs with the paper's formula (v2 QueCC: 2·Q, its query pass)."""
        return float(fitting.effective_query_tokens(self.query_tokens, method, self.formula))

    def as_dict(self) -> dict:
        return {
            "query_tokens": self.query_tokens, "generated_tokens": self.generated_tokens,
            "vision_encoder_flops": self.vision_encoder_flops,
            "flops_formula": f"{fitting.formula_text(self.formula)}; + vision encoder",
            "flops_formula_version": self.formula, "flops_formula_versions": list(fitting.FLOPS_FORMULA_VERSIONS),
        }


def viewer_key(user) -> str:
    """Who is asking, as far as visibility goes (part of every cache key)."""
    return f"user:{user.pk}" if user.is_authenticated else "anonymous"


def suite_with_benchmark_keys(name: str) -> tuple[BenchmarkSuite, list[str]]:
    """The suite and its benchmarks' keys, kept in this process per data version (an unknown name is not)."""

    def compute():
        suite = BenchmarkSuite.objects.filter(name=name).first()
        if suite is None:
            known = ", ".join(BenchmarkSuite.objects.order_by("name").values_list("name", flat=True))
            raise LeaderboardError(f"Unknown suite {name!r}; known suites: {known}.")
        return suite, tuple(suite.benchmarks.order_by("key").values_list("key", flat=True))

    suite, keys = versioned_memo(("suite", name), compute)
    return suite, list(keys)


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


# SuiteScore's numeric fields besides the error, read with the points (the sorts on them need no other read).
NUMBERS = ("stderr", "n_benchmarks", "latency_first_token_s", "latency_decode_per_token_s")


@dataclass(frozen=True)
class Points:
    """The filtered rows as columns (one entry per row, in checkpoint order): checkpoint id, N in billions,
    V (NaN where the checkpoint does not say), error; `configuration_best`, the positions of each (N, V)
    configuration's best row (lowest error, then first), in row order; and `numbers`, the score's other
    numeric fields (NUMBERS; NaN where null); `method`, each row's compressor method ("" where none), and
    `method_configuration_best`, the best row of each (N, V, method) for formulas whose FLOPs depend on the
    method (v2). What the count, the frontier and the sorts read."""

    checkpoint: np.ndarray
    llm_params_b: np.ndarray
    visual_tokens: np.ndarray
    error: np.ndarray
    configuration_best: np.ndarray
    numbers: dict = field(default_factory=dict)
    method: np.ndarray | None = None
    method_configuration_best: np.ndarray | None = None

    def flops(self, cost: Cost, query_tokens: float | None = None) -> np.ndarray:
        return cost.flops(self.llm_params_b, self.visual_tokens, query_tokens, self.method)

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's 95 % interval on the error, error ± 1.96·stderr; a row without a standard error is its point."""
        half = 1.96 * np.nan_to_num(self.numbers.get("stderr", np.zeros_like(self.error)), nan=0.0)
        return self.error - half, self.error + half

    def rank_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's rank band on the error (``fitting.band_ranks``, Chatbot Arena's rule): a row ranks below
        another only when their ``intervals`` separate. (rank = best possible rank, worst possible rank)."""
        return fitting.band_ranks(*self.intervals())

    def frontier_badges(self, cost: Cost) -> frozenset[int]:
        """The frontier rows that keep the badge beyond noise (``fitting.frontier_beyond_noise``): the cheapest
        frontier row, and each costlier one whose 95 % interval (error ± 1.96·stderr) lies wholly below every
        cheaper frontier row's. A frontier row within noise of a cheaper one improves on nothing measurable."""
        ids = self.frontier(cost)
        at = np.searchsorted(self.checkpoint, ids)
        methods = self.method[at] if self.method is not None else None
        flops = cost.flops(self.llm_params_b[at], self.visual_tokens[at], methods=methods)
        low, high = (bound[at] for bound in self.intervals())
        points = zip(ids.tolist(), flops.tolist(), self.error[at].tolist(), low.tolist(), high.tolist())
        return frozenset(fitting.frontier_beyond_noise(list(points)).badged)

    def frontier(self, cost: Cost) -> np.ndarray:
        """Checkpoint ids on the measured Pareto frontier at this cost. FLOPs depend on (N, V) only (and on the
        method under v2), so only each configuration's best row can be on it: the sorted pass runs over those
        (tens, not 100,000)."""
        by_method = self.method is not None and fitting.depends_on_method(cost.formula)
        best = self.method_configuration_best if by_method else self.configuration_best
        methods = self.method[best] if by_method else None
        flops = cost.flops(self.llm_params_b[best], self.visual_tokens[best], methods=methods)
        return self.checkpoint[best[fitting.pareto_order(flops, self.error[best])]]


def _configuration_best(n: np.ndarray, v: np.ndarray, error: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """Positions of each (N, V) configuration's best row (each (N, V, group) with a group: a method code)."""
    group = np.zeros_like(n) if group is None else group
    known = np.flatnonzero(~(np.isnan(n) | np.isnan(v) | np.isnan(error)))
    ordered = known[np.lexsort((error[known], group[known], v[known], n[known]))]  # stable: ties stay in row order
    if not len(ordered):
        return ordered
    changed = (np.diff(n[ordered]) != 0) | (np.diff(v[ordered]) != 0) | (np.diff(group[ordered]) != 0)
    first = np.concatenate(([True], changed))
    return np.sort(ordered[first])


# Compressor methods by code: the points read each row's method as a number in the same query.
METHODS = tuple(CompressorMethod.values)
METHOD_CODE = Case(
    *[When(checkpoint__compressor__method=method, then=Value(code)) for code, method in enumerate(METHODS)],
    default=Value(-1), output_field=IntegerField(),
)


def fetch_rows(values) -> list[tuple]:
    """A values_list queryset's rows straight from the cursor: no per-row Django conversion (a third faster
    on 100,000 rows), for reads of plain numbers and text."""
    sql, params = values.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def filtered_points(user, suite: BenchmarkSuite, rows: RowFilter, version: str | None = None) -> Points:
    """One narrow read of every row the filter keeps, kept in this process per data version, viewer and
    filter (not per cost: every Q reuses it)."""

    def compute():
        scores = visible_scores(user, suite, rows).order_by("checkpoint_id")
        columns = ("checkpoint_id", "checkpoint__llm__n_params", "checkpoint__visual_tokens", "error", *NUMBERS)
        values = scores.values_list(*columns, METHOD_CODE)
        table = np.array(fetch_rows(values), dtype=float).reshape(-1, len(columns) + 1)  # None: NaN
        n, v, error, code = table[:, 1] / 1e9, table[:, 2], table[:, 3], table[:, -1]
        numbers = {name: table[:, 4 + index] for index, name in enumerate(NUMBERS)}
        methods = np.array([*METHODS, ""], dtype=object)[code.astype(np.int64)]  # code -1: no compressor
        return Points(table[:, 0].astype(np.int64), n, v, error, _configuration_best(n, v, error), numbers,
                      methods, _configuration_best(n, v, error, code))

    return versioned_memo(("points", viewer_key(user), suite.pk, rows), compute, version)


def points_frame(points: Points, cost: Cost) -> pd.DataFrame:
    """(checkpoint, llm_params_b, visual_tokens, error, flops, compressor method) of every row; N, V and FLOPs
    are NaN where the checkpoint does not say its LLM or token count."""
    return pd.DataFrame({
        "checkpoint": points.checkpoint, "llm_params_b": points.llm_params_b,
        "visual_tokens": points.visual_tokens, "error": points.error, "flops": points.flops(cost),
        "compressor": points.method if points.method is not None else "",
    })


def count_and_frontier(
    user, suite: BenchmarkSuite, rows: RowFilter, cost: Cost, version: str | None = None,
) -> tuple[int, frozenset[int]]:
    """How many rows the filter shows, and which of them are on the measured Pareto frontier (error vs
    FLOPs at Q): a sorted pass in NumPy over the cached points, itself cached per data version and cost,
    so sorting and paging reuse it. ``version``: the data version read once for the whole answer."""
    version = data_version() if version is None else version
    points = filtered_points(user, suite, rows, version)

    frontier = versioned_memo(
        ("frontier", viewer_key(user), suite.pk, rows, cost), lambda: points.frontier_badges(cost), version
    )
    return len(points.checkpoint), frontier


def rank_bands_of(user, suite: BenchmarkSuite, rows: RowFilter, page_ids: list[int], version: str) -> dict[int, dict]:
    """The page's rows' rank bands among every filtered row ({checkpoint id: {"rank", "worst", "tied"}}); the
    bands of all rows computed once per data version and filter (O(n log n))."""
    points = filtered_points(user, suite, rows, version)

    def compute():
        rank, worst = points.rank_bands()
        return rank, worst, np.bincount(rank) if len(rank) else np.zeros(1, dtype=np.int64)

    rank, worst, counts = versioned_memo(("rank_bands", viewer_key(user), suite.pk, rows), compute, version)
    positions = np.searchsorted(points.checkpoint, np.asarray(page_ids, dtype=np.int64))
    bands = {}
    for checkpoint_id, position in zip(page_ids, positions.tolist()):
        if position < len(points.checkpoint) and points.checkpoint[position] == checkpoint_id:
            found = int(rank[position])
            bands[checkpoint_id] = {"rank": found, "worst": int(worst[position]), "tied": bool(counts[found] > 1)}
    return bands
