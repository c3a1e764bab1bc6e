"""The leaderboard, frontier and compressor table under FLOPs formula v1 (the paper's) and v2 (QueCC's query
pass counted): ?flops=, its validation, and caches that keep the versions apart."""

import factories
import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework.test import APIClient

from webapp.fits.models import ScalingLawFit
from webapp.leaderboard.selectors import Cost, RowFilter
from webapp.leaderboard.selectors.fits import fit_decisions
from webapp.leaderboard.selectors.rows import Points, _configuration_best, filtered_points
from webapp.registry.models import Compressor, EvaluationRun

pytestmark = pytest.mark.django_db

LEADERBOARD = "/api/v1/leaderboard/"
FRONTIER = "/api/v1/frontier/"


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    settings.FRONTIER_DATA_VERSION_MAX_AGE_SECONDS = 0
    cache.clear()
    yield
    cache.clear()


def measured(suite, method, n_params, tokens, error):
    compressor, _ = Compressor.objects.get_or_create(method=method, version="1")
    checkpoint = factories.ready_checkpoint(n_params=n_params, tokens=tokens, method=compressor, visibility="public")
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite)
    for key in ("shapes", "glyphs"):
        factories.record_result(run, key, 1 - error, stderr=0.01, n=200, raw={}, stamp={"seed": 0})
    return checkpoint.pk


@pytest.fixture
def pair(synthetic):
    """At N = 0.5 B, V = 4: QueCC (error 0.35) and average pooling (0.40). Under v1 at Q = 50 both cost
    2 · 0.5e9 · 54 = 5.4e10, so only QueCC is on the frontier; under v2 QueCC costs 5.4e10 + 2 · 0.5e9 · 50 =
    1.04e11, and the cheaper average pooling joins the frontier."""
    return {"quecc": measured(synthetic, "quecc", 500_000_000, 4, 0.35),
            "avgpool": measured(synthetic, "avgpool", 500_000_000, 4, 0.40)}


def leaderboard(**params):
    response = APIClient().get(LEADERBOARD, {"suite": "synthetic", **params})
    assert response.status_code == 200, response.content
    return response.json()


def by_id(body, key="results"):
    return {row["id"]: row for row in body[key]}


def test_v1_is_the_default_and_v2_counts_quecc_query_pass(pair):
    default, v1, v2 = leaderboard(), leaderboard(flops="v1"), leaderboard(flops="v2")
    assert by_id(default) == by_id(v1)
    quecc, avgpool = pair["quecc"], pair["avgpool"]
    assert by_id(v1)[quecc]["flops"] == pytest.approx(5.4e10) and by_id(v2)[quecc]["flops"] == pytest.approx(1.04e11)
    assert by_id(v1)[avgpool]["flops"] == by_id(v2)[avgpool]["flops"] == pytest.approx(5.4e10)
    # A cached query (flops_q0) has no query pass: the same under both versions.
    assert by_id(v1)[quecc]["flops_q0"] == by_id(v2)[quecc]["flops_q0"] == pytest.approx(4e9)
    assert {pk for pk, row in by_id(v1).items() if row["on_frontier"]} == {quecc}
    assert {pk for pk, row in by_id(v2).items() if row["on_frontier"]} == {quecc, avgpool}
    assert (v1["frontier_size"], v2["frontier_size"]) == (1, 2)
    assert v1["flops_formula_version"] == "v1" and v1["flops_formula"].startswith("v1: the paper's")
    assert v2["flops_formula_version"] == "v2" and "QueCC" in v2["flops_formula"]
    assert v2["flops_formula_versions"] == ["v1", "v2"]


def test_at_q_0_both_versions_agree(pair):
    v1, v2 = leaderboard(q=0, flops="v1"), leaderboard(q=0, flops="v2")
    assert by_id(v1) == by_id(v2) and v1["frontier_size"] == v2["frontier_size"] == 1


def test_sorts_by_flops_and_frontier_are_kept_per_version(pair):
    """Each order is cached in-process per data version: v2's must not be v1's served again, either way round."""
    quecc, avgpool = pair["quecc"], pair["avgpool"]
    for _ in range(2):
        for version, cheapest_first in (("v1", [quecc, avgpool]), ("v2", [avgpool, quecc])):
            rows = leaderboard(ordering="flops", flops=version)["results"]  # v1: a tie, broken by checkpoint id
            assert [row["id"] for row in rows] == cheapest_first
            badges = leaderboard(ordering="-on_frontier,-error", flops=version)["results"]
            assert [row["id"] for row in badges] == ([quecc, avgpool] if version == "v1" else [avgpool, quecc])


def test_the_responses_differ_so_do_their_etags(pair):
    client = APIClient()
    first = client.get(LEADERBOARD, {"suite": "synthetic", "flops": "v1"})
    second = client.get(LEADERBOARD, {"suite": "synthetic", "flops": "v2"})
    assert first["ETag"] != second["ETag"]
    again = client.get(LEADERBOARD, {"suite": "synthetic", "flops": "v2"}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200  # v1's ETag does not answer for v2


def test_the_cost_and_so_every_memo_key_depends_on_the_version():
    assert Cost(formula="v1") != Cost(formula="v2") and hash(Cost(formula="v1")) != hash(Cost(formula="v2"))
    assert Cost() == Cost(formula="v1")


@pytest.mark.parametrize("path", [LEADERBOARD, FRONTIER, "/api/v1/compressors/", "/api/v1/deploy/"])
def test_an_unknown_version_is_a_400_naming_the_known_ones(pair, path):
    response = APIClient().get(path, {"suite": "synthetic", "flops": "v3", "budget_flops": 1e12})
    assert response.status_code == 400
    message = " ".join(response.json()["flops"])
    assert "Unknown FLOPs formula 'v3'" in message and "known versions: v1, v2" in message


def test_the_frontier_api_under_both_versions(pair):
    client = APIClient()
    v1 = client.get(FRONTIER, {"suite": "synthetic", "q": 50}).json()
    v2 = client.get(FRONTIER, {"suite": "synthetic", "q": 50, "flops": "v2"}).json()
    assert v1["flops_formula_version"] == "v1" and v2["flops_formula_version"] == "v2"
    points1, points2 = by_id(v1, "points"), by_id(v2, "points")
    assert points1[pair["quecc"]]["flops"] == pytest.approx(5.4e10)
    assert points2[pair["quecc"]]["flops"] == pytest.approx(1.04e11)
    assert points1[pair["avgpool"]]["flops"] == points2[pair["avgpool"]]["flops"]
    assert [f["id"] for f in v1["frontier"]] == [pair["quecc"]]
    assert [f["id"] for f in v2["frontier"]] == [pair["avgpool"], pair["quecc"]]


def test_the_cached_points_keep_each_methods_best_configuration(synthetic, pair):
    """Under v1 only each (N, V)'s best row can be on the frontier; under v2 each (N, V, method)'s."""
    points = filtered_points(AnonymousUser(), synthetic, RowFilter(suite="synthetic"))
    assert points.method.tolist() == ["quecc", "avgpool"]
    assert points.checkpoint[points.configuration_best].tolist() == [pair["quecc"]]
    assert points.checkpoint[points.method_configuration_best].tolist() == [pair["quecc"], pair["avgpool"]]
    assert points.frontier(Cost(query_tokens=50)).tolist() == [pair["quecc"]]
    assert points.frontier(Cost(query_tokens=50, formula="v2")).tolist() == [pair["avgpool"], pair["quecc"]]
    assert points.frontier(Cost(query_tokens=0, formula="v2")).tolist() == [pair["quecc"]]


def test_points_without_methods_fall_back_to_the_configurations():
    n, v, error = np.array([0.5, 0.5]), np.array([4.0, 4.0]), np.array([0.35, 0.40])
    points = Points(np.array([1, 2]), n, v, error, _configuration_best(n, v, error))
    assert points.frontier(Cost(query_tokens=50, formula="v2")).tolist() == [1]


def test_v2_quecc_fits_take_v_star_at_twice_q():
    params = {"A": 1.0, "alpha": 0.08, "beta": 0.02, "D": 0.1}
    stored = {"V*(Q=50)": 16.0}
    quecc = ScalingLawFit(scope="quecc/1", law="multiplicative", params=params, query_tokens=50.0,
                          decisions=stored, intervals={"V*(Q=50)": [10, 20]})
    pooled = ScalingLawFit(scope="all", law="multiplicative", params=params, query_tokens=50.0, decisions=stored,
                           intervals={})
    assert fit_decisions(quecc, Cost(query_tokens=50))["v_star"] == 16.0  # v1: the stored decision
    assert fit_decisions(pooled, Cost(query_tokens=50, formula="v2"))["stored"] is True
    v2 = fit_decisions(quecc, Cost(query_tokens=50, formula="v2"))
    assert v2["stored"] is False and v2["v_star"] == pytest.approx(0.02 * 100 / (0.08 - 0.02))


def test_the_pages_show_the_version_and_refuse_an_unknown_one(client, pair):
    page = client.get("/leaderboard/", {"suite": "synthetic", "flops": "v2"})
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="flops-formula" data-version="v2"' in text and '<option value="v2" selected>' in text
    bad = client.get("/leaderboard/", {"suite": "synthetic", "flops": "v9"})
    assert bad.status_code == 400 and "known versions: v1, v2" in bad.content.decode()
    frontier = client.get("/frontier/", {"suite": "synthetic", "flops": "v2"})
    assert frontier.status_code == 200
    assert 'id="frontier-formula" class="hint" data-version="v2"' in frontier.content.decode()
    bad_frontier = client.get("/frontier/", {"suite": "synthetic", "flops": "v9"})
    assert bad_frontier.status_code == 400 and "known versions: v1, v2" in bad_frontier.content.decode()


def test_the_compressors_page_states_each_methods_formula(client, pair):
    table = APIClient().get("/api/v1/compressors/", {"suite": "synthetic"}).json()["flops_formulas"]
    methods = {row["method"]: row for row in table["methods"]}
    assert methods["quecc"]["v2"] == "2·N·(Q + V + G) + 2·N·Q" and methods["quecc"]["v1"] == "2·N·(Q + V + G)"
    assert all(row["v1"] == row["v2"] for method, row in methods.items() if method != "quecc")
    assert "compressor's own FLOPs" in table["not_counted"]
    page = client.get("/compressors/", {"suite": "synthetic"}).content.decode()
    assert 'id="flops-formulas"' in page and "2·N·(Q + V + G) + 2·N·Q" in page
