"""The leaderboard's order, a NumPy lexsort over columns kept per data version, is exactly the database's
ORDER BY (its collation for text, nulls last, ties by checkpoint id), in both directions, for every sort key;
and the frontier from each configuration's best row is the frontier over every row."""

import itertools
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db.models import Case, ExpressionWrapper, F, FloatField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

import fitting
from webapp.leaderboard.selectors import LeaderboardQuery, RowFilter, leaderboard_page
from webapp.leaderboard.selectors.rows import (
    Cost,
    Points,
    _configuration_best,
    count_and_frontier,
    suite_with_benchmark_keys,
    visible_scores,
)
from webapp.leaderboard.selectors.sorting import ALIASES, SORTABLE, sorted_checkpoints
from webapp.registry.models import Checkpoint, CheckpointStatus, Compressor, LanguageModel, SuiteScore

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(synthetic):
    """60 scored checkpoints with repeated values everywhere (ties), nulls (no LLM, no V, no stderr or
    latency, a missing benchmark score) and text whose order depends on case."""
    cache.clear()
    rng = np.random.default_rng(7)
    users = [get_user_model().objects.create(username=name) for name in ("bob", "Alice", "carol", "alice2")]
    llms = [LanguageModel.objects.create(name=name, family=family, n_params=n)
            for name, family, n in (("Qwen-7b", "qwen", 7e9), ("llama-1b", "Llama", 1e9), ("qwen-0.5b", "qwen", 5e8),
                                    ("Llama-7b", "Llama", 7e9))]
    compressors = [Compressor.objects.create(method=method, version="1") for method in ("quecc", "AvgPool", "mqt")]
    for index in range(60):
        checkpoint = Checkpoint.objects.create(
            name=f"ckpt-{index % 7}", owner=users[index % 4] if index % 9 else None,
            llm=None if index % 13 == 5 else llms[index % 4], compressor=compressors[index % 3],
            visual_tokens=None if index % 11 == 3 else int(rng.choice([1, 4, 16, 64])),
            status=CheckpointStatus.READY if index % 4 else CheckpointStatus.REJECTED, published=index % 3 == 0,
            visibility="private" if index % 10 == 9 else "public",
        )
        scores = {"shapes": float(rng.choice([0.2, 0.5, 0.8]))}
        if index % 6:
            scores["glyphs"] = float(rng.choice([0.3, 0.6]))
        score = SuiteScore.objects.create(
            source="published" if index % 5 == 1 else "measured", checkpoint=checkpoint, suite=synthetic, error=float(rng.choice([0.1, 0.25, 0.4])),
            stderr=None if index % 5 == 0 else float(rng.choice([0.01, 0.02])), n_benchmarks=1 + index % 2,
            benchmark_scores=scores, latency_first_token_s=None if index % 4 == 0 else float(rng.choice([0.1, 0.2])),
            latency_decode_per_token_s=None if index % 7 == 0 else float(rng.choice([0.01, 0.03])),
        )
        SuiteScore.objects.filter(pk=score.pk).update(updated_at=timezone.now() - timedelta(hours=index % 5))
    yield users
    cache.clear()


def database_order(user, rows: RowFilter, ordering, cost: Cost) -> list[int]:
    """The order the database gives the same rows: ORDER BY each key NULLS LAST, then the checkpoint id."""
    suite, _ = suite_with_benchmark_keys(rows.suite)
    _, frontier = count_and_frontier(user, suite, rows, cost)
    order = []
    for key in ordering:
        name = ALIASES.get(key.lstrip("-"), key.lstrip("-"))
        if name.startswith("bench:"):
            expression = Cast(KT(f"benchmark_scores__{name.removeprefix('bench:')}"), FloatField())
        elif name in ("flops", "flops_q0"):
            tokens = cost.generated_tokens + (cost.query_tokens if name == "flops" else 0.0)
            expression = ExpressionWrapper(F("checkpoint__llm__n_params") * (F("checkpoint__visual_tokens") + tokens),
                                           output_field=FloatField())
        elif name == "on_frontier":
            expression = Case(When(checkpoint_id__in=frontier, then=Value(1)), default=Value(0))
        else:
            expression = F(SORTABLE[name])
        order.append(expression.desc(nulls_last=True) if key.startswith("-") else expression.asc(nulls_last=True))
    scores = visible_scores(user, suite, rows).order_by(*order, "checkpoint_id")
    return list(scores.values_list("checkpoint_id", flat=True))


def numpy_order(user, rows: RowFilter, ordering, cost: Cost) -> list[int]:
    suite, keys = suite_with_benchmark_keys(rows.suite)
    _, frontier = count_and_frontier(user, suite, rows, cost)
    query = LeaderboardQuery(rows=rows, cost=cost, ordering=tuple(ordering))
    return sorted_checkpoints(user, suite, query, keys, frontier, None).tolist()


KEYS = sorted(SORTABLE) + ["flops", "flops_q0", "on_frontier", "bench:shapes", "bench:glyphs", "n", "v", "latency",
                           "family"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("descending", [False, True])
def test_each_key_sorts_as_the_database_does(rows, key, descending):
    ordering = [("-" if descending else "") + key]
    for user in (AnonymousUser(), rows[1]):
        for cost in (Cost(), Cost(query_tokens=0.0, generated_tokens=8.0)):
            filtered = RowFilter(suite="synthetic")
            assert numpy_order(user, filtered, ordering, cost) == database_order(user, filtered, ordering, cost)


@pytest.mark.parametrize("ordering", [
    *[list(pair) for pair in itertools.permutations(["-error", "compressor", "llm_family", "v"], 2)],
    ["-on_frontier", "owner", "-bench:glyphs"], ["-n", "v", "-latency_decode_per_token_ms"],
    ["status", "-published", "name", "-updated_at"], ["name", "-error"], ["-name", "llm"], ["source", "-id"],
])
def test_combined_keys_and_filters_sort_as_the_database_does(rows, ordering):
    for filtered in (RowFilter(suite="synthetic"), RowFilter(suite="synthetic", compressors=("quecc",)),
                     RowFilter(suite="synthetic", visual_tokens=(4, 16), search="ckpt-3")):
        assert numpy_order(AnonymousUser(), filtered, ordering, Cost()) == database_order(
            AnonymousUser(), filtered, ordering, Cost())


def test_a_page_of_a_cached_sort_is_the_matching_slice(rows):
    query = dict(rows=RowFilter(suite="synthetic"), ordering=("-bench:shapes", "llm"), page_size=7)
    everything = database_order(AnonymousUser(), query["rows"], query["ordering"], Cost())
    pages = [leaderboard_page(AnonymousUser(), LeaderboardQuery(**query, page=page)) for page in range(1, 9)]
    assert [row["id"] for page in pages for row in page["results"]] == everything
    assert pages[0]["count"] == len(everything) == 54


@pytest.mark.parametrize("seed", range(30))
def test_the_frontier_from_each_configurations_best_row_equals_the_pass_over_every_row(seed):
    """Points.frontier looks only at each (N, V)'s best row; the answer must equal pareto_order over all rows,
    ties included: equal errors within a configuration, and configurations of equal FLOPs at Q (N·(V + Q)
    equal for 1 B at V = 14 and 2 B at V = 7 when Q = 0), unknown N or V."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 200))
    n = rng.choice([1.0, 2.0, 4.0, np.nan], count, p=[0.4, 0.3, 0.25, 0.05])
    v = rng.choice([7.0, 14.0, 28.0, np.nan], count, p=[0.4, 0.3, 0.25, 0.05])
    error = rng.integers(0, 5, count) / 10.0
    ids = np.sort(rng.choice(10_000, count, replace=False)).astype(np.int64)
    points = Points(ids, n, v, error, _configuration_best(n, v, error))
    for cost in (Cost(query_tokens=0.0), Cost(), Cost(query_tokens=7.0, generated_tokens=7.0)):
        everything = ids[fitting.pareto_order(points.flops(cost), error)]
        assert points.frontier(cost).tolist() == everything.tolist()


def test_the_process_memo_computes_once_per_version_forgets_with_the_cache_and_stays_within_its_bytes(monkeypatch):
    from webapp.core import versioning

    calls = []

    def compute(tag, size):
        calls.append(tag)
        return np.zeros(size // 8)

    cache.clear()
    first = versioning.versioned_memo(("a",), lambda: compute("a", 800), version="v1")
    assert versioning.versioned_memo(("a",), lambda: compute("a", 800), version="v1") is first  # the object kept
    versioning.versioned_memo(("a",), lambda: compute("a", 800), version="v2")  # another data version
    cache.clear()  # e.g. a test, or staff clearing the cache: the memo goes with it
    versioning.versioned_memo(("a",), lambda: compute("a", 800), version="v1")
    assert calls == ["a", "a", "a"]

    monkeypatch.setattr(versioning, "MEMO_BYTES", 2_000)
    for tag in "bcd":
        versioning.versioned_memo((tag,), lambda tag=tag: compute(tag, 800), version="v1")
    versioning.versioned_memo(("d",), lambda: compute("d", 800), version="v1")
    versioning.versioned_memo(("b",), lambda: compute("b", 800), version="v1")  # evicted: the oldest
    assert calls[3:] == ["b", "c", "d", "b"]
