"""Which rows a reader sees: the filter, how FLOPs are counted, visibility, and the count and measured
Pareto frontier of the filtered rows (cached per data version)."""

from dataclasses import dataclass

import pandas as pd
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

import fitting
from webapp.core.versioning import versioned_cache
from webapp.registry.models import BenchmarkSuite, SuiteScore
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


def points_frame(scores: QuerySet[SuiteScore], cost: Cost) -> pd.DataFrame:
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
        frame = points_frame(visible_scores(user, suite, rows), cost)
        frontier = fitting.pareto_frontier(frame.dropna(subset=["flops"]))
        return len(frame), frozenset(int(c) for c in frontier["checkpoint"])

    return versioned_cache(("count-and-frontier", viewer_key(user), suite.pk, rows, cost), compute)
