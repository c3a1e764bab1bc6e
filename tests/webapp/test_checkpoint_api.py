"""Checkpoint submission through the REST API: single-shot, chunked/resumable, permissions."""

import hashlib
import io
import tarfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from webapp.jobs.models import FailureClass, Job, JobState
from webapp.registry.models import Checkpoint, CheckpointStatus, Upload, Visibility
from webapp.registry.services import VALIDATE_TASK

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(local_media, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return local_media


def archive_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ARCHIVE = archive_bytes({"ckpt/config.json": b"{}", "ckpt/model.safetensors": b"x" * 100})


def single_shot(client, data=ARCHIVE, filename="ckpt.tar.gz", **fields):
    upload = io.BytesIO(data)
    upload.name = filename
    return client.post("/api/v1/checkpoints/", {"file": upload, "name": "mine", **fields}, format="multipart")


def test_single_shot_upload_stores_the_archive_and_queues_validation(alice, media, client_for):
    response = single_shot(client_for(alice), suites=["synthetic"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "uploaded" and body["archive_sha256"] == hashlib.sha256(ARCHIVE).hexdigest()
    assert response["Location"].endswith(f"/api/v1/checkpoints/{body['id']}/")
    checkpoint = Checkpoint.objects.get()
    assert default_storage.open(checkpoint.files_prefix).read() == ARCHIVE
    assert checkpoint.suites_requested == ["synthetic"]
    assert Job.objects.get().task_name == VALIDATE_TASK


def test_the_same_archive_again_returns_the_existing_checkpoint(alice, client_for):
    first = single_shot(client_for(alice)).json()
    again = single_shot(client_for(alice))
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert Checkpoint.objects.count() == 1


def test_an_archive_rejected_as_a_duplicate_is_answered_with_the_original_not_stored_again(alice, media, client_for):
    first = single_shot(client_for(alice)).json()
    original = Checkpoint.objects.get(pk=first["id"])
    # Validation found these files already registered (the original's content hash) and rejected the copy.
    Checkpoint.objects.filter(pk=original.pk).update(archive_sha256="f" * 64)
    copy = Checkpoint.objects.create(owner=alice, name="copy", status=CheckpointStatus.REJECTED,
                                     archive_sha256=hashlib.sha256(ARCHIVE).hexdigest(), duplicate_of=original)
    stored_before = sorted(str(path) for path in media.rglob("*") if path.is_file())
    again = single_shot(client_for(alice))
    assert again.status_code == 200 and again.json()["id"] == original.pk
    assert Checkpoint.objects.count() == 2 and Job.objects.filter(task_name=VALIDATE_TASK).count() == 1
    assert sorted(str(path) for path in media.rglob("*") if path.is_file()) == stored_before
    assert copy.pk != original.pk


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filename": "model.bin"}, "is not a checkpoint archive"),
        ({"suites": ["vision"]}, "Unknown suite(s) vision"),
        ({"visibility": "secret"}, "is not a valid choice"),
    ],
)
def test_bad_single_shot_uploads_are_400_with_nothing_stored(alice, media, kwargs, message, client_for):
    response = single_shot(client_for(alice), **kwargs)
    assert response.status_code == 400
    assert message in str(response.json())
    assert not Checkpoint.objects.exists() and not list(media.rglob("*.*"))


def test_a_body_of_another_content_type_is_refused(alice, client_for):
    response = client_for(alice).post("/api/v1/checkpoints/", b"name=x", content_type="text/plain")
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


def test_a_json_body_without_a_reference_is_told_how_to_upload(alice, client_for):
    response = client_for(alice).post("/api/v1/checkpoints/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert "multipart/form-data with file and name" in response.json()["detail"]


def put_chunk(client, upload_id, data, start, total):
    return client.put(
        f"/api/v1/uploads/{upload_id}/", data, content_type="application/octet-stream",
        HTTP_CONTENT_RANGE=f"bytes {start}-{start + len(data) - 1}/{total}",
    )


def test_chunked_upload_resumes_and_checks_the_sha256(alice, client_for):
    client = client_for(alice)
    digest = hashlib.sha256(ARCHIVE).hexdigest()
    started = client.post("/api/v1/uploads/", {"filename": "c.tar.gz", "size": len(ARCHIVE), "sha256": digest}, format="json")
    assert started.status_code == 201
    upload_id = started.json()["id"]
    half = len(ARCHIVE) // 2

    assert put_chunk(client, upload_id, ARCHIVE[:half], 0, len(ARCHIVE)).json()["offset"] == half
    skipped = put_chunk(client, upload_id, ARCHIVE[half + 1:], half + 1, len(ARCHIVE))
    assert skipped.status_code == 400 and f"has {half} bytes; resume from there" in skipped.json()["detail"]
    assert client.get(f"/api/v1/uploads/{upload_id}/").json()["offset"] == half  # where to resume
    early = client.post(f"/api/v1/uploads/{upload_id}/complete/", {"name": "c"}, format="json")
    assert early.status_code == 400 and "send the rest first" in early.json()["detail"]

    assert put_chunk(client, upload_id, ARCHIVE[half:], half, len(ARCHIVE)).json()["offset"] == len(ARCHIVE)
    done = client.post(f"/api/v1/uploads/{upload_id}/complete/", {"name": "chunked", "visibility": "public"}, format="json")
    assert done.status_code == 201, done.json()
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.visibility == Visibility.PUBLIC and checkpoint.archive_sha256 == digest
    assert default_storage.open(checkpoint.files_prefix).read() == ARCHIVE


@pytest.mark.django_db(transaction=True)  # the job runner closes connections, as in a worker
def test_chunked_upload_with_a_wrong_sha256_is_rejected_by_validation(alice, media, client_for, monkeypatch):
    """complete stores the archive under the declared SHA-256 at once; the validation job, which
    reads the archive anyway, finds the mismatch, rejects the checkpoint and removes its files."""
    from types import SimpleNamespace

    from workers.celery_app import app
    from workers.runner import execute_job
    from workers.validate import validate_checkpoint_job

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)
    client = client_for(alice)
    declared = hashlib.sha256(b"what the client meant to send").hexdigest()
    started = client.post("/api/v1/uploads/", {"filename": "c.tar.gz", "size": len(ARCHIVE), "sha256": declared},
                          format="json")
    upload_id = started.json()["id"]
    put_chunk(client, upload_id, ARCHIVE, 0, len(ARCHIVE))
    response = client.post(f"/api/v1/uploads/{upload_id}/complete/", {"name": "c"}, format="json")
    assert response.status_code == 201, response.json()
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.status == CheckpointStatus.UPLOADED and checkpoint.archive_sha256 == declared
    assert not list((media.parent / "uploads").glob("*.part"))

    job = Job.objects.get(task_name=VALIDATE_TASK)
    task = SimpleNamespace(request=SimpleNamespace(id="task-1", hostname="w1@test"), soft_time_limit=None)
    execute_job(task, job.pk, validate_checkpoint_job)
    checkpoint.refresh_from_db()
    actual = hashlib.sha256(ARCHIVE).hexdigest()
    assert checkpoint.status == CheckpointStatus.REJECTED
    assert f"SHA-256 mismatch: the uploaded archive hashes to {actual}, not the declared {declared}" in (
        checkpoint.rejection_reason)
    assert checkpoint.files_prefix == "" and not default_storage.exists(f"checkpoints/{checkpoint.pk}/upload")
    detail = client.get(f"/api/v1/checkpoints/{checkpoint.pk}/").json()
    assert detail["status"] == "rejected" and "upload it again" in detail["rejection_reason"]


def test_complete_refuses_a_part_file_that_lost_bytes_on_the_server(alice, media, client_for):
    client = client_for(alice)
    upload_id = client.post("/api/v1/uploads/", {"filename": "c.zip", "size": 4, "sha256": "0" * 64},
                            format="json").json()["id"]
    put_chunk(client, upload_id, b"abcd", 0, 4)
    part = media.parent / "uploads" / f"{upload_id}.part"
    part.write_bytes(b"ab")
    response = client.post(f"/api/v1/uploads/{upload_id}/complete/", {"name": "c"}, format="json")
    assert response.status_code == 400 and "has 2 of its 4 bytes" in response.json()["detail"]
    assert not Upload.objects.exists() and not Checkpoint.objects.exists() and not part.exists()


def test_chunk_past_the_declared_size_and_missing_content_range_are_refused(alice, client_for):
    client = client_for(alice)
    upload_id = client.post("/api/v1/uploads/", {"filename": "c.zip", "size": 4, "sha256": "0" * 64}, format="json").json()["id"]
    no_range = client.put(f"/api/v1/uploads/{upload_id}/", b"ab", content_type="application/octet-stream")
    assert no_range.status_code == 400 and "Content-Range" in no_range.json()["detail"]
    too_big = put_chunk(client, upload_id, b"abcdef", 0, 4)
    assert too_big.status_code == 400


def test_a_body_longer_than_its_content_range_is_refused_not_cut(alice, client_for):
    """bytes 0-9/100 with 50 bytes of body: storing 10 and dropping 40 would corrupt the archive silently."""
    client = client_for(alice)
    upload_id = client.post("/api/v1/uploads/", {"filename": "c.zip", "size": 100, "sha256": "0" * 64},
                            format="json").json()["id"]
    response = client.put(f"/api/v1/uploads/{upload_id}/", b"x" * 50, content_type="application/octet-stream",
                          HTTP_CONTENT_RANGE="bytes 0-9/100")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The body has 50 bytes but Content-Range bytes 0-9 covers 10")
    assert client.get(f"/api/v1/uploads/{upload_id}/").json()["offset"] == 0
    assert put_chunk(client, upload_id, b"y" * 10, 0, 100).json()["offset"] == 10  # the right chunk still goes in


def test_others_cannot_read_evaluate_or_delete_a_private_checkpoint(alice, bob, client_for):
    checkpoint = Checkpoint.objects.create(owner=alice, name="private", status=CheckpointStatus.READY, visual_tokens=4)
    for response in (
        client_for(bob).get(f"/api/v1/checkpoints/{checkpoint.pk}/"),
        client_for(bob).delete(f"/api/v1/checkpoints/{checkpoint.pk}/"),
        client_for(bob).post("/api/v1/evaluations/", {"checkpoint": checkpoint.pk, "suite": "synthetic"}, format="json"),
    ):
        assert response.status_code == 404
    assert client_for(bob).get("/api/v1/checkpoints/").json()["count"] == 0
    assert client_for(alice).get(f"/api/v1/checkpoints/{checkpoint.pk}/").status_code == 200
    Checkpoint.objects.filter(pk=checkpoint.pk).update(visibility=Visibility.PUBLIC)
    assert client_for(bob).get(f"/api/v1/checkpoints/{checkpoint.pk}/").status_code == 200
    assert client_for(bob).delete(f"/api/v1/checkpoints/{checkpoint.pk}/").status_code == 403
    assert client_for(alice).delete(f"/api/v1/checkpoints/{checkpoint.pk}/").status_code == 204
    assert not Checkpoint.objects.exists()


def test_evaluation_quota_and_rerun_rules(alice, settings, client_for):
    settings.FRONTIER_QUOTA_CONCURRENT_RUNS = 1
    checkpoint = Checkpoint.objects.create(owner=alice, name="mine", status=CheckpointStatus.READY, visual_tokens=4)
    client = client_for(alice)
    first = client.post("/api/v1/evaluations/", {"checkpoint": checkpoint.pk, "suite": "synthetic", "limit": 5}, format="json")
    assert first.status_code == 201 and first.json()["status"]["jobs"] == {"queued": 2}
    second = client.post("/api/v1/evaluations/", {"checkpoint": checkpoint.pk, "suite": "synthetic"}, format="json")
    assert second.status_code == 429 and "limit is 1" in second.json()["detail"]
    run_id = first.json()["id"]
    nothing = client.post(f"/api/v1/evaluations/{run_id}/rerun/")
    assert nothing.status_code == 400 and "nothing to rerun" in nothing.json()["detail"]
    assert client.post(f"/api/v1/evaluations/{run_id}/cancel/").status_code == 202
    detail = client.get(f"/api/v1/evaluations/{run_id}/").json()
    assert detail["status"]["state"] == "cancelled" and {b["benchmark"] for b in detail["benchmarks"]} == {"shapes", "glyphs"}
    assert client.post(f"/api/v1/evaluations/{run_id}/rerun/").status_code == 202


@pytest.mark.parametrize(("failure_class", "counts"), [
    (FailureClass.WORKER_LOST, False), (FailureClass.OUT_OF_MEMORY, False), (FailureClass.ENVIRONMENT_ERROR, False),
    (FailureClass.STORAGE_ERROR, False), ("load_error", True), ("harness_error", True), (FailureClass.INTERNAL_ERROR, True),
])
def test_the_daily_quota_reads_the_failure_class_not_the_message(alice, settings, client_for, failure_class, counts):
    """A run whose jobs all failed for the platform's reasons does not count; the message text plays no
    part (here it names a platform-looking exception either way)."""
    settings.FRONTIER_QUOTA_RUNS_PER_DAY = 1
    checkpoint = Checkpoint.objects.create(owner=alice, name="mine", status=CheckpointStatus.READY, visual_tokens=4)
    client = client_for(alice)
    first = client.post("/api/v1/evaluations/", {"checkpoint": checkpoint.pk, "suite": "synthetic"}, format="json")
    assert first.status_code == 201
    Job.objects.update(state=JobState.FAILED, failure_class=failure_class, error="WorkerLost: looks like the platform")
    second = client.post("/api/v1/evaluations/", {"checkpoint": checkpoint.pk, "suite": "synthetic"}, format="json")
    assert second.status_code == (429 if counts else 201), second.content


def test_suites_and_schema_are_served(alice, client_for):
    client = client_for(alice)
    suites = {s["name"]: s for s in client.get("/api/v1/suites/").json()["results"]}
    assert len(suites["reasoning"]["benchmarks"]) == 9
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/uploads/{id}/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"cdn" not in docs.content.lower()


def test_a_declared_hash_cannot_squat_another_users_archive(alice, bob, client_for):
    """bob starts a chunked upload declaring the SHA-256 of alice's archive, sends junk and completes it as
    public (issue #15 row 7). Until validation checks bob's bytes, his checkpoint is not a duplicate anyone
    else's upload can be handed: alice's real upload is hers."""
    digest = hashlib.sha256(ARCHIVE).hexdigest()
    squat = client_for(bob)
    upload_id = squat.post("/api/v1/uploads/", {"filename": "c.tar.gz", "size": 4, "sha256": digest},
                           format="json").json()["id"]
    put_chunk(squat, upload_id, b"junk", 0, 4)
    squatter = squat.post(f"/api/v1/uploads/{upload_id}/complete/", {"name": "squat", "visibility": "public"},
                          format="json")
    assert squatter.status_code == 201 and squatter.json()["status"] == "uploaded"

    mine = single_shot(client_for(alice))
    assert mine.status_code == 201 and mine.json()["id"] != squatter.json()["id"]
    assert Checkpoint.objects.get(pk=mine.json()["id"]).owner == alice

    Checkpoint.objects.filter(pk=mine.json()["id"]).update(status=CheckpointStatus.READY, visibility="public")
    carol = get_user_model().objects.create_user("carol")
    again = single_shot(client_for(carol))  # a verified, public copy is a duplicate for everyone
    assert again.status_code == 200 and again.json()["id"] == mine.json()["id"]
