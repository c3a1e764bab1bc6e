"""Chunked uploads: start, append a part at its offset, complete into a checkpoint, expire."""

import fcntl
import os
import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from webapp.registry.chunkio import write_stream_at
from webapp.registry.models import (
    Checkpoint,
    Upload,
    Visibility,
)
from webapp.registry.services.common import RegistryError
from webapp.registry.services.submission import check_archive_name, checkpoint_submit, safe_filename


def upload_start(*, owner, filename: str, size: int, sha256: str) -> Upload:
    check_archive_name(filename)
    if size <= 0:
        raise RegistryError("size must be the archive's size in bytes (> 0).")
    if size > settings.FRONTIER_UPLOAD_MAX_BYTES:
        raise RegistryError(
            f"The archive is {size} bytes; the limit is {settings.FRONTIER_UPLOAD_MAX_BYTES} bytes."
        )
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise RegistryError("sha256 must be the archive's SHA-256 as 64 lowercase hex digits.")
    upload = Upload.objects.create(owner=owner, filename=safe_filename(filename), size=size, sha256=sha256)
    upload_part_path(upload).parent.mkdir(parents=True, exist_ok=True)
    upload_part_path(upload).touch()
    return upload


def upload_part_path(upload: Upload) -> Path:
    return settings.VAR_DIR / "uploads" / f"{upload.pk}.part"


class AssembledUpload(File):
    """The part file of a finished chunked upload. Like Django's TemporaryUploadedFile it names its
    path, so local storage renames it into place (no second write of gigabytes)."""

    def __init__(self, handle, path: Path):
        super().__init__(handle, name=path.name)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


def upload_append(upload: Upload, *, start: int, stream, length: int) -> Upload:
    """Append `length` bytes read from `stream` at byte `start`, which must be the current offset
    (a resumed client asks for the offset first). Memory stays bounded: bytes go through one
    reused buffer, straight to disk where they can (webapp.registry.chunkio)."""
    path = upload_part_path(upload)
    try:
        part = open(path, "r+b", buffering=0)
    except FileNotFoundError:
        if Upload.objects.filter(pk=upload.pk).exclude(checkpoint=None).exists():
            raise RegistryError("This upload is already complete.") from None
        raise RegistryError(
            "This upload's received bytes are gone (it expired or was discarded); start a new upload."
        ) from None
    with part:
        # One chunk at a time per upload, also where the database takes no row locks (SQLite).
        fcntl.flock(part.fileno(), fcntl.LOCK_EX)
        with transaction.atomic():
            upload = Upload.objects.select_for_update().get(pk=upload.pk)
            if upload.checkpoint_id:
                raise RegistryError("This upload is already complete.")
            if start != upload.offset:
                raise RegistryError(
                    f"Chunk starts at byte {start} but the upload has {upload.offset} bytes; resume from there."
                )
            if start + length > upload.size:
                raise RegistryError(f"Chunk ends at byte {start + length}, past the declared size {upload.size}.")
            part.truncate(start)  # drop the tail of an interrupted chunk
            try:
                written = write_stream_at(part.fileno(), path, stream, start, length)
            except OSError:  # e.g. a full disk: the upload keeps the bytes it had, to resume from there
                part.truncate(start)
                raise
            if written != length:
                part.truncate(start)
                raise RegistryError(f"The chunk was cut short: {written} of {length} bytes arrived; send it again.")
            os.fdatasync(part.fileno())  # the recorded offset never counts bytes a crash could lose
            upload.offset = start + written
            upload.save(update_fields=["offset", "updated_at"])
    return upload


def upload_complete(
    upload: Upload, *, name: str, visibility: str = Visibility.PRIVATE, suites: list[str] | None = None
) -> tuple[Checkpoint, bool]:
    """Submit the assembled archive like a single-shot upload, under the SHA-256 the client declared.

    The validation job, which reads the whole archive anyway, checks that SHA-256 (and rejects the
    checkpoint, with both digests, when the bytes differ): hashing gigabytes here would hold the
    web process for as long as the upload took to arrive."""
    if upload.checkpoint_id:
        return upload.checkpoint, False
    path = upload_part_path(upload)
    if upload.offset != upload.size:
        raise RegistryError(f"The upload has {upload.offset} of {upload.size} bytes; send the rest first.")
    on_disk = path.stat().st_size if path.exists() else 0
    if on_disk != upload.size:
        path.unlink(missing_ok=True)
        upload.delete()
        raise RegistryError(
            f"The stored upload has {on_disk} of its {upload.size} bytes (its part file was changed or removed "
            f"on the server). The upload was discarded; start again."
        )
    with open(path, "rb") as part:
        checkpoint, created = checkpoint_submit(
            owner=upload.owner, name=name, archive=AssembledUpload(part, path), filename=upload.filename,
            visibility=visibility, suites=suites, archive_sha256=upload.sha256,
        )
    upload.checkpoint = checkpoint
    upload.save(update_fields=["checkpoint", "updated_at"])
    path.unlink(missing_ok=True)
    return checkpoint, created


def uploads_expire() -> int:
    """Remove chunked uploads untouched for FRONTIER_UPLOAD_EXPIRY_HOURS (the reaper calls it)."""
    cutoff = timezone.now() - timedelta(hours=settings.FRONTIER_UPLOAD_EXPIRY_HOURS)
    stale = list(Upload.objects.filter(updated_at__lt=cutoff, checkpoint=None))
    for upload in stale:
        upload_part_path(upload).unlink(missing_ok=True)
        upload.delete()
    return len(stale)
