"""The server-rendered pages through Django's test client: what each page shows matches the JSON API
it mirrors, permissions follow the APIs (others' private checkpoints never appear), bad input gets
the API's message with a 4xx, and each page runs the same number of queries for 5 rows as for 25."""

import io
import re
from html import unescape

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from webapp.jobs.models import AttemptOutcome
from webapp.jobs.services import attempt_finish, job_claim, job_heartbeat, job_submit
from webapp.leaderboard.services import benchmark_results_record, refit_all
from webapp.registry.models import (
    Benchmark,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    Compressor,
    EvaluationRun,
    LanguageModel,
)
from webapp.registry.services import VALIDATE_TASK, run_start
from webapp.training.models import Sweep, TrainingRun
from webapp.training.services import TRAIN_TASK, training_progress_record

pytestmark = pytest.mark.django_db

STAMP = {"seed": 0, "device": "cpu", "device_name": "x86_64", "batch_size": 8,
         "model_args": {"checkpoint": "/srv/checkpoints/7/files"}}


@pytest.fixture(autouse=True)
def exact_counts(settings):
    settings.FRONTIER_FIT_BOOTSTRAP_RESAMPLES = 50
    settings.FRONTIER_DATA_VERSION_MAX_AGE_SECONDS = 0  # every read asks the database: counts are exact
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def paper():
    """The paper's table as published entries, then the fits (as `manage.py load_published` and the refit do)."""
    call_command("load_published", stdout=io.StringIO())
    refit_all()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def record(run, key, score, stamp=STAMP):
    benchmark_results_record(
        run=run, benchmark=Benchmark.objects.get(suite=run.suite, key=key),
        metrics=[{"metric": "exact_match", "value": score, "stderr": 0.01, "n": 100}], raw={}, stamp=stamp,
    )


def measured(suite, method, n_params, tokens, error, *, owner=None, visibility="public", family="tiny", name=None):
    """A ready checkpoint with results on both synthetic benchmarks, recorded through the registry service."""
    compressor, _ = Compressor.objects.get_or_create(method=method, version="1")
    llm, _ = LanguageModel.objects.get_or_create(
        name=f"{family}-{n_params}", n_params=n_params, revision="", defaults={"family": family}
    )
    checkpoint = Checkpoint.objects.create(
        owner=owner, name=name or f"{family}-{n_params / 1e6:g}m-{method}-v{tokens}", llm=llm, compressor=compressor,
        visual_tokens=tokens, status=CheckpointStatus.READY, visibility=visibility,
    )
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite)
    record(run, "shapes", 1 - error + 0.02)
    record(run, "glyphs", 1 - error - 0.02)
    return checkpoint


def row_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-checkpoint-id="(\d+)"', response.content.decode())]


def api_ids(params, user=None) -> list[int]:
    client = APIClient()
    if user:
        client.force_authenticate(user)
    response = client.get("/api/v1/leaderboard/", params)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def grid(synthetic, alice):
    made = {
        "a": measured(synthetic, "avgpool", 1_000_000_000, 1, 0.50, family="qwen"),
        "b": measured(synthetic, "avgpool", 1_000_000_000, 16, 0.40, family="qwen"),
        "c": measured(synthetic, "quecc", 4_000_000_000, 1, 0.45, family="llama"),
        "d": measured(synthetic, "quecc", 4_000_000_000, 16, 0.60, family="llama"),
        "mine": measured(synthetic, "quecc", 7_000_000_000, 4, 0.70, family="llama", owner=alice,
                         visibility="private", name="alice private"),
    }
    return {key: checkpoint.pk for key, checkpoint in made.items()}


# --- Leaderboard -------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"suite": "synthetic"},
    {"suite": "synthetic", "ordering": "-n_params"},
    {"suite": "synthetic", "ordering": "-bench:shapes"},
    {"suite": "synthetic", "ordering": "flops_q0,-error"},
    {"suite": "synthetic", "compressor": "quecc"},
    {"suite": "synthetic", "family": "qwen", "v": "16"},
    {"suite": "synthetic", "n_min": "2", "n_max": "5"},
    {"suite": "synthetic", "scope": "mine"},
    {"suite": "synthetic", "search": "private"},
    {"suite": "synthetic", "page_size": "2", "page": "2"},
])
def test_leaderboard_rows_are_the_apis_rows_in_the_same_order(alice, grid, params):
    page = logged_in(alice).get("/leaderboard/", params)

    assert page.status_code == 200
    assert row_ids(page) == api_ids(params, alice) != []


def test_leaderboard_shows_the_columns_and_export_links_of_what_is_shown(alice, grid):
    page = logged_in(alice).get("/leaderboard/", {"suite": "synthetic", "compressor": "quecc", "n_min": "", "q": "0"})
    html = page.content.decode()

    headers = re.findall(r'data-sort-key="([^"]+)"', html)
    assert headers == ["name", "error", "on_frontier", "n_params", "visual_tokens", "compressor", "flops", "flops_q0",
                       "latency_first_token_ms", "bench:glyphs", "bench:shapes", "llm", "status", "owner"]
    csv_href = re.search(r'id="export-csv" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    # The empty n_min is dropped; the export holds every filtered row (all=true), not the page.
    assert csv_href == "/api/v1/leaderboard/?suite=synthetic&compressor=quecc&q=0&all=true&format=csv"
    exported = logged_in(alice).get(csv_href)
    assert exported.status_code == 200
    assert [int(line.split(",")[0]) for line in exported.content.decode().splitlines()[1:]] == row_ids(page)
    text = text_of(page)
    assert "alice private" in text and "frontier" in text and 'title="8e09"' in html  # FLOPs at Q=0: 2 · 4e9 · 1
    assert "8 G" in text and "4 B" in text and "7 B" in text  # FLOPs and N in readable units


def test_sort_headers_flip_the_direction_of_the_current_column(alice, grid):
    html = logged_in(alice).get("/leaderboard/", {"suite": "synthetic", "ordering": "n_params"}).content.decode()

    links = dict(re.findall(r'<th scope="col" aria-sort="(\w+)"[^>]*>\s*<a href="\?([^"]+)" data-sort-key="n_params"', html))
    assert links == {"ascending": "suite=synthetic&amp;ordering=-n_params"}
    shapes = re.search(r'href="\?([^"]+)" data-sort-key="bench:shapes"', html).group(1)
    assert shapes.endswith("ordering=-bench%3Ashapes")  # scores sort best first


@pytest.mark.parametrize("params, message", [
    ({"suite": "nope"}, "Unknown suite &#x27;nope&#x27;; known suites: compressor_table, ocr, reasoning, synthetic, synthetic-detail."),
    ({"suite": "synthetic", "n_min": "lots"}, "n_min: A valid number is required."),
    ({"suite": "synthetic", "n_min": "5", "n_max": "1"}, "n_max: n_max 1 is below n_min 5."),
    ({"suite": "synthetic", "ordering": "colour"}, "Cannot sort by &#x27;colour&#x27;"),
    ({"suite": "synthetic", "page": "9"}, "page 9 is past the last page (1) of 5 rows."),
])
def test_a_bad_leaderboard_query_gets_a_400_that_says_what_to_fix(alice, grid, params, message):
    response = logged_in(alice).get("/leaderboard/", params)

    assert response.status_code == 400 and message in response.content.decode()


def test_others_private_checkpoints_never_appear(bob, alice, grid, synthetic):
    client = logged_in(bob)

    assert grid["mine"] not in row_ids(client.get("/leaderboard/", {"suite": "synthetic", "page_size": 200}))
    assert "alice private" not in client.get("/").content.decode()
    assert client.get(f"/checkpoints/{grid['mine']}/").status_code == 404
    run = EvaluationRun.objects.get(checkpoint_id=grid["mine"])
    assert client.get(f"/evaluations/{run.pk}/").status_code == 404
    assert f'data-run-id="{run.pk}"' not in client.get("/queue/").content.decode()
    assert f'data-run-id="{run.pk}"' in logged_in(alice).get("/queue/").content.decode()
    assert client.get("/leaderboard/", {"suite": "synthetic", "scope": "mine"}).status_code == 200


def test_pages_about_runs_ask_anonymous_visitors_to_log_in(grid):
    client = Client()
    for path in ("/queue/", f"/checkpoints/{grid['mine']}/", "/trainings/new/", "/trainings/1/", "/sweeps/new/",
                 "/sweeps/1/", "/upload/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), path
    assert client.get(f"/checkpoints/{grid['a']}/").status_code == 200  # public means public
    assert client.get("/leaderboard/", {"suite": "synthetic"}).status_code == 200
    answer = client.get("/leaderboard/", {"suite": "synthetic", "scope": "mine"})
    assert answer.status_code == 400 and "scope=mine needs you to be logged in" in answer.content.decode()


# --- Frontier, compressors, deploy, overview --------------------------------------------------------


def test_frontier_page_points_its_chart_at_the_api_with_its_query(paper):
    html = Client().get("/frontier/", {"suite": "reasoning", "q": "custom", "q_custom": "20", "law": "additive"})
    content = html.content.decode()

    assert 'data-api-url="/api/v1/frontier/"' in content and 'data-query="suite=reasoning&amp;q=20"' in content
    assert 'data-law="additive"' in content and "pages/vendor/plotly.min.js" in content
    assert re.search(r'value="custom" checked', content)
    bad = Client().get("/frontier/", {"suite": "reasoning", "q": "custom", "q_custom": "many"})
    assert bad.status_code == 400 and "q: A valid number is required." in bad.content.decode()
    one = Client().get("/frontier/", {"suite": "reasoning", "compressor": "tokenpacker"}).content.decode()
    assert 'data-query="suite=reasoning&amp;compressor=tokenpacker"' in one  # its law is the one drawn
    assert '<option value="tokenpacker" selected>' in one


def test_compressors_page_lists_alpha_and_beta_with_intervals_from_the_fit(paper):
    api = APIClient().get("/api/v1/compressors/", {"suite": "reasoning", "q": 50}).json()
    html = Client().get("/compressors/", {"suite": "reasoning"}).content.decode()

    law = next(entry for entry in api["scopes"][0]["laws"] if entry["law"] == "multiplicative")
    row = re.search(r'<tr data-scope="all" data-law="multiplicative">(.*?)</tr>', html, re.S).group(1)
    assert f"{law['alpha']:.3g}" in row and f"[{law['alpha_interval'][0]:.3g}, {law['alpha_interval'][1]:.3g}]" in row
    assert f"{law['beta']:.3g}" in row and "At a bound: D=0" in row
    assert 'id="residual-data"' in html and html.count('class="plot plot-small residual-plot"') == len(api["scopes"])
    alpha = re.search(r'<tr data-quantity="alpha">(.*?)</tr>', html, re.S).group(1)
    assert "0.077" in alpha and "outside the interval" in alpha
    assert "inside the interval" in re.search(r'<tr data-quantity="beta">(.*?)</tr>', html, re.S).group(1)


def test_deploy_page_gives_the_apis_recommendation_and_runners_up(paper):
    params = {"suite": "reasoning", "budget_flops": "5e11", "q": "50"}
    api = APIClient().get("/api/v1/deploy/", params).json()
    page = Client().get("/deploy/", {**params, "budget_kind": "flops", "budget_latency_ms": "", "n": "", "v": ""})

    assert page.status_code == 200
    best = api["recommended"]
    recommendation = " ".join(re.search(r'id="recommendation"[^>]*>(.*?)</p>', page.content.decode(), re.S).group(1).split())
    assert recommendation.startswith(f"N = <strong>{best['n_params_b']:.3g} B</strong>, V = <strong>{best['visual_tokens']:.3g}</strong>")
    low, high = best["error_interval"]
    assert f"{best['predicted_error']:.4g} (95 % interval [{low:.4g}, {high:.4g}])" in text_of(page)
    runners_up = re.findall(r'<tr class="runner-up">(.*?)</tr>', page.content.decode(), re.S)
    assert len(runners_up) == len(api["runners_up"]) == 5
    for config, row in zip(api["runners_up"], runners_up, strict=True):
        low, high = config["error_interval"]
        assert f"{config['predicted_error']:.4g}" in row and f"[{low:.4g}, {high:.4g}]" in row


@pytest.mark.parametrize("params, status, message", [
    ({"suite": "synthetic", "budget_kind": "flops", "budget_flops": "1e12"}, 409, "no fit yet for suite synthetic"),
    ({"suite": "reasoning", "budget_kind": "flops", "budget_flops": ""}, 400, "Give exactly one budget"),
    ({"suite": "reasoning", "budget_kind": "latency", "budget_flops": "1e12"}, 400, "Give exactly one budget"),
    ({"suite": "reasoning", "budget_kind": "flops", "budget_flops": "1e6"}, 400, "below the cheapest allowed configuration"),
    ({"suite": "reasoning", "budget_kind": "flops", "budget_flops": "lots"}, 400, "budget_flops: A valid number is required."),
])
def test_deploy_page_refuses_what_it_cannot_answer_with_the_apis_message(paper, params, status, message):
    response = Client().get("/deploy/", params)

    assert response.status_code == status and message in response.content.decode()


def test_deploy_page_without_a_submitted_form_just_shows_the_form():
    response = Client().get("/deploy/")

    assert response.status_code == 200 and "Fill in a budget" in response.content.decode()


def test_overview_shows_the_best_entries_and_fit_of_each_suite(paper, alice, grid):
    page = logged_in(alice).get("/")
    text = text_of(page)

    best = Checkpoint.objects.filter(published=True).order_by("suite_scores__error").first()
    assert f"reasoning {BenchmarkSuite.objects.get(name='reasoning').description}" in text
    reasoning = re.search(r'id="headline-reasoning">(.*?)</section>', page.content.decode(), re.S).group(1)
    assert re.findall(r'<li><a href="/checkpoints/(\d+)/">', reasoning)[0] == str(best.pk)
    assert "All 28 on the leaderboard" in text
    assert "multiplicative law on 28 points: α = 0.067" in text and "V*(Q=0) ≈" in text  # on counted N
    assert "All 5 on the leaderboard" in text  # synthetic: alice sees her private one too
    assert "Recent jobs" not in text  # staff only


# --- Runs: queue, checkpoint, evaluation ---------------------------------------------------------


def evaluated_checkpoint(suite, owner, name="tiny quecc v16"):
    """A checkpoint that went through validation and an evaluation run: shapes done (two attempts, the
    first lost), glyphs still running at 5 of 20 items."""
    compressor, _ = Compressor.objects.get_or_create(method="quecc", version="1")
    llm, _ = LanguageModel.objects.get_or_create(name="tiny-qwen2", n_params=2_000_000, revision="",
                                                 defaults={"family": "qwen2"})
    checkpoint = Checkpoint.objects.create(owner=owner, name=name, status=CheckpointStatus.UPLOADED,
                                           visibility="private")
    validation = job_submit(task_name=VALIDATE_TASK, params={"checkpoint_id": checkpoint.pk}, created_by=owner)
    attempt_finish(job_claim(validation.pk, task_id="v", hostname="cpu@test", pid=3), AttemptOutcome.SUCCEEDED)
    Checkpoint.objects.filter(pk=checkpoint.pk).update(status=CheckpointStatus.READY, llm=llm, compressor=compressor,
                                                       visual_tokens=16)
    checkpoint.refresh_from_db()
    run = run_start(checkpoint=checkpoint, suite=suite, created_by=owner)
    shapes = run.benchmark_jobs.get(benchmark__key="shapes").job
    first = job_claim(shapes.pk, task_id="s1", hostname="gpu@test", pid=4)
    attempt_finish(first, AttemptOutcome.RETRY, error_class="OutOfMemory", error_message="CUDA out of memory")
    second = job_claim(shapes.pk, task_id="s2", hostname="gpu@test", pid=4)
    record(run, "shapes", 0.8)
    attempt_finish(second, AttemptOutcome.SUCCEEDED, log_tail="evaluated 100 items\nshapes exact_match 0.8")
    glyphs = run.benchmark_jobs.get(benchmark__key="glyphs").job
    job_heartbeat(job_claim(glyphs.pk, task_id="g1", hostname="gpu@test", pid=5), progress_done=5, progress_total=20,
                  log_tail="glyphs: 5/20")
    return checkpoint, run


def test_checkpoint_page_tells_its_story(alice, synthetic):
    checkpoint, run = evaluated_checkpoint(synthetic, alice)
    page = logged_in(alice).get(f"/checkpoints/{checkpoint.pk}/")
    text = text_of(page)

    timeline = re.findall(r"<li><time[^>]*>[^<]*</time> ([^<]+?)(?: <span|</li>)", page.content.decode())
    assert timeline == ["submitted", "validation queued", "validation running", "validation succeeded",
                        f"evaluation #{run.pk} on synthetic queued"]
    assert f"Evaluation #{run.pk} on synthetic running" in text
    assert "shapes shapes succeeded" in text and "exact_match = 0.8 ± 0.01 (n = 100)" in text
    assert "2 attempts and the log tail" in text and "OutOfMemory: CUDA out of memory" in text
    assert "shapes exact_match 0.8" in text and "glyphs: 5/20" in text  # both log tails
    assert "25 %" in text  # 5 of 20 items
    # No files kept (none were stored here): the folder the worker used, the run's settings, no device.
    assert "python -m evaluation run /srv/checkpoints/7/files --tasks glyphs,shapes --batch-size 8 --json" in text
    assert "&quot;model_args&quot;" in page.content.decode()  # the reproducibility stamp
    assert "Cancel run" in text and 'data-live-active="true"' in page.content.decode()
    assert "No suite score yet" in text  # glyphs has no result yet


def test_evaluation_page_shows_the_run_and_only_its_owner_gets_the_buttons(alice, bob, synthetic):
    _, run = evaluated_checkpoint(synthetic, alice)
    Checkpoint.objects.filter(pk=run.checkpoint_id).update(visibility="public")

    mine = text_of(logged_in(alice).get(f"/evaluations/{run.pk}/"))
    theirs = text_of(logged_in(bob).get(f"/evaluations/{run.pk}/"))

    assert f"Evaluation #{run.pk} of tiny quecc v16 on synthetic" in mine and "Cancel run" in mine
    assert "Cancel run" not in theirs
    assert "glyphs: 5/20" in mine and "glyphs: 5/20" not in theirs  # log tails are the owner's (issue #15)


def test_queue_lists_evaluations_and_trainings_with_progress_and_eta(alice, synthetic):
    _, run = evaluated_checkpoint(synthetic, alice)
    training = queued_training(alice, "tiny avgpool V=4")
    training_progress_record(training.pk, losses=[(1, 2.5), (2, 2.0)], steps_done=2, steps_total=8, eta_seconds=90)
    training.job.state = "running"
    training.job.save(update_fields=["state"])

    html = logged_in(alice).get("/queue/").content.decode()

    evaluation_row = re.search(rf'<tr data-run-id="{run.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "running" in evaluation_row and '<progress max="20" value="5">' in evaluation_row  # glyphs' items
    assert "1 running, 1 succeeded" in evaluation_row
    training_row = re.search(rf'<tr data-training-id="{training.pk}">(.*?)</tr>', html, re.S).group(1)
    assert '<progress max="8" value="2">' in training_row and "25 %" in training_row and '<td class="num">2</td>' in training_row
    assert re.search(r'class="eta">1 min (2\d|30) s<', training_row)
    assert 'data-live-active="true"' in html


def queued_training(owner, name, sweep=None) -> TrainingRun:
    """A run as training_run_start stores it, without the config check (these rows name no real images)."""
    job = job_submit(task_name=TRAIN_TASK, params={"training": name}, created_by=owner)
    return TrainingRun.objects.create(
        owner=owner, name=name, job=job, sweep=sweep,
        tiny_model={"llm_hidden": 32, "llm_layers": 1, "llm_family": "qwen2", "seed": 0},
        compressor="avgpool", visual_tokens=4, dataset={"kind": "synthetic-shapes", "count": 16},
        hyperparameters={"max_steps": 8},
    )


# --- Training pages ----------------------------------------------------------------------------------


def test_training_pages_show_the_run_to_its_owner_only(alice, bob):
    run = queued_training(alice, "tiny avgpool V=4")
    sweep = Sweep.objects.create(owner=alice, name="grid", grid={})
    point = queued_training(alice, "grid / tiny avgpool V=4", sweep=sweep)

    page = logged_in(alice).get(f"/trainings/{run.pk}/").content.decode()
    assert f'data-api-url="/api/v1/trainings/{run.pk}/"' in page and f'data-cancel-url="/api/v1/trainings/{run.pk}/cancel/"' in page
    assert "tiny qwen2, hidden 32, 1 layers" in text_of(logged_in(alice).get(f"/trainings/{run.pk}/"))
    sweep_page = logged_in(alice).get(f"/sweeps/{sweep.pk}/").content.decode()
    assert f'<tr data-training-id="{point.pk}">' in sweep_page and "0 of 1 trained." in sweep_page
    for path in (f"/trainings/{run.pk}/", f"/sweeps/{sweep.pk}/"):
        assert logged_in(bob).get(path).status_code == 404


def test_training_forms_offer_the_users_ready_checkpoints_and_the_suites(alice, bob, synthetic):
    own = measured(synthetic, "avgpool", 1_000_000, 4, 0.3, owner=alice, visibility="private", name="alice base")
    measured(synthetic, "avgpool", 2_000_000, 4, 0.3, owner=bob, visibility="private", name="bob base")

    for path in ("/trainings/new/", "/sweeps/new/"):
        html = logged_in(alice).get(path).content.decode()
        assert f'<option value="{own.pk}">#{own.pk} alice base</option>' in html and "bob base" not in html
        assert 'name="suites" value="synthetic" checked' in html and 'data-api-url="/api/v1/' in html


# --- Query counts ------------------------------------------------------------------------------------


def scored(suite, owner, count):
    for index in range(count):
        measured(suite, ("avgpool", "quecc")[index % 2], 1_000_000 * (1 + index % 5), 1 + index, 0.3 + index / 100,
                 owner=owner, visibility="public")


def queries_of(client, path, params=None) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params or {})
    assert response.status_code == 200, response.content[:500]
    return len(captured)


def test_each_page_runs_the_same_few_queries_for_5_and_25_rows(alice, synthetic):
    client = logged_in(alice)
    checkpoint, _ = evaluated_checkpoint(synthetic, alice)
    training = queued_training(alice, "one")
    sweep = Sweep.objects.create(owner=alice, name="grid", grid={})
    pages = [
        ("/", None), ("/leaderboard/", {"suite": "synthetic", "ordering": "-bench:shapes"}),
        ("/frontier/", {"suite": "synthetic"}), ("/compressors/", {"suite": "synthetic"}), ("/queue/", None),
        (f"/checkpoints/{checkpoint.pk}/", None), (f"/trainings/{training.pk}/", None), (f"/sweeps/{sweep.pk}/", None),
    ]

    def grow(count):
        scored(synthetic, alice, count)
        for index in range(count):
            queued_training(alice, f"point {index}", sweep=sweep)
            run_start(checkpoint=checkpoint, suite=synthetic)
        refit_all()

    grow(5)
    few = [queries_of(client, path, params) for path, params in pages]
    grow(20)
    many = [queries_of(client, path, params) for path, params in pages]
    assert few == many, list(zip([path for path, _ in pages], few, many, strict=True))
    assert max(many) <= 40, many
    client.get(*pages[1])
    with CaptureQueriesContext(connection) as cached:
        client.get(*pages[1])
    assert len(cached) <= 5, [query["sql"] for query in cached]  # session, user, version, suites, families


def test_the_checkpoint_page_says_which_prompt_format_validation_found_and_its_warnings(alice, synthetic):
    checkpoint, _ = evaluated_checkpoint(synthetic, alice)
    checkpoint.validation_report = {"prompt_format": {"name": "chat_template", "source": "chat_template.jinja",
                                                      "template_sha256": "ab" * 32}, "warnings": []}
    checkpoint.save(update_fields=["validation_report"])
    text = text_of(logged_in(alice).get(f"/checkpoints/{checkpoint.pk}/"))
    assert "Prompt format its chat template (chat_template.jinja, SHA-256 abababababab… )" in text

    checkpoint.validation_report = {"prompt_format": {"name": "plain", "source": None, "template_sha256": None},
                                    "warnings": ["no chat template: prompts are fed as ..."]}
    checkpoint.save(update_fields=["validation_report"])
    text = text_of(logged_in(alice).get(f"/checkpoints/{checkpoint.pk}/"))
    assert "Prompt format plain: <image>\\n + the task's prompt" in text
    assert "Validation warnings no chat template: prompts are fed as ..." in text
