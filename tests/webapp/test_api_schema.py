"""The OpenAPI schema is accurate, and no request the schema allows gets a 5xx (schemathesis).

Every operation and method of /api/schema/ is exercised against the Django WSGI app, authenticated
with an API token, over a database holding one of each object so detail endpoints find something.
Nothing starts real work: without a worker, queued jobs stay rows (and in the test transaction
their messages are never published)."""

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from webapp.accounts.services import api_token_create
from webapp.jobs.services import job_submit
from webapp.registry.models import (
    BenchmarkJob,
    BenchmarkResult,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    EvaluationRun,
)
from webapp.registry.services import upload_start
from webapp.wsgi import application


def test_the_schema_generates_without_warnings(tmp_path):
    """drf-spectacular's own check: every view, serializer and parameter has an accurate schema."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/checkpoints/" in (tmp_path / "schema.yaml").read_text()


@pytest.fixture
def api_user(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.FRONTIER_REFERENCE_ROOTS = [str(tmp_path)]
    user = get_user_model().objects.create_user("schemathesis")
    suite = BenchmarkSuite.objects.get(name="synthetic")
    checkpoint = Checkpoint.objects.create(owner=user, name="seeded", status=CheckpointStatus.READY)
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite, created_by=user)
    benchmark = suite.benchmarks.first()
    job = job_submit(task_name="workers.tasks.evaluate_benchmark", params={"run_id": run.pk}, created_by=user)
    BenchmarkJob.objects.create(run=run, benchmark=benchmark, job=job)
    BenchmarkResult.objects.create(run=run, benchmark=benchmark, metric="accuracy", value=0.5)
    upload_start(owner=user, filename="seeded.tar.gz", size=10, sha256="0" * 64)
    return user


@pytest.fixture
def keep_test_connection():
    """Requests through the WSGI app must not close the test transaction's connection (Django's test client
    does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loaded at collection: serving the schema needs no database. (schemathesis.pytest.from_fixture
# would load it per test, but schemathesis 4.32.5's lazy loader reads a node attribute pytest 9 removed.)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, api_user, keep_test_connection):
    _, token = api_token_create(user=api_user)
    response = case.call(headers={"Authorization": f"Token {token}"})
    case.validate_response(response, checks=[not_a_server_error])


@pytest.mark.parametrize(
    "method, url, body, message",
    [
        ("post", "/api/v1/evaluations/", {"checkpoint": 1, "suite": "synthetic", "limit": 2**70},
         "less than or equal to 2147483647"),
        ("post", "/api/v1/evaluations/", {"checkpoint": 2**70, "suite": "synthetic"}, "less than or equal to"),
        ("get", f"/api/v1/results/?checkpoint={2**70}", None, "less than or equal to"),
        ("get", "/api/v1/results/?run=1.5", None, "Enter a whole number"),
        ("post", "/api/v1/checkpoints/{checkpoint}/hide/", [True], "Expected a dictionary"),
        ("post", "/api/v1/checkpoints/", {"name": "x", "reference": {"path": "/" + "a" * 5000}}, "4096 characters"),
    ],
)
def test_inputs_that_once_were_server_errors_are_400s(api_user, client_for, method, url, body, message):
    api_user.is_staff = True
    api_user.save()
    url = url.format(checkpoint=Checkpoint.objects.get(name="seeded").pk)
    client = client_for(api_user)
    response = client.get(url) if method == "get" else client.post(url, body, format="json")
    assert response.status_code == 400 and message in response.content.decode()


def test_an_empty_chunk_is_a_400_not_a_server_error(api_user, client_for):
    upload = api_user.uploads.get()
    response = client_for(api_user).generic(
        "PUT", f"/api/v1/uploads/{upload.pk}/", b"", content_type="application/octet-stream",
        HTTP_CONTENT_RANGE="bytes 0-9/10",
    )
    assert response.status_code == 400 and "0 of 10 bytes arrived" in response.json()["detail"]
