"""Suite scores, scaling-law fits and refit coalescing, in-process (the worker path is in
tests/integration/test_refit_worker.py)."""

import io

import factories
import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from webapp.fits.models import ScalingLawFit
from webapp.fits.services import REFIT_TASK, refit_request
from webapp.jobs.models import Job, JobState
from webapp.leaderboard.services import benchmark_results_record, refit_all
from webapp.registry.models import (
    Benchmark,
    BenchmarkSuite,
    Checkpoint,
    Compressor,
    SuiteScore,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_bootstrap(settings):
    settings.FRONTIER_FIT_BOOTSTRAP_RESAMPLES = 200


def test_published_table_is_loaded_and_fitted_like_the_paper(fast_bootstrap):
    """The paper's table with its Qwen1.5 sizes counted from the weights (Frontier's N): α ≈ 0.067, lower than the
    paper-comparison refit on the nominal sizes (0.071, fitting.paper; the test below), β and V* alike."""
    call_command("load_published", stdout=io.StringIO())
    assert Checkpoint.objects.filter(published=True, visibility="public").count() == 28
    assert all("2411.03312" in c.citation for c in Checkpoint.objects.all())

    report = refit_all()

    fits = ScalingLawFit.objects.filter(suite__name="reasoning", scope="all", law="multiplicative")
    assert sorted(fits.values_list("query_tokens", flat=True)) == [0.0, 50.0]
    fit = fits.get(query_tokens=50)
    assert fit.method["n_convention"] == "counted" and fit.method["n_left_out"] == 0
    assert 0.0650 <= fit.params["alpha"] <= 0.0700 and 0.0137 <= fit.params["beta"] <= 0.0170
    assert fit.sse <= 4.50e-4 and fit.n_points == 28
    assert 12.5 <= fit.decisions["V*(Q=50)"] <= 17
    assert fits.get(query_tokens=0).decisions["V*(Q=0)"] == 1
    low, high = fit.intervals["beta"]
    assert low <= fit.params["beta"] <= high
    assert fit.active_bounds == ["D=0"] and fit.warnings  # D sits on its bound: flagged, not hidden
    statuses = {(f["scope"], f["law"]): f["status"] for f in report["fits"] if f["suite"] == "reasoning"}
    assert statuses[("all", "additive")] == "fitted"


def test_on_nominal_n_the_published_table_refits_as_the_paper_comparison_does(fast_bootstrap, settings):
    settings.FRONTIER_FIT_N_CONVENTION = "nominal"
    call_command("load_published", stdout=io.StringIO())

    refit_all()

    fit = ScalingLawFit.objects.get(suite__name="reasoning", scope="all", law="multiplicative", query_tokens=50)
    assert fit.method["n_convention"] == "nominal" and fit.n_points == 28
    assert 0.0685 <= fit.params["alpha"] <= 0.0734 and 0.0138 <= fit.params["beta"] <= 0.0168
    assert fit.sse <= 3.80e-4 and 12 <= fit.decisions["V*(Q=50)"] <= 16


def test_an_unchanged_input_is_not_refitted(fast_bootstrap):
    call_command("load_published", stdout=io.StringIO())
    refit_all()
    count = ScalingLawFit.objects.count()

    report = refit_all()

    assert ScalingLawFit.objects.count() == count
    assert {f["status"] for f in report["fits"] if f["suite"] == "reasoning"} == {"unchanged"}


def test_loading_the_same_table_twice_changes_nothing():
    call_command("load_published", stdout=io.StringIO())
    call_command("load_published", stdout=io.StringIO())
    assert Checkpoint.objects.count() == 28 and SuiteScore.objects.count() == 28


def test_bad_published_tables_are_refused_with_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("llm_family,llm_params_b,compressor,visual_tokens,avg_score\nq,0.5,tokenpacker,4,1.7\n")
    with pytest.raises(CommandError, match=r"bad.csv:2: avg_score 1.7 is outside \[0, 1\]"):
        call_command("load_published", str(bad))
    with pytest.raises(CommandError, match="Unknown suite 'vision'"):
        call_command("load_published", "--suite", "vision")
    assert not Checkpoint.objects.exists()


def test_a_burst_of_refit_requests_becomes_one_queued_job():
    jobs = {refit_request().pk for _ in range(5)}
    assert len(jobs) == 1
    job = Job.objects.get()
    assert job.task_name == REFIT_TASK and job.state == JobState.QUEUED
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING)  # once it runs, new data needs a new refit
    assert refit_request().pk != job.pk


def make_measured_checkpoint(suite, n_params, tokens, scores, compressor, visibility="public"):
    return factories.measured_checkpoint(suite, scores, n_params=n_params, tokens=tokens, method=compressor,
                                         visibility=visibility, name=f"tiny-{n_params}-{tokens}")


def test_measured_results_become_suite_scores_and_fits(fast_bootstrap):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    law = lambda n, v: 0.9 / ((n / 1e6) ** 0.3 * v ** 0.1) + 0.05  # noqa: E731
    for n in (1_000_000, 4_000_000, 16_000_000):
        for v in (1, 4, 16, 64):
            error = law(n, v)
            make_measured_checkpoint(suite, n, v, {"shapes": 1 - error, "glyphs": 1 - error}, pool)
    incomplete = make_measured_checkpoint(suite, 2_000_000, 4, {"shapes": 0.5}, pool)

    report = refit_all()

    scores = SuiteScore.objects.filter(suite=suite)
    assert scores.count() == 12 and not scores.filter(checkpoint=incomplete).exists()
    one = scores.get(checkpoint__llm__n_params=4_000_000, checkpoint__visual_tokens=16)
    assert one.error == pytest.approx(law(4_000_000, 16)) and one.n_benchmarks == 2
    assert one.stderr == pytest.approx(np.sqrt(2 * 0.02**2) / 2)
    assert {"suite": "synthetic", "checkpoint": incomplete.pk,
            "reason": "missing 1 of 2 benchmarks: glyphs"} in report["exclusions"]
    fit = ScalingLawFit.objects.get(suite=suite, scope="avgpool/1", law="multiplicative", query_tokens=0)
    assert fit.params["alpha"] == pytest.approx(0.3, rel=1e-3) and fit.params["beta"] == pytest.approx(0.1, rel=1e-3)
    assert fit.compressor == pool


def test_private_checkpoints_do_not_shape_the_public_fits(fast_bootstrap):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    for n in (1_000_000, 4_000_000, 16_000_000):
        for v in (1, 4, 16):
            error = 0.9 / ((n / 1e6) ** 0.3 * v ** 0.1) + 0.05
            make_measured_checkpoint(suite, n, v, {"shapes": 1 - error, "glyphs": 1 - error}, pool)
    private = make_measured_checkpoint(suite, 8_000_000, 64, {"shapes": 0.01, "glyphs": 0.01}, pool, "private")

    refit_all()

    assert SuiteScore.objects.filter(checkpoint=private).exists()  # its owner still sees its score
    fit = ScalingLawFit.objects.get(suite=suite, scope="all", law="multiplicative", query_tokens=0)
    assert fit.n_points == 9 and (0.008, 64) not in {(row["llm_params_b"], row["visual_tokens"]) for row in fit.residuals}


def test_a_fit_input_that_returns_to_an_earlier_state_makes_that_fit_current_again(fast_bootstrap):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    for n in (1_000_000, 4_000_000, 16_000_000):
        for v in (1, 4, 16):
            error = 0.9 / ((n / 1e6) ** 0.3 * v ** 0.1) + 0.05
            make_measured_checkpoint(suite, n, v, {"shapes": 1 - error, "glyphs": 1 - error}, pool)
    refit_all()
    latest = lambda: ScalingLawFit.objects.filter(  # noqa: E731
        suite=suite, scope="all", law="multiplicative", query_tokens=0).order_by("-created_at", "-id").first()
    first = latest()
    extra = make_measured_checkpoint(suite, 8_000_000, 64, {"shapes": 0.9, "glyphs": 0.9}, pool)
    refit_all()
    assert latest().n_points == 10

    extra.delete()
    refit_all()

    assert latest().pk == first.pk and latest().n_points == 9


def test_results_are_recorded_idempotently_and_request_a_refit(django_capture_on_commit_callbacks):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    with django_capture_on_commit_callbacks(execute=False):
        checkpoint = make_measured_checkpoint(suite, 1_000_000, 4, {"shapes": 0.7}, pool)
        run = checkpoint.runs.get()
        benchmark_results_record(
            run=run, benchmark=Benchmark.objects.get(suite=suite, key="shapes"),
            metrics=[{"metric": "exact_match", "value": 0.75}], raw={}, stamp={},
        )
    assert run.results.count() == 1 and run.results.get().value == 0.75
    assert Job.objects.filter(task_name=REFIT_TASK, state=JobState.QUEUED).count() == 1


def test_percent_scales_come_from_the_catalogue():
    mmbench = Benchmark.objects.get(suite__name="reasoning", key="mmbench")
    mathvista = Benchmark.objects.get(suite__name="reasoning", key="mathvista")
    assert (mmbench.full_scale, mathvista.full_scale, mathvista.metrics) == (100.0, 100.0, ["llm_as_judge_eval"])


def test_a_suite_with_unusable_results_is_reported_and_the_others_still_refit(fast_bootstrap):
    call_command("load_published", stdout=io.StringIO())
    synthetic = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    make_measured_checkpoint(synthetic, 1_000_000, 4, {"shapes": 64.0, "glyphs": 50.0}, pool)  # percent by mistake

    report = refit_all()

    assert report["errors"][0]["suite"] == "synthetic" and "outside [0, 1]" in report["errors"][0]["error"]
    assert ScalingLawFit.objects.filter(suite__name="reasoning").exists()


def test_catalogue_sync_adds_missing_rows_and_keeps_admin_edits():
    from webapp.registry.services import benchmark_catalog_sync

    Benchmark.objects.filter(key="gqa").update(lmms_eval_task="gqa_lite")
    Benchmark.objects.filter(key="shapes").delete()
    benchmark_catalog_sync()
    assert set(Benchmark.objects.filter(key="gqa").values_list("lmms_eval_task", flat=True)) == {"gqa_lite"}
    assert Benchmark.objects.get(key="shapes").metrics == ["exact_match"]
    assert Benchmark.objects.filter(suite__name="reasoning").count() == 9
    assert Benchmark.objects.filter(suite__name="compressor_table").count() == 7  # five shared with reasoning


# --- Inputs that cannot be fitted, and repeated configurations ------------------------------------


def demo_grid(suite, score, compressors, *, vary=lambda n, v: 0.0):
    """The `make run` demo's shape: 3 LLM sizes x 4 token counts per compressor, every benchmark at
    `score` (+ vary(n, v))."""
    for compressor in compressors:
        for n in (1_000_000, 4_000_000, 16_000_000):
            for v in (1, 4, 16, 64):
                value = score + vary(n, v)
                make_measured_checkpoint(suite, n, v, {"shapes": value, "glyphs": value}, compressor)


def test_checkpoints_that_all_score_zero_are_recorded_as_cannot_fit_and_not_retried(fast_bootstrap):
    """The demo failure: 24 checkpoints at 0 % made R² divide by zero and the refit job fail."""
    suite = BenchmarkSuite.objects.get(name="synthetic")
    compressors = [Compressor.objects.create(method="avgpool", version="1"),
                   Compressor.objects.create(method="quecc", version="1")]
    demo_grid(suite, 0.0, compressors)

    report = refit_all()

    outcomes = [f for f in report["fits"] if f["suite"] == "synthetic"]
    assert {(f["scope"], f["status"]) for f in outcomes} == {
        (scope, "cannot_fit") for scope in ("all", "avgpool/1", "quecc/1")}
    reason = next(f["reason"] for f in outcomes if f["scope"] == "all")
    assert reason == ("cannot fit: all 24 checkpoints have the same error (1.000: every one scored 0 %), so the law "
                      "has nothing to explain; train longer or add checkpoints that differ")
    rows = ScalingLawFit.objects.filter(suite=suite, scope="all", law="multiplicative")
    assert sorted(rows.values_list("query_tokens", flat=True)) == [0.0, 50.0]
    row = rows.get(query_tokens=50)
    assert (row.status, row.reason, row.reason_code, row.n_points) == ("cannot_fit", reason, "zero_spread", 24)
    assert row.fingerprint and row.params == {} and row.r2 is None and row.sse is None
    count = ScalingLawFit.objects.count()

    again = refit_all()

    assert ScalingLawFit.objects.count() == count
    assert {f["status"] for f in again["fits"] if f["suite"] == "synthetic"} == {"unchanged"}


def test_pages_and_apis_show_the_stored_reason_instead_of_needing_more_checkpoints(fast_bootstrap, client):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    demo_grid(suite, 0.0, [pool])
    refit_all()
    reason = "cannot fit: all 12 checkpoints have the same error (1.000: every one scored 0 %)"

    frontier = client.get("/api/v1/frontier/", {"suite": "synthetic"}).json()
    assert frontier["laws"] == [] and frontier["note"].startswith(f"no fit yet for suite synthetic: {reason}")
    table = client.get("/api/v1/compressors/", {"suite": "synthetic"}).json()
    assert table["scopes"] == [] and table["note"].startswith(f"no fit yet for suite synthetic: {reason}")
    assert {(row["scope"], row["law"], row["code"]) for row in table["cannot_fit"]} == {
        (scope, law, "zero_spread") for scope in ("all", "avgpool/1") for law in ("multiplicative", "additive")}
    deploy = client.get("/api/v1/deploy/", {"suite": "synthetic", "budget_flops": 1e12})
    assert deploy.status_code == 409 and reason in deploy.json()["detail"]
    only_avgpool = client.get("/api/v1/deploy/", {"suite": "synthetic", "budget_flops": 1e12, "compressor": "avgpool"})
    assert only_avgpool.status_code == 409 and reason in only_avgpool.json()["detail"]
    for page in ("/compressors/?suite=synthetic", "/deploy/?suite=synthetic&budget_kind=flops&budget_flops=1e12", "/"):
        text = client.get(page).content.decode()
        assert "same error (1.000: every one scored 0 %)" in text and "needs at least 4 checkpoints" not in text, page


def test_a_later_fittable_input_replaces_the_cannot_fit_record_and_vice_versa(fast_bootstrap, client):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    law = lambda n, v: 0.9 / ((n / 1e6) ** 0.3 * v ** 0.1) + 0.05  # noqa: E731

    def measure(**grid):
        Checkpoint.objects.all().delete()
        demo_grid(suite, 0.0, [pool], **grid)
        refit_all()
        cache.clear()
        return client.get("/api/v1/frontier/", {"suite": "synthetic"}).json()

    assert measure()["laws"] == []
    frontier = measure(vary=lambda n, v: 1 - law(n, v))
    assert [curve["law"] for curve in frontier["laws"]] == ["multiplicative", "additive"] and frontier["note"] is None
    assert client.get("/api/v1/compressors/", {"suite": "synthetic"}).json()["cannot_fit"] == []

    frontier = measure()  # the newest input cannot be fitted: the older fit is no longer current

    assert frontier["laws"] == [] and "same error (1.000" in frontier["note"]
    deploy = client.get("/api/v1/deploy/", {"suite": "synthetic", "budget_flops": 1e12})
    assert deploy.status_code == 409 and "same error (1.000" in deploy.json()["detail"]


def test_two_compressors_at_the_same_configurations_are_pooled_not_refused(fast_bootstrap):
    """Issue #16: duplicate (N, V) pairs in the 'all' scope made every refit at scale skip its fits."""
    suite = BenchmarkSuite.objects.get(name="synthetic")
    law = lambda n, v: 0.9 / ((n / 1e6) ** 0.3 * v ** 0.1) + 0.05  # noqa: E731
    pool = Compressor.objects.create(method="avgpool", version="1")
    quecc = Compressor.objects.create(method="quecc", version="1")
    demo_grid(suite, 0.0, [pool], vary=lambda n, v: 1 - law(n, v) + 0.01)
    demo_grid(suite, 0.0, [quecc], vary=lambda n, v: 1 - law(n, v) - 0.01)

    report = refit_all()

    statuses = {(f["scope"], f["law"]): f["status"] for f in report["fits"] if f["suite"] == "synthetic"}
    assert statuses[("all", "multiplicative")] == "fitted"
    fit = ScalingLawFit.objects.get(suite=suite, scope="all", law="multiplicative", query_tokens=0)
    # one compressor 0.01 above the law, the other 0.01 below: their means lie on it
    assert fit.params["alpha"] == pytest.approx(0.3, rel=1e-3) and fit.params["beta"] == pytest.approx(0.1, rel=1e-3)
    assert fit.n_points == 24 and len(fit.residuals) == 24
    assert fit.sse == pytest.approx(24 * 0.01**2, rel=1e-3)
    assert fit.method["repeats"].startswith("replicates pooled")
    assert (fit.method["checkpoints"], fit.method["configurations"], fit.method["repeated_configurations"]) == (24, 12, 12)
    assert fit.method["bootstrap"]["resampled"] == "checkpoints" and fit.method["bootstrap"]["n_resamples"] == 200


def test_latest_results_keep_the_newest_value_per_checkpoint_benchmark_and_metric_in_one_query(
    django_assert_num_queries
):
    """One SQL query (DISTINCT ON on PostgreSQL, a subquery elsewhere), not 10^6 ids sent back (issue #16)."""
    from webapp.fits.selectors import latest_results
    from webapp.registry.models import CheckpointStatus, EvaluationRun

    suite = BenchmarkSuite.objects.get(name="synthetic")
    first = factories.measured_checkpoint(suite, {"shapes": 0.2, "glyphs": 0.3}, n_params=10**6)
    rerun = EvaluationRun.objects.create(checkpoint=first, suite=suite)
    factories.record_result(rerun, "shapes", 0.6)  # newer: replaces 0.2; glyphs keeps 0.3
    factories.record_result(rerun, "shapes", 0.7, metric="other_metric")
    second = factories.measured_checkpoint(suite, {"shapes": 0.5}, n_params=2 * 10**6)
    rejected = factories.measured_checkpoint(suite, {"shapes": 0.9}, n_params=3 * 10**6)
    Checkpoint.objects.filter(pk=rejected.pk).update(status=CheckpointStatus.REJECTED)

    with django_assert_num_queries(1):
        frame = latest_results(suite)

    got = sorted(frame[["checkpoint", "benchmark", "metric", "value"]].itertuples(index=False, name=None))
    assert got == sorted([
        (first.pk, "glyphs", "exact_match", 0.3), (first.pk, "shapes", "exact_match", 0.6),
        (first.pk, "shapes", "other_metric", 0.7), (second.pk, "shapes", "exact_match", 0.5),
    ])


def test_a_fit_s_fingerprint_depends_on_its_points_not_on_their_order():
    import pandas as pd

    from webapp.leaderboard.services.refit import fingerprint

    points = pd.DataFrame({"checkpoint": [3, 1, 2], "llm_params_b": [0.5, 1.8, 4.0], "visual_tokens": [1, 16, 576],
                           "error": [0.31, 0.27, 0.22]})
    same = fingerprint(points, "multiplicative")
    assert fingerprint(points.iloc[::-1].reset_index(drop=True), "multiplicative") == same
    assert fingerprint(points, "additive") != same
    for column, value in (("error", 0.270001), ("visual_tokens", 4), ("llm_params_b", 1.9), ("checkpoint", 9)):
        changed = points.copy()
        changed.loc[1, column] = value
        assert fingerprint(changed, "multiplicative") != same, column
    assert fingerprint(points.iloc[:2], "multiplicative") != same


def test_a_refit_rescores_only_checkpoints_with_new_results_and_all_of_them_when_asked(fast_bootstrap):
    """A refit after one new result must cost what changed, not a pass over every result (issue #16)."""
    from datetime import timedelta

    from django.utils import timezone

    from webapp.registry.models import BenchmarkResult, EvaluationRun

    suite = BenchmarkSuite.objects.get(name="synthetic")
    old = factories.measured_checkpoint(suite, {"shapes": 0.4, "glyphs": 0.6}, n_params=10**6)
    first = refit_all()
    assert first["scores"]["synthetic"] == "all checkpoints rescored"
    a_day_ago = timezone.now() - timedelta(days=1)
    BenchmarkResult.objects.update(created_at=a_day_ago)  # results from well before that refit
    SuiteScore.objects.filter(checkpoint=old, suite=suite).update(error=0.99)  # no new result: left alone

    new = factories.measured_checkpoint(suite, {"shapes": 0.8, "glyphs": 0.8}, n_params=2 * 10**6)
    SuiteScore.objects.filter(checkpoint=new, suite=suite).delete()  # as if its recording had not scored it
    second = refit_all()

    assert second["scores"]["synthetic"] == "1 checkpoint(s) with new results rescored"
    assert SuiteScore.objects.get(checkpoint=new, suite=suite).error == pytest.approx(0.2)
    assert SuiteScore.objects.get(checkpoint=old, suite=suite).error == 0.99
    rerun = EvaluationRun.objects.create(checkpoint=old, suite=suite)
    factories.record_result(rerun, "shapes", 0.5)  # a newer result of the old checkpoint: rescored again
    BenchmarkResult.objects.filter(run__checkpoint=new).update(created_at=a_day_ago)
    assert refit_all()["scores"]["synthetic"] == "1 checkpoint(s) with new results rescored"
    assert SuiteScore.objects.get(checkpoint=old, suite=suite).error == pytest.approx(1 - (0.5 + 0.6) / 2)

    SuiteScore.objects.filter(checkpoint=old, suite=suite).update(error=0.99)
    assert refit_all(full=True)["scores"]["synthetic"] == "all checkpoints rescored"
    assert SuiteScore.objects.get(checkpoint=old, suite=suite).error == pytest.approx(1 - (0.5 + 0.6) / 2)


def test_a_changed_normalisation_rescores_every_checkpoint(fast_bootstrap):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    checkpoint = factories.measured_checkpoint(suite, {"shapes": 0.4, "glyphs": 0.6}, n_params=10**6)
    refit_all()
    Benchmark.objects.filter(suite=suite, key="shapes").update(full_scale=2.0)  # shapes now scores 0.4 / 2

    assert refit_all()["scores"]["synthetic"] == "all checkpoints rescored"
    assert SuiteScore.objects.get(checkpoint=checkpoint, suite=suite).error == pytest.approx(1 - (0.2 + 0.6) / 2)
