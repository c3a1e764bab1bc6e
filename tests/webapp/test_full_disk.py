"""A full disk is a clear answer (issue #15 row 5), on a real full filesystem: storage on a 1 MiB tmpfs.
An upload that does not fit is a 507 with a JSON message; nothing half-written stays; the next upload
that fits goes through; a chunk that does not fit leaves the upload at the bytes it had."""

import hashlib
import io
import subprocess
from pathlib import Path

import pytest

from webapp.registry.models import Checkpoint, Upload

pytestmark = pytest.mark.django_db

MOUNT_SIZE = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path, settings):
    """Default storage and the chunked-upload parts on a 1 MiB tmpfs (needs root; skipped otherwise)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_SIZE}", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(mount / "media")}}}
    settings.VAR_DIR = mount
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def single_shot(client, data: bytes, name: str):
    upload = io.BytesIO(data)
    upload.name = "ckpt.tar.gz"
    return client.post("/api/v1/checkpoints/", {"file": upload, "name": name}, format="multipart")


def test_an_upload_past_the_free_space_is_a_507_with_a_message_and_leaves_nothing(alice, client_for, small_disk):
    client = client_for(alice)
    response = single_shot(client, b"\x01" * (2 * MOUNT_SIZE), "too big")
    assert response.status_code == 507 and response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("The server is out of disk space; nothing was stored.")
    assert not Checkpoint.objects.exists() and files_under(small_disk) == []

    fits = single_shot(client, b"\x02" * 100_000, "fits")
    assert fits.status_code == 201, fits.content[:300]
    assert Checkpoint.objects.get().name == "fits"


def test_a_chunk_past_the_free_space_is_a_507_and_the_upload_resumes_from_its_bytes(alice, client_for, small_disk):
    client = client_for(alice)
    size = 2 * MOUNT_SIZE
    upload_id = client.post("/api/v1/uploads/", {"filename": "c.tar.gz", "size": size, "sha256": "0" * 64},
                            format="json").json()["id"]
    first = client.put(f"/api/v1/uploads/{upload_id}/", b"a" * 100_000, content_type="application/octet-stream",
                       HTTP_CONTENT_RANGE=f"bytes 0-99999/{size}")
    assert first.json()["offset"] == 100_000
    rest = size - 100_000
    full = client.put(f"/api/v1/uploads/{upload_id}/", b"b" * rest, content_type="application/octet-stream",
                      HTTP_CONTENT_RANGE=f"bytes 100000-{size - 1}/{size}")
    assert full.status_code == 507 and "out of disk space" in full.json()["detail"]
    assert Upload.objects.get().offset == 100_000
    part = small_disk / "uploads" / f"{upload_id}.part"
    assert part.stat().st_size == 100_000  # the partial chunk was cut back off
    assert hashlib.sha256(part.read_bytes()).hexdigest() == hashlib.sha256(b"a" * 100_000).hexdigest()


def test_healthz_reports_the_free_space_of_media_and_var_and_degrades_below_the_threshold(small_disk, settings):
    from webapp.stack.health import check_disk, disk_paths

    paths = disk_paths()
    assert set(paths) == {"disk:media", "disk:var"} and all(path.startswith(str(small_disk)) for path in paths.values())
    low = check_disk(paths["disk:media"])
    assert not low.ok and low.extra["free_bytes"] <= MOUNT_SIZE and low.extra["total_bytes"] == MOUNT_SIZE
    assert "under 2 GB; uploads and validations will soon be refused" in low.detail
    settings.FRONTIER_DISK_LOW_BYTES = 1000
    assert check_disk(paths["disk:var"]).ok
    assert check_disk(small_disk / "not" / "made" / "yet").ok  # a folder not made yet: the disk it will be on
