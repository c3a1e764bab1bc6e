"""Training runs and sweeps through the REST API: every bad config refused with its reason before
anything is queued, owner-only access, sweeps expand to one run per grid point, cancel, live curves."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from webapp.jobs.models import Job, JobState
from webapp.jobs.services import job_submit
from webapp.registry.models import Checkpoint, CheckpointStatus
from webapp.training.models import Sweep, TrainingLoss, TrainingRun
from webapp.training.services import (
    TRAIN_TASK,
    training_attempt_resumed,
    training_losses_complete,
    training_progress_record,
)

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
TINY = {"llm_hidden": 32, "llm_layers": 1}


@pytest.fixture(autouse=True)
def data_root(local_media, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.FRONTIER_TRAINING_DATA_ROOT = tmp_path / "datasets"
    settings.FRONTIER_TRAINING_DATA_ROOT.mkdir()
    return settings.FRONTIER_TRAINING_DATA_ROOT


def spec(**changes) -> dict:
    values = {
        "name": "tiny avgpool V=4",
        "base": {"tiny": TINY},
        "compressor": "avgpool",
        "tokens": 4,
        "dataset": {"kind": "synthetic-shapes", "count": 16},
        "hyperparameters": {"batch_size": 4, "max_steps": 5, "learning_rate": 5e-3},
        "suites": ["synthetic"],
        "eval_limit": 4,
    }
    return {**values, **changes}


def tiny_checkpoint(tmp_path, owner, status=CheckpointStatus.READY, **tiny_options) -> Checkpoint:
    """A registered checkpoint row carrying a real tiny model's config (what the checks read)."""
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / f"tiny-{len(list(tmp_path.iterdir()))}", **tiny_options)
    config = json.loads((folder / "config.json").read_text())
    return Checkpoint.objects.create(owner=owner, name="tiny base", status=status, config=config)


def queued_run(owner, name="queued") -> TrainingRun:
    """A run as training_run_start stores it, created directly."""
    job = job_submit(task_name=TRAIN_TASK, params={"training": name}, created_by=owner)
    return TrainingRun.objects.create(
        owner=owner, name=name, job=job, tiny_model=TINY, compressor="avgpool", visual_tokens=4,
        dataset={"kind": "synthetic-shapes", "count": 16}, hyperparameters={"max_steps": 5},
    )


def assert_refused(response, *fragments):
    assert response.status_code == 400, response.json()
    text = json.dumps(response.json())
    for fragment in fragments:
        assert fragment in text, text
    assert not TrainingRun.objects.exists() and not Sweep.objects.exists()
    assert not Job.objects.filter(task_name=TRAIN_TASK).exists()


def test_a_valid_spec_is_checked_and_queued_on_gpu_train(alice, client_for, settings):
    response = client_for(alice).post("/api/v1/trainings/", spec(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    run = TrainingRun.objects.get()
    assert response["Location"].endswith(f"/api/v1/trainings/{run.pk}/")
    assert body["state"] == "queued" and body["owner"] == "alice" and body["checkpoint"] is None
    assert body["losses"] == {"since": 0, "last_step": 0, "downsampled": False, "steps": [], "loss": []}
    assert run.job.task_name == TRAIN_TASK and run.job.state == JobState.QUEUED
    assert settings.CELERY_TASK_ROUTES[TRAIN_TASK] == {"queue": "gpu-train"}
    assert run.tiny_model == {**TINY, "llm_family": "qwen2", "seed": 0}
    assert run.hyperparameters["save_every"] == settings.FRONTIER_TRAINING_SAVE_EVERY
    assert run.hyperparameters["lr_schedule"] == "cosine" and run.hyperparameters["max_steps"] == 5


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"compressor": "zigzag"}, ["unknown compressor method 'zigzag'", "avgpool, tokenpacker, quecc"]),
        ({"tokens": 5}, ["'avgpool' does not support V=5", "allowed values: 1, 4, 9, 16"]),
        ({"hyperparameters": {"max_steps": 5, "epochs": 1.0}}, ["give exactly one of max_steps and epochs"]),
        ({"hyperparameters": {"lr": 0.1}}, ["hyperparameters", "lr", "Unknown field"]),
        ({"suites": ["nonsense"]}, ["Unknown suite(s) nonsense"]),
        ({"base": {"tiny": {"llm_hidden": 36}}}, ["tiny.llm_hidden must be a multiple of 8"]),
        ({"dataset": {"kind": "llava", "json": "../outside.json", "images": "images"}},
         ["outside the training data root"]),
    ],
    ids=["unknown-method", "unsupported-V", "steps-and-epochs", "misspelt-field", "unknown-suite", "tiny-width",
         "dataset-outside-root"],
)
def test_a_bad_config_is_refused_with_its_reason_and_nothing_is_queued(alice, client_for, changes, fragments):
    assert_refused(client_for(alice).post("/api/v1/trainings/", spec(**changes), format="json"), *fragments)


def test_the_web_process_checks_a_config_without_importing_torch():
    """The check runs in the web process (no child process), so it must not pull torch in."""
    code = """
import sys
import django
django.setup()
import webapp.urls
from webapp.training.configs import training_config_problems
from webapp.training.models import TrainingRun
run = TrainingRun(tiny_model={"llm_hidden": 32, "llm_layers": 1}, compressor="avgpool", visual_tokens=5,
                  dataset={"kind": "synthetic-shapes"}, hyperparameters={"max_steps": 5})
print(training_config_problems(run))
print(sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers")))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings"},
    )
    problems, heavy_modules = done.stdout.splitlines()
    assert "'avgpool' does not support V=5" in problems
    assert heavy_modules == "[]"


def test_a_llava_dataset_with_missing_images_is_refused_naming_and_counting_them(alice, client_for, data_root):
    from PIL import Image

    (data_root / "images").mkdir()
    Image.new("RGB", (8, 8)).save(data_root / "images" / "a.png")
    records = [
        {"id": str(i), "image": name, "conversations": [{"from": "human", "value": "<image>\nwhat?"},
                                                        {"from": "gpt", "value": "a square"}]}
        for i, name in enumerate(["a.png", "b.png", "c.png"])
    ]
    (data_root / "train.json").write_text(json.dumps(records))

    response = client_for(alice).post(
        "/api/v1/trainings/", spec(dataset={"kind": "llava", "json": "train.json", "images": "images"}), format="json"
    )

    assert_refused(response, "2 of 3 images", "missing", "b.png, c.png")


def test_an_llm_width_mismatch_with_the_compressor_source_is_refused(alice, client_for, tmp_path):
    source = tiny_checkpoint(tmp_path, alice, compressor="avgpool", tokens=4, llm_hidden=64)

    response = client_for(alice).post("/api/v1/trainings/", spec(compressor_from=source.pk), format="json")

    assert_refused(response, "LLM width mismatch", f"checkpoint {source.pk} (tiny base)", "hidden size 32")


def test_a_base_checkpoint_must_be_visible_and_ready(alice, bob, client_for, tmp_path):
    private = tiny_checkpoint(tmp_path, bob)
    validating = tiny_checkpoint(tmp_path, alice, status=CheckpointStatus.VALIDATING)
    client = client_for(alice)

    assert_refused(client.post("/api/v1/trainings/", spec(base={"checkpoint": private.pk}), format="json"),
                   f"no checkpoint {private.pk} you can see")
    assert_refused(client.post("/api/v1/trainings/", spec(base={"checkpoint": validating.pk}), format="json"),
                   "is validating", "only from ready checkpoints")


def test_a_ready_base_checkpoint_is_accepted(alice, client_for, tmp_path):
    base = tiny_checkpoint(tmp_path, alice, compressor="avgpool", tokens=16, llm_hidden=32, llm_layers=1)

    response = client_for(alice).post("/api/v1/trainings/", spec(base={"checkpoint": base.pk}), format="json")

    assert response.status_code == 201, response.json()
    assert TrainingRun.objects.get().base_checkpoint == base


def test_runs_are_visible_and_cancellable_by_their_owner_and_staff_only(alice, bob, client_for):
    run = queued_run(alice)
    staff = get_user_model().objects.create_user("root", is_staff=True)

    assert client_for(bob).get(f"/api/v1/trainings/{run.pk}/").status_code == 404
    assert client_for(bob).post(f"/api/v1/trainings/{run.pk}/cancel/").status_code == 404
    assert client_for(bob).get("/api/v1/trainings/").json()["count"] == 0
    assert [row["id"] for row in client_for(alice).get("/api/v1/trainings/").json()["results"]] == [run.pk]
    assert client_for(staff).get(f"/api/v1/trainings/{run.pk}/").status_code == 200
    assert APIClient().get(f"/api/v1/trainings/{run.pk}/").status_code in (401, 403)


def test_cancel_ends_a_queued_run_and_a_second_cancel_conflicts(alice, client_for):
    run = queued_run(alice)
    client = client_for(alice)

    response = client.post(f"/api/v1/trainings/{run.pk}/cancel/")

    assert response.status_code == 202, response.json()
    assert response.json()["state"] == "cancelled"
    run.job.refresh_from_db()
    assert run.job.state == JobState.CANCELLED and "cancelled by alice" in run.job.error
    again = client.post(f"/api/v1/trainings/{run.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


SWEEP = {
    "name": "grid",
    "bases": [{"tiny": {"llm_hidden": 16, "llm_layers": 1}}, {"tiny": {"llm_hidden": 32, "llm_layers": 1}}],
    "compressors": ["avgpool", "quecc"],
    "tokens": [1, 4],
    "dataset": {"kind": "synthetic-shapes", "count": 8},
    "hyperparameters": {"batch_size": 2, "max_steps": 2},
    "suites": ["synthetic"],
    "eval_limit": 2,
}


def test_a_sweep_creates_one_queued_run_per_grid_point(alice, bob, client_for):
    response = client_for(alice).post("/api/v1/sweeps/", SWEEP, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["runs"] == 8 and len(body["points"]) == 8
    grid = {(p["tiny_model"]["llm_hidden"], p["compressor"], p["visual_tokens"]) for p in body["points"]}
    assert grid == {(h, c, v) for h in (16, 32) for c in ("avgpool", "quecc") for v in (1, 4)}
    assert all(p["state"] == "queued" and p["suite_errors"] == {} and p["eval_limit"] == 2 for p in body["points"])
    assert len({p["name"] for p in body["points"]}) == 8
    assert Job.objects.filter(task_name=TRAIN_TASK, state=JobState.QUEUED).count() == 8
    sweep_id = body["id"]
    assert client_for(alice).get("/api/v1/sweeps/").json()["results"][0]["runs"] == 8
    assert client_for(bob).get(f"/api/v1/sweeps/{sweep_id}/").status_code == 404


def test_a_base_s_own_hyperparameters_override_the_sweep_s_for_its_points_only(alice, client_for):
    bases = [
        {"tiny": {"llm_hidden": 16, "llm_layers": 1}},
        {"tiny": {"llm_hidden": 32, "llm_layers": 1}, "hyperparameters": {"learning_rate": 5e-4, "max_steps": 3}},
    ]
    grid = {**SWEEP, "bases": bases, "hyperparameters": {"batch_size": 2, "max_steps": 2, "learning_rate": 2e-3}}

    response = client_for(alice).post("/api/v1/sweeps/", grid, format="json")

    assert response.status_code == 201, response.json()
    chosen = {
        (run.tiny_model["llm_hidden"], run.hyperparameters["learning_rate"], run.hyperparameters["max_steps"],
         run.hyperparameters["batch_size"])
        for run in TrainingRun.objects.all()
    }
    assert chosen == {(16, 2e-3, 2, 2), (32, 5e-4, 3, 2)}
    misspelt = {**grid, "bases": [{"tiny": {"llm_hidden": 16}, "hyperparameters": {"learning_rat": 1e-3}}]}
    refused = client_for(alice).post("/api/v1/sweeps/", misspelt, format="json")
    assert refused.status_code == 400 and "learning_rat" in str(refused.json())


def test_a_sweep_with_one_bad_point_queues_nothing_and_names_the_point(alice, client_for):
    grid = {**SWEEP, "compressors": ["avgpool", "prumerge"], "tokens": [1, 5]}  # PruMerge takes any V, pooling squares

    response = client_for(alice).post("/api/v1/sweeps/", grid, format="json")

    assert_refused(
        response, "Invalid sweep, nothing was queued", "point 2 of 8 (tiny qwen2 d=16 x1, avgpool, V=5)",
        "point 6 of 8 (tiny qwen2 d=32 x1, avgpool, V=5)", "does not support V=5",
    )
    assert "point 4 of 8" not in response.json()["detail"]


def test_the_loss_curve_is_downsampled_and_fetched_incrementally(alice, client_for, settings):
    run = queued_run(alice)
    settings.FRONTIER_TRAINING_CURVE_POINTS = 100
    training_progress_record(run.pk, losses=[(step, 1.0 / step) for step in range(1, 2501)],
                             steps_done=2500, steps_total=3000, eta_seconds=60.0)
    client = client_for(alice)

    whole = client.get(f"/api/v1/trainings/{run.pk}/").json()
    tail = client.get(f"/api/v1/trainings/{run.pk}/?since=2450").json()

    curve = whole["losses"]
    assert curve["downsampled"] and curve["last_step"] == 2500 and len(curve["steps"]) == 100
    assert curve["steps"][0] == 25 and curve["steps"][-1] == 2500
    assert curve["loss"][-1] == pytest.approx(sum(1.0 / s for s in range(2476, 2501)) / 25)
    assert tail["losses"]["steps"] == list(range(2451, 2501)) and not tail["losses"]["downsampled"]
    assert whole["steps_done"] == 2500 and whole["steps_total"] == 3000 and whole["last_loss"] == 1.0 / 2500
    assert whole["progress"] == pytest.approx(2500 / 3000)
    assert client.get(f"/api/v1/trainings/{run.pk}/?since=x").status_code == 400


def test_a_resumed_attempt_keeps_the_curve_one_row_per_step(alice):
    run = queued_run(alice)
    training_progress_record(run.pk, losses=[(step, 10.0 - step) for step in range(1, 8)],
                             steps_done=7, steps_total=10, eta_seconds=None)

    training_attempt_resumed(run.pk, 5)  # the lost attempt's steps 6-7 are computed again
    training_progress_record(run.pk, losses=[(6, 4.5), (8, 2.5)], steps_done=8, steps_total=10, eta_seconds=None)
    training_losses_complete(run.pk, [10.0 - step for step in range(1, 11)])

    rows = list(TrainingLoss.objects.filter(run=run).values_list("step", "loss"))
    assert [step for step, _ in rows] == list(range(1, 11))
    assert dict(rows)[6] == 4.5 and dict(rows)[7] == 3.0 and dict(rows)[10] == 0.0
    run.refresh_from_db()
    assert run.resumed_from_step == 5 and run.steps_done == run.steps_total == 10 and run.eta_at is None


def under_a_strict_wsgi_server(method: str, path: str, body: dict, token: str) -> tuple[str, dict]:
    """Call the project's WSGI app through wsgiref's validator, which (like wsgiref's and other strict
    servers) refuses header values that are not exactly ``str``; gunicorn lets str subclasses through."""
    import io
    import json
    from wsgiref.util import setup_testing_defaults
    from wsgiref.validate import validator

    from django.core.wsgi import get_wsgi_application

    payload = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(payload)), "wsgi.input": io.BytesIO(payload),
               "HTTP_AUTHORIZATION": f"Token {token}", "SERVER_NAME": "testserver", "SCRIPT_NAME": "",
               "QUERY_STRING": ""}
    setup_testing_defaults(environ)
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered.update(status=status, headers=dict(headers))
        return lambda data: None

    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    # As Django's test client does: the handler would close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = validator(get_wsgi_application())(environ, start_response)
        try:
            for _ in result:
                pass
        finally:
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answered["status"], answered["headers"]


def test_a_created_training_answers_a_strict_wsgi_server_with_a_plain_location(alice, settings):
    from webapp.accounts.services import api_token_create

    settings.ALLOWED_HOSTS = ["testserver"]
    _, token = api_token_create(user=alice)
    status, headers = under_a_strict_wsgi_server("POST", "/api/v1/trainings/", spec(), token)
    assert status.startswith("201"), (status, headers)
    assert type(headers["Location"]) is str and "/api/v1/trainings/" in headers["Location"]


@pytest.mark.parametrize("path", ["/api/v1/trainings/", "/api/v1/sweeps/", "/api/v1/evaluations/", "/api/v1/uploads/",
                                  "/api/v1/checkpoints/"])
def test_json_nested_a_thousand_deep_is_a_400_with_a_message_on_every_json_post(alice, client_for, path):
    body = "[" * 1000 + "]" * 1000
    response = client_for(alice).generic("POST", path, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "JSON nested deeper than 32 levels is refused" in response.json()["detail"]
    shallow_but_too_deep = "{\"a\": " * 40 + "1" + "}" * 40  # within the decoder's limit, past ours
    response = client_for(alice).generic("POST", path, shallow_but_too_deep, content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]


def test_an_eval_limit_past_the_database_integer_is_a_400(alice, client_for):
    response = client_for(alice).post("/api/v1/trainings/", spec(eval_limit=2**70), format="json")
    assert response.status_code == 400 and "eval_limit" in response.json(), response.content[:300]
    assert not TrainingRun.objects.exists()


def test_a_huge_sweep_grid_is_refused_from_its_axis_lengths_before_it_is_built(alice, client_for, monkeypatch):
    """100 bases x 100 compressors x 100 token counts is a 6 KB body and a million points: the service counts
    them from the axes and never expands the grid."""
    from webapp.training import services

    def expanded(spec):
        raise AssertionError("the grid was built")

    monkeypatch.setattr(services, "sweep_points", expanded)
    huge = {**SWEEP, "bases": [{"tiny": {"llm_hidden": 16 + 8 * i}} for i in range(100)],
            "compressors": ["avgpool"] * 100, "tokens": [1] * 100}
    response = client_for(alice).post("/api/v1/sweeps/", huge, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["detail"].startswith("The grid has 100 bases x 100 compressors x 100 token counts = 1,000,000")
    assert not Sweep.objects.exists() and not TrainingRun.objects.exists()


def test_trainings_have_per_user_quotas_and_a_sweep_counts_as_its_points(alice, bob, client_for, settings):
    settings.FRONTIER_QUOTA_CONCURRENT_TRAININGS = 9
    settings.FRONTIER_QUOTA_TRAININGS_PER_DAY = 10
    client = client_for(alice)
    assert client.post("/api/v1/sweeps/", SWEEP, format="json").status_code == 201  # 8 points
    assert client.post("/api/v1/trainings/", spec(), format="json").status_code == 201  # the 9th
    refused = client.post("/api/v1/trainings/", spec(), format="json")
    assert refused.status_code == 429 and "You have 9 trainings queued or running" in refused.json()["detail"]
    refused_sweep = client.post("/api/v1/sweeps/", SWEEP, format="json")
    assert refused_sweep.status_code == 429 and "asked for 8 more; the limit is 9" in refused_sweep.json()["detail"]
    assert TrainingRun.objects.filter(owner=alice).count() == 9 and Sweep.objects.count() == 1  # all or none

    for run in TrainingRun.objects.filter(owner=alice)[:8]:  # finished: no longer queued
        Job.objects.filter(pk=run.job_id).update(state=JobState.SUCCEEDED)
    assert client.post("/api/v1/trainings/", spec(), format="json").status_code == 201  # 10 today
    daily = client.post("/api/v1/trainings/", spec(), format="json")
    assert daily.status_code == 429 and "You started 10 trainings in the last 24 hours" in daily.json()["detail"]
    assert client_for(bob).post("/api/v1/trainings/", spec(), format="json").status_code == 201  # per user


def test_numbers_past_their_bounds_are_refused_before_anything_is_queued(alice, client_for):
    hyper = {"batch_size": 10**9, "max_steps": 10**30, "learning_rate": 1e308, "seed": 2**70}
    response = client_for(alice).post("/api/v1/trainings/", spec(hyperparameters=hyper), format="json")
    assert response.status_code == 400, response.content[:300]
    detail = response.json()["detail"]
    assert "batch_size must be at most 4096" in detail and "max_steps must be at most 1e+07" in detail
    assert "learning_rate must be at most 1" in detail and "seed must be between 0 and 4294967295" in detail
    assert not TrainingRun.objects.exists() and not Job.objects.exists()
