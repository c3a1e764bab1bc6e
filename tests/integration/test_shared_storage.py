"""Checkpoints and artifacts live in shared storage: the web side writes, a worker process on
another "machine" (its own process and settings) reads the same bytes. Local disk by default,
S3-compatible object storage when S3_BUCKET is set — tested against moto's S3 server."""

import hashlib
import os

import boto3
import pytest
from frontier_processes import free_port, wait_for
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings

from webapp.jobs.models import Job, JobState
from webapp.jobs.services import job_submit

pytestmark = pytest.mark.integration

PAYLOAD = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def s3_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "frontier-test", "aws_secret_access_key": "frontier-test-secret"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(
        Bucket="frontier-artifacts"
    )
    yield endpoint, credentials
    server.stop()


def digest_in_worker(name: str) -> dict:
    job = job_submit(task_name="workers.tasks.storage_digest", params={"name": name})
    wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, timeout=60, message="digest job to finish")
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    return job.result


def test_worker_reads_what_the_web_side_stored_on_local_disk(start_worker, process_env, local_media):
    start_worker("w1", env={**process_env, "MEDIA_ROOT": str(local_media)})
    name = default_storage.save("checkpoints/local.bin", ContentFile(PAYLOAD))

    result = digest_in_worker(name)

    assert result == {"name": name, "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD)}


def test_worker_reads_what_the_web_side_stored_in_s3(start_worker, process_env, s3_server):
    endpoint, credentials = s3_server
    s3_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "frontier-artifacts", "endpoint_url": endpoint, "region_name": "us-east-1",
            "access_key": credentials["aws_access_key_id"], "secret_key": credentials["aws_secret_access_key"],
            "addressing_style": "path", "file_overwrite": False,
        },
    }
    worker_env = {
        **process_env,
        "S3_BUCKET": "frontier-artifacts", "S3_ENDPOINT_URL": endpoint,
        "S3_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "S3_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "MEDIA_ROOT": "/nonexistent-so-local-disk-cannot-be-used",
    }
    start_worker("w1", env=worker_env)
    with override_settings(STORAGES={"default": s3_storage, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        name = default_storage.save("checkpoints/remote.bin", ContentFile(PAYLOAD))
        assert default_storage.exists(name)

    result = digest_in_worker(name)

    assert result["sha256"] == hashlib.sha256(PAYLOAD).hexdigest() and result["size"] == len(PAYLOAD)
    listed = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).list_objects_v2(
        Bucket="frontier-artifacts"
    )
    assert [obj["Key"] for obj in listed["Contents"]] == [name]


def test_a_missing_file_fails_the_job_with_a_clear_error(start_worker):
    start_worker("w1")
    job = job_submit(task_name="workers.tasks.storage_digest", params={"name": "checkpoints/none.bin"})
    wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, timeout=60, message="job to end")
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error.startswith("FileNotFoundError") and "none.bin" in job.error
