"""What validation decides (start, reject, accept, duplicates), the evaluations that follow, and deletion.

``checkpoint_validate`` owns the whole sequence; the task (workers/validate.py) hands it the I/O: how to
get the checked folder (an uploaded archive, a path, a hub snapshot) and how to store its files."""

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from fitting.published import nominal_from_name
from webapp.core.storage import checkpoint_files_store, storage_delete_tree
from webapp.jobs.services import job_cancel
from webapp.registry.models import (
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    Compressor,
    CompressorMethod,
    LanguageModel,
)
from webapp.registry.selectors import visible_to_owner
from webapp.registry.services.common import QuotaExceeded, RegistryError
from webapp.registry.services.runs import run_start


def checkpoint_validate(
    checkpoint: Checkpoint,
    *,
    fetch: Callable[[], tuple[Path, object]],
    invalid: tuple[type[Exception], ...],
    check: Callable[[], None] = lambda: None,
    guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict:
    """Validate a checkpoint once, start to decision: mark it validating; ``fetch()`` returns the checked
    folder and its report (``evaluation.validation.CheckpointReport``), raising one of ``invalid`` when the
    files cannot be accepted (its message, or its ``problems``, becomes the rejection reason); files with the
    content of a checkpoint already registered are a duplicate; else the files are stored under
    checkpoints/<pk>/files and verified against the report (``checkpoint_files_store``, ``check()`` between
    files) and the checkpoint becomes ready with what the report says. Each decision is written inside
    ``guard()`` (the job's fence: a validation that was taken over decides nothing). Returns what happened."""
    if checkpoint.status in (CheckpointStatus.READY, CheckpointStatus.REJECTED):
        return {"status": checkpoint.status, "note": "already decided"}
    with guard():
        checkpoint_validation_start(checkpoint)
    try:
        root, report = fetch()
    except invalid as error:
        reason = "\n".join(error.problems) if getattr(error, "problems", None) else str(error)
        with guard():
            checkpoint_reject(checkpoint, reason)
        return {"status": "rejected", "reason": reason}
    duplicate = content_duplicate(checkpoint, report.checkpoint_sha256)
    if duplicate is not None:
        # content_duplicate looks only among checkpoints the owner may see, so naming it gives nothing away.
        with guard():
            checkpoint_reject(
                checkpoint, f"The same files are already registered as checkpoint {duplicate.pk} ({duplicate.name}).",
                duplicate_of=duplicate,
            )
        return {"status": "duplicate", "duplicate_of": duplicate.pk}
    prefix = f"checkpoints/{checkpoint.pk}/files"
    checkpoint_files_store(root, prefix, report.file_sha256, check)
    config = json.loads((root / "config.json").read_text())
    with guard():
        checkpoint_accept(checkpoint, report=report.to_dict(), config=config, files_prefix=prefix)
    return {"status": "ready", "llm_params": report.llm_params, "visual_tokens": report.visual_tokens}


def checkpoint_validation_failed(checkpoint_id: int | None, error: str) -> Checkpoint | None:
    """Validation could not finish, for a reason that is not the files' (its job used up its attempts):
    the checkpoint is rejected with that reason and what to do, unless it was already decided."""
    checkpoint = Checkpoint.objects.filter(
        pk=checkpoint_id, status__in=[CheckpointStatus.UPLOADED, CheckpointStatus.VALIDATING]
    ).first()
    if checkpoint is None:
        return None
    return checkpoint_reject(
        checkpoint,
        f"Validation could not finish, for a reason on our side rather than in your files: {error}. "
        "Upload it again; if this repeats, tell the operators.",
    )


def checkpoint_validation_start(checkpoint: Checkpoint) -> Checkpoint:
    Checkpoint.objects.filter(pk=checkpoint.pk).update(status=CheckpointStatus.VALIDATING)
    checkpoint.status = CheckpointStatus.VALIDATING
    return checkpoint


def checkpoint_reject(checkpoint: Checkpoint, reason: str, duplicate_of: Checkpoint | None = None) -> Checkpoint:
    """Rejected with a reason the owner can act on; its stored files are removed."""
    storage_delete_tree(f"checkpoints/{checkpoint.pk}")
    checkpoint.status = CheckpointStatus.REJECTED
    checkpoint.rejection_reason = reason
    checkpoint.duplicate_of = duplicate_of
    checkpoint.files_prefix = ""
    checkpoint.save(update_fields=["status", "rejection_reason", "duplicate_of", "files_prefix"])
    return checkpoint


def _llm_identity(config: dict, report: dict) -> dict:
    text = config.get("text_config") or {}
    name = text.get("_name_or_path") or config.get("_name_or_path") or ""
    family = text.get("model_type", "unknown")
    if not name:
        name = f"{family}-{report['llm_params']}"
    return {"family": family, "name": name, "hidden_size": text.get("hidden_size")}


@transaction.atomic
def checkpoint_accept(checkpoint: Checkpoint, *, report: dict, config: dict, files_prefix: str) -> Checkpoint:
    """Mark a validated checkpoint ready (N, V, compressor from its files) and queue the
    evaluations its owner asked for."""
    identity = _llm_identity(config, report)
    llm, _ = LanguageModel.objects.get_or_create(
        name=identity["name"], revision=config.get("_commit_hash") or "", n_params=report["llm_params"],
        defaults={"family": identity["family"], "hidden_size": identity["hidden_size"], "n_params_counted": True,
                  "n_params_nominal": nominal_from_name(identity["name"])},
    )
    method = report["compressor_method"]
    method = CompressorMethod.MLP if method == "mlp_projector" else method  # validation reports before 2026-12
    compressor, _ = Compressor.objects.get_or_create(
        method=method, version="1", defaults={"trainable": method != CompressorMethod.PRUMERGE}
    )
    previous_archive = checkpoint.files_prefix
    checkpoint.llm = llm
    checkpoint.compressor = compressor
    checkpoint.visual_tokens = report["visual_tokens"]
    checkpoint.compressor_params = report["compressor_params"]
    checkpoint.sha256 = report["checkpoint_sha256"]
    checkpoint.config = config
    checkpoint.validation_report = report
    checkpoint.files_prefix = files_prefix
    if not checkpoint.size_bytes:  # registered by reference: no archive was uploaded
        checkpoint.size_bytes = report["total_bytes"]
    checkpoint.status = CheckpointStatus.READY
    checkpoint.save()
    if previous_archive and previous_archive != files_prefix and default_storage.exists(previous_archive):
        default_storage.delete(previous_archive)
    requested_evaluations_start(checkpoint)
    return checkpoint


def requested_evaluations_start(checkpoint: Checkpoint) -> None:
    """Start the evaluations the owner asked for at upload that have not started yet. When a quota
    says no, the checkpoint stays ready and the rest wait, with the reason kept on the checkpoint
    (``evaluations_deferred``); the periodic reaper tries again (``deferred_evaluations_start``)."""
    started = set(checkpoint.runs.values_list("suite__name", flat=True))
    waiting = BenchmarkSuite.objects.filter(name__in=checkpoint.suites_requested).exclude(name__in=started)
    reason = ""
    for suite in waiting.order_by("name"):
        try:
            run_start(
                checkpoint=checkpoint, suite=suite, created_by=checkpoint.owner, limit=settings.FRONTIER_AUTO_EVAL_LIMIT
            )
        except QuotaExceeded as error:
            reason = f"The evaluation on {suite.name} waits: {error} It starts by itself once you are under the limit."
            break
    if checkpoint.evaluations_deferred != reason:
        checkpoint.evaluations_deferred = reason
        checkpoint.save(update_fields=["evaluations_deferred"])


def deferred_evaluations_start(batch: int = 200) -> int:
    """Periodic: retry the evaluations that waited for a quota, oldest checkpoint first; returns how
    many checkpoints have none waiting any more."""
    cleared = 0
    waiting = Checkpoint.objects.filter(status=CheckpointStatus.READY).exclude(evaluations_deferred="")
    for checkpoint in waiting.select_related("owner").order_by("id")[:batch]:
        requested_evaluations_start(checkpoint)
        cleared += not checkpoint.evaluations_deferred
    return cleared


def content_duplicate(checkpoint: Checkpoint, content_sha256: str) -> Checkpoint | None:
    """Another ready checkpoint with the same files (and so the same config) the owner can see."""
    return (
        Checkpoint.objects.filter(visible_to_owner(checkpoint.owner), sha256=content_sha256, status=CheckpointStatus.READY)
        .exclude(pk=checkpoint.pk)
        .order_by("id")
        .first()
    )


def checkpoint_delete(checkpoint: Checkpoint) -> None:
    """Delete a checkpoint, its files, runs and results (the owner's own, not published ones)."""
    if checkpoint.published:
        raise RegistryError("Published entries cannot be deleted through the API.")
    storage_delete_tree(f"checkpoints/{checkpoint.pk}")
    with transaction.atomic():
        for run in checkpoint.runs.all():
            for link in run.benchmark_jobs.select_related("job"):
                if not link.job.is_terminal:
                    job_cancel(link.job, reason="checkpoint deleted")
        checkpoint.delete()  # the fits app requests a refit on every checkpoint deletion (fits/apps.py)
