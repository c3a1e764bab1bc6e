"""The periodic reaper removes chunked uploads abandoned for FRONTIER_UPLOAD_EXPIRY_HOURS."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from webapp.registry.models import Upload
from webapp.registry.services import upload_part_path, upload_start
from workers.tasks import reap_jobs

pytestmark = pytest.mark.django_db


def test_the_reaper_removes_abandoned_uploads_and_their_bytes_and_keeps_fresh_ones(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.FRONTIER_UPLOAD_EXPIRY_HOURS = 48
    owner = get_user_model().objects.create_user("alice")
    stale = upload_start(owner=owner, filename="old.tar.gz", size=10, sha256="0" * 64)
    fresh = upload_start(owner=owner, filename="new.tar.gz", size=10, sha256="1" * 64)
    upload_part_path(stale).write_bytes(b"12345")
    upload_part_path(fresh).write_bytes(b"12345")
    Upload.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=49))
    Upload.objects.filter(pk=fresh.pk).update(updated_at=timezone.now() - timedelta(hours=47))

    report = reap_jobs()

    assert report["uploads_expired"] == 1
    assert list(Upload.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not upload_part_path(stale).exists()
    assert upload_part_path(fresh).read_bytes() == b"12345"
