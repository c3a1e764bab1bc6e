import pytest
from django.contrib.auth import get_user_model

from webapp.jobs.services import job_submit

pytestmark = pytest.mark.django_db
SLEEP = "workers.tasks.diagnostic_sleep"


@pytest.fixture
def users():
    model = get_user_model()
    return model.objects.create_user("alice"), model.objects.create_user("bob"), model.objects.create_user("ops", is_staff=True)


def test_users_see_and_cancel_only_their_own_jobs(users, client_for):
    alice, bob, ops = users
    job = job_submit(task_name=SLEEP, created_by=alice)

    assert client_for(bob).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client_for(bob).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
    assert client_for(bob).get("/api/v1/jobs/").json()["count"] == 0

    detail = client_for(alice).get(f"/api/v1/jobs/{job.pk}/").json()
    assert detail["state"] == "queued" and detail["transitions"][0]["to_state"] == "queued"
    assert client_for(ops).get("/api/v1/jobs/").json()["count"] == 1

    cancelled = client_for(alice).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
    again = client_for(alice).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_only_staff_may_queue_diagnostic_jobs(users, client_for):
    alice, _, ops = users
    assert client_for(alice).post("/api/v1/jobs/diagnostic/", {"seconds": 1}).status_code == 403
    response = client_for(ops).post("/api/v1/jobs/diagnostic/", {"seconds": 2}, format="json")
    assert response.status_code == 201 and response.json()["params"] == {"seconds": 2.0}
    bad = client_for(ops).post("/api/v1/jobs/diagnostic/", {"seconds": -1}, format="json")
    assert bad.status_code == 400 and "seconds" in bad.json()
