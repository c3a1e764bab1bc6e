"""Validation glue for the cpu queue: fetch the uploaded archive, extract and check it with
evaluation.validation (headers only, nothing unpickled), store the files, accept or reject."""

import json
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from evaluation.archives import ArchiveError
from evaluation.validation import CheckpointInvalid, checkpoint_root, validate_checkpoint_archive
from webapp.registry.models import Checkpoint, CheckpointStatus
from webapp.registry.services import (
    checkpoint_accept,
    checkpoint_reject,
    checkpoint_validation_start,
    content_duplicate,
)


def _problems(error: Exception) -> str:
    if isinstance(error, CheckpointInvalid):
        return "\n".join(error.problems)
    return str(error)


def validate_checkpoint_job(ctx) -> dict:
    checkpoint = Checkpoint.objects.get(pk=ctx.params["checkpoint_id"])
    if checkpoint.status in (CheckpointStatus.READY, CheckpointStatus.REJECTED):
        return {"status": checkpoint.status, "note": "already decided"}
    checkpoint_validation_start(checkpoint)
    work_root = settings.VAR_DIR / "tmp"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root) as work:
        archive = Path(work) / Path(checkpoint.files_prefix).name
        with default_storage.open(checkpoint.files_prefix, "rb") as source, open(archive, "wb") as local:
            shutil.copyfileobj(source, local, 1 << 20)
        extracted = Path(work) / "extracted"
        try:
            report = validate_checkpoint_archive(
                archive, extracted, max_total_bytes=settings.FRONTIER_UPLOAD_MAX_BYTES * 4,
                max_files=settings.FRONTIER_ARCHIVE_MAX_FILES, max_ratio=settings.FRONTIER_ARCHIVE_MAX_RATIO,
            )
        except (ArchiveError, CheckpointInvalid) as error:
            reason = _problems(error)
            checkpoint_reject(checkpoint, reason)
            ctx.log.info("Checkpoint %s rejected: %s", checkpoint.pk, reason)
            return {"status": "rejected", "reason": reason}
        duplicate = content_duplicate(checkpoint, report.checkpoint_sha256)
        if duplicate is not None:
            checkpoint_reject(
                checkpoint, f"The same files are already registered as checkpoint {duplicate.pk} ({duplicate.name}).",
                duplicate_of=duplicate,
            )
            return {"status": "duplicate", "duplicate_of": duplicate.pk}
        root = checkpoint_root(extracted)
        prefix = f"checkpoints/{checkpoint.pk}/files"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            with open(path, "rb") as handle:
                default_storage.save(f"{prefix}/{path.relative_to(root).as_posix()}", File(handle))
            ctx.check()
        config = json.loads((root / "config.json").read_text())
    checkpoint_accept(checkpoint, report=report.to_dict(), config=config, files_prefix=prefix)
    return {"status": "ready", "llm_params": report.llm_params, "visual_tokens": report.visual_tokens}
