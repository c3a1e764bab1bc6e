"""Registration by reference through the REST API: what the web side accepts and refuses."""

import pytest
from django.contrib.auth import get_user_model

from webapp.jobs.models import Job
from webapp.registry.models import Checkpoint, CheckpointStatus
from webapp.registry.services import VALIDATE_TASK

pytestmark = pytest.mark.django_db


@pytest.fixture
def roots(settings, tmp_path):
    """An allowed root with a folder in it, and a folder outside it."""
    root = tmp_path / "shared"
    (root / "tiny").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    settings.FRONTIER_REFERENCE_ROOTS = [str(root)]
    return root


@pytest.fixture
def client(client_for):
    return client_for(get_user_model().objects.create_user("alice"))


def register(client, reference, **fields):
    body = {"name": "by reference", "reference": reference, **fields}
    return client.post("/api/v1/checkpoints/", body, format="json")


def assert_refused(response, *fragments):
    assert response.status_code == 400, response.content
    detail = str(response.json())
    for fragment in fragments:
        assert fragment in detail
    assert not Checkpoint.objects.exists() and not Job.objects.exists()


def test_a_path_under_an_allowed_root_is_registered_and_queued_for_validation(client, roots):
    response = register(client, {"path": str(roots / "tiny")}, suites=[])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == CheckpointStatus.UPLOADED and body["reference"] == {"path": str(roots / "tiny")}
    assert response["Location"].endswith(f"/api/v1/checkpoints/{body['id']}/")
    assert Job.objects.get().params == {"checkpoint_id": body["id"]}
    assert Job.objects.get().task_name == VALIDATE_TASK


def test_a_path_that_is_not_there_yet_is_left_for_the_worker_to_check(client, roots):
    response = register(client, {"path": str(roots / "on-the-workers-only")})
    assert response.status_code == 201, response.json()


def test_a_hub_reference_is_registered_with_its_revision(client):
    response = register(client, {"hub": "llava-hf/llava-1.5-7b-hf", "revision": "main"})
    assert response.status_code == 201, response.json()
    assert Checkpoint.objects.get().reference == {"hub": "llava-hf/llava-1.5-7b-hf", "revision": "main"}
    assert Job.objects.get().task_name == VALIDATE_TASK


def test_path_references_are_disabled_unless_roots_are_set(client, settings, tmp_path):
    settings.FRONTIER_REFERENCE_ROOTS = []
    assert_refused(register(client, {"path": str(tmp_path)}), "disabled", "FRONTIER_REFERENCE_ROOTS")


def test_a_path_outside_the_roots_is_refused(client, roots, tmp_path):
    assert_refused(register(client, {"path": str(tmp_path / "outside")}), "outside", str(roots))


def test_a_relative_path_is_refused(client, roots):
    assert_refused(register(client, {"path": "shared/tiny"}), "relative", "absolute")


def test_a_dot_dot_escape_is_refused(client, roots):
    assert_refused(register(client, {"path": f"{roots}/../outside"}), "'..'")


def test_a_symlink_escape_is_refused(client, roots, tmp_path):
    (roots / "escape").symlink_to(tmp_path / "outside")
    assert_refused(register(client, {"path": str(roots / "escape")}), "symbolic link", str(tmp_path / "outside"))


@pytest.mark.parametrize("repo_id", ["llava", "org/name/extra", "-org/name", "org/na--me", "org/name.", "ü/name"])
def test_a_bad_hub_id_is_refused(client, repo_id):
    assert_refused(register(client, {"hub": repo_id, "revision": "main"}), "not a Hugging Face repo id")


def test_a_hub_reference_without_revision_is_refused(client):
    assert_refused(register(client, {"hub": "llava-hf/llava-1.5-7b-hf"}), "revision is required")


@pytest.mark.parametrize(
    "reference, message",
    [
        ({}, "reference must be one of"),
        ({"path": "/x", "hub": "org/name", "revision": "main"}, "reference must be one of"),
        ({"hub": "org/name", "revision": "../main"}, "is not a branch, tag or commit SHA"),
    ],
)
def test_malformed_references_are_refused(client, roots, reference, message):
    assert_refused(register(client, reference), message)


def test_a_reference_with_an_unknown_suite_is_refused(client, roots):
    assert_refused(register(client, {"path": str(roots / "tiny")}, suites=["vision"]), "Unknown suite(s) vision")
