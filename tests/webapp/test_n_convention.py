"""One N convention, stated (issue 17): LLMs store the parameters counted from the weights and, where known, the
nominal size; published rows of a known model carry both, unknown ones their nominal size marked as not counted;
fits use counted N, leave out (and name) the rows whose N is only nominal, and say so on their pages and APIs."""

import importlib

import factories
import pytest
from django.apps import apps
from django.core.cache import cache

from webapp.core.models import DataVersion
from webapp.fits.models import ScalingLawFit
from webapp.leaderboard.services import refit_all
from webapp.leaderboard.services.scores import published_scores_load
from webapp.registry.models import BenchmarkSuite, Checkpoint, CheckpointStatus, Compressor, LanguageModel
from webapp.registry.services import checkpoint_accept

pytestmark = pytest.mark.django_db

COUNTED_MEANING = "parameters counted from the weights (tied embeddings once)"


@pytest.fixture
def fast_bootstrap(settings):
    settings.FRONTIER_FIT_BOOTSTRAP_RESAMPLES = 100


def law(n_params, tokens):
    return 0.9 / ((n_params / 1e6) ** 0.3 * tokens ** 0.1) + 0.05


def published_table(tmp_path, rows):
    path = tmp_path / "published.csv"
    path.write_text("llm_family,llm_params_b,compressor,visual_tokens,avg_score\n"
                    + "".join(f"{family},{size},{method},{tokens},{score}\n"
                              for family, size, method, tokens, score in rows))
    return path


def test_published_rows_store_the_counted_n_where_the_model_is_known_and_the_nominal_size_always(tmp_path):
    table = published_table(tmp_path, [
        ("qwen1.5-chat", 0.5, "tokenpacker", 4, 0.39), ("qwen1.5-chat", 7, "tokenpacker", 4, 0.52),
        ("mystery-llm", 3, "tokenpacker", 4, 0.45),
    ])

    published_scores_load(table)
    published_scores_load(table)  # re-loading changes nothing

    rows = {llm.name: (llm.n_params, llm.n_params_nominal, llm.n_params_counted)
            for llm in LanguageModel.objects.filter(revision="published")}
    assert rows == {
        "qwen1.5-chat-0.5b": (463_987_712, 500_000_000, True),
        "qwen1.5-chat-7b": (7_721_324_544, 7_000_000_000, True),
        "mystery-llm-3b": (3_000_000_000, 3_000_000_000, False),
    }
    assert Checkpoint.objects.filter(published=True).count() == 3


def test_an_upload_keeps_its_counted_n_and_gets_the_size_its_name_gives():
    checkpoint = Checkpoint.objects.create(name="upload", status=CheckpointStatus.VALIDATING)
    report = {"llm_params": 463_987_712, "compressor_method": "avgpool", "visual_tokens": 4, "compressor_params": 10,
              "checkpoint_sha256": "a" * 64, "total_bytes": 1}
    config = {"text_config": {"_name_or_path": "Qwen/Qwen1.5-0.5B-Chat", "model_type": "qwen2", "hidden_size": 1024}}

    checkpoint_accept(checkpoint, report=report, config=config, files_prefix="checkpoints/x/files")

    llm = Checkpoint.objects.get(pk=checkpoint.pk).llm
    assert (llm.n_params, llm.n_params_nominal, llm.n_params_counted) == (463_987_712, 500_000_000, True)


def test_a_counted_n_fit_leaves_out_a_published_row_of_an_unknown_model_and_says_so(fast_bootstrap, tmp_path, client):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    pool = Compressor.objects.create(method="avgpool", version="1")
    for n in (1_000_000, 4_000_000, 16_000_000):
        for v in (1, 4, 16, 64):
            value = 1 - law(n, v)
            factories.measured_checkpoint(suite, {"shapes": value, "glyphs": value}, n_params=n, tokens=v, method=pool)
    # Far off the law: a fit that took it in would not find the measured exponents.
    published_scores_load(published_table(tmp_path, [("mystery-llm", 0.002, "avgpool", 4, 0.9)]),
                          suite_name="synthetic")
    unknown = Checkpoint.objects.get(published=True)

    report = refit_all()

    fit = ScalingLawFit.objects.get(suite=suite, scope="all", law="multiplicative", query_tokens=0)
    assert fit.n_points == 12 and fit.params["alpha"] == pytest.approx(0.3, rel=1e-3)
    assert (fit.method["n_convention"], fit.method["n_left_out"], fit.method["n_left_out_checkpoints"]) == (
        "counted", 1, [unknown.pk])
    assert fit.method["n_meaning"] == COUNTED_MEANING
    # The published row's own scope has no counted N at all: it cannot be fitted, and the reason says why.
    alone = next(f for f in report["fits"] if f["scope"] == "avgpool/paper" and f["law"] == "multiplicative")
    assert alone["status"] == "cannot_fit" and alone["n_left_out"] == 1
    assert "1 checkpoint(s) left out: N not parameters counted from the weights" in alone["reason"]

    # The convention is part of the fingerprint, and stable: a second refit changes nothing.
    again = refit_all()
    assert {f["status"] for f in again["fits"] if f["suite"] == "synthetic"} == {"unchanged"}

    cache.clear()
    table = client.get("/api/v1/compressors/", {"suite": "synthetic"}).json()
    assert table["n_convention"] == {"name": "counted", "meaning": COUNTED_MEANING}
    everything = next(scope for scope in table["scopes"] if scope["scope"] == "all")["laws"][0]
    assert (everything["n_convention"], everything["n_left_out"], everything["n_left_out_checkpoints"]) == (
        "counted", 1, [unknown.pk])
    frontier = client.get("/api/v1/frontier/", {"suite": "synthetic"}).json()
    assert {(curve["n_convention"], curve["n_left_out"]) for curve in frontier["laws"]} == {("counted", 1)}
    page = client.get("/compressors/", {"suite": "synthetic"}).content.decode()
    assert f"N: {COUNTED_MEANING}." in page and "1 checkpoint left out: N not" in page


def test_a_change_of_convention_refits_once_on_the_other_n(fast_bootstrap, tmp_path, settings):
    table = published_table(tmp_path, [("qwen1.5-chat", size, "tokenpacker", v, 0.3 + 0.02 * i + 0.01 * j)
                                       for i, size in enumerate((0.5, 1.8, 4, 7)) for j, v in enumerate((1, 4, 16))])
    published_scores_load(table)
    refit_all()
    counted = ScalingLawFit.objects.get(suite__name="reasoning", scope="all", law="multiplicative", query_tokens=0)
    sizes = {row["llm_params_b"] for row in counted.residuals}
    assert sizes == {0.463987712, 1.836828672, 3.95036928, 7.721324544}

    settings.FRONTIER_FIT_N_CONVENTION = "nominal"
    report = refit_all()

    assert {f["status"] for f in report["fits"] if f["suite"] == "reasoning"} <= {"fitted", "cannot_fit"}
    nominal = ScalingLawFit.objects.filter(suite__name="reasoning", scope="all", law="multiplicative",
                                           query_tokens=0).latest("id")
    assert nominal.method["n_convention"] == "nominal"
    assert {row["llm_params_b"] for row in nominal.residuals} == {0.5, 1.8, 4.0, 7.0}
    assert {f["status"] for f in refit_all()["fits"] if f["suite"] == "reasoning"} == {"unchanged"}


def test_the_apis_and_the_leaderboard_say_what_n_is(tmp_path, client):
    published_scores_load(published_table(tmp_path, [
        ("qwen1.5-chat", 0.5, "tokenpacker", 4, 0.39), ("mystery-llm", 3, "tokenpacker", 4, 0.45)]))

    checkpoints = {row["llm"].split(" ")[0]: row for row in client.get("/api/v1/checkpoints/").json()["results"]}
    assert {name: (row["llm_params"], row["llm_params_nominal"], row["llm_params_counted"])
            for name, row in checkpoints.items()} == {
        "qwen1.5-chat-0.5b": (463_987_712, 500_000_000, True), "mystery-llm-3b": (3_000_000_000, 3_000_000_000, False)}
    rows = client.get("/api/v1/leaderboard/", {"suite": "reasoning"}).json()["results"]
    assert {row["llm"]: (row["n_params"], row["n_params_nominal"], row["n_params_counted"]) for row in rows} == {
        "qwen1.5-chat-0.5b": (463_987_712, 500_000_000, True), "mystery-llm-3b": (3_000_000_000, 3_000_000_000, False)}
    page = client.get("/leaderboard/", {"suite": "reasoning"}).content.decode()
    assert 'title="LLM parameters counted from the weights (tied embeddings once)' in page
    assert "463987712 parameters counted from the weights; nominal size" in page
    assert "nominal size 3000000000 (not counted from the weights" in page


def test_the_migration_gives_published_rows_their_nominal_and_where_known_their_counted_n():
    migration = importlib.import_module("webapp.registry.migrations.0010_published_llms_counted_n")
    known = LanguageModel.objects.create(name="qwen1.5-chat-1.8b", family="qwen1.5-chat", revision="published",
                                         n_params=1_800_000_000)
    unknown = LanguageModel.objects.create(name="other-2b", family="other", revision="published",
                                           n_params=2_000_000_000)
    upload = LanguageModel.objects.create(name="Qwen/Qwen1.5-4B-Chat", family="qwen2", revision="abc",
                                          n_params=3_950_369_280)
    before = DataVersion.objects.get(pk=1).counter if DataVersion.objects.filter(pk=1).exists() else None

    migration.forwards(apps, None)

    values = {llm.pk: (llm.n_params, llm.n_params_nominal, llm.n_params_counted)
              for llm in LanguageModel.objects.all()}
    assert values[known.pk] == (1_836_828_672, 1_800_000_000, True)
    assert values[unknown.pk] == (2_000_000_000, 2_000_000_000, False)
    assert values[upload.pk] == (3_950_369_280, 4_000_000_000, True)
    if before is not None:
        assert DataVersion.objects.get(pk=1).counter == before + 1

    migration.backwards(apps, None)
    assert LanguageModel.objects.get(pk=known.pk).n_params == 1_800_000_000
