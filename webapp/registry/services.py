"""Writes of the registry: the benchmark catalog, evaluation runs and quotas, checkpoint submission,
registration by reference, uploads, validation outcomes and deletion. Results landing, suite scores
and published scores are the leaderboard's (webapp.leaderboard.services)."""

import fcntl
import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from webapp.core.errors import ServiceError
from webapp.core.storage import storage_delete_tree
from webapp.jobs.models import FailureClass, JobState
from webapp.jobs.services import job_cancel, job_submit
from webapp.jobs.task_names import EVALUATE, VALIDATE
from webapp.registry.catalog import SUITE_DESCRIPTIONS, default_catalog
from webapp.registry.chunkio import write_stream_at
from webapp.registry.hub import HUB_REPO_ID, HUB_REVISION
from webapp.registry.selectors import visible_to_owner
from webapp.registry.models import (
    Benchmark,
    BenchmarkJob,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    Compressor,
    CompressorMethod,
    EvaluationRun,
    LanguageModel,
    Upload,
    Visibility,
)



EVALUATE_TASK = EVALUATE.name
VALIDATE_TASK = VALIDATE.name
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
HASH_CHUNK = 1 << 20


class RegistryError(ServiceError):
    """Input the registry cannot accept; the message says what to fix."""


class QuotaExceeded(RegistryError):
    """A per-user limit was reached; the message says which and how to get under it."""

    http_status = 429


@transaction.atomic
def benchmark_catalog_sync() -> None:
    """Create the default suites and benchmarks that are missing."""
    for suite_name, rows in default_catalog().items():
        suite, _ = BenchmarkSuite.objects.get_or_create(
            name=suite_name, defaults={"description": SUITE_DESCRIPTIONS.get(suite_name, "")}
        )
        for row in rows:
            Benchmark.objects.get_or_create(suite=suite, key=row["key"], defaults=row)


def _run_failed_for_platform_reasons(run: EvaluationRun) -> bool:
    """Every failed job of the run failed for a reason that is not the submitter's doing."""
    jobs = [link.job for link in run.benchmark_jobs.select_related("job")]
    failed = [job for job in jobs if job.state == JobState.FAILED]
    return bool(failed) and all(job.failure_class in FailureClass.PLATFORM for job in failed)


def _check_run_quota(user) -> None:
    if user is None or user.is_staff:
        return
    recent = EvaluationRun.objects.filter(created_by=user, created_at__gte=timezone.now() - timedelta(days=1))
    active = recent.filter(benchmark_jobs__job__state__in=["queued", "running"]).distinct().count()
    if active >= settings.FRONTIER_QUOTA_CONCURRENT_RUNS:
        raise QuotaExceeded(
            f"You have {active} evaluation runs in progress; the limit is {settings.FRONTIER_QUOTA_CONCURRENT_RUNS}. "
            f"Wait for one to finish or cancel one."
        )
    counted = [run for run in recent.prefetch_related("benchmark_jobs") if not _run_failed_for_platform_reasons(run)]
    if len(counted) >= settings.FRONTIER_QUOTA_RUNS_PER_DAY:
        raise QuotaExceeded(
            f"You started {len(counted)} evaluation runs in the last 24 hours; the limit is "
            f"{settings.FRONTIER_QUOTA_RUNS_PER_DAY} (runs that failed for platform reasons do not count)."
        )


@transaction.atomic
def run_start(
    *, checkpoint: Checkpoint, suite: BenchmarkSuite, created_by=None, limit: int | None = None
) -> EvaluationRun:
    """Start evaluating a ready checkpoint on a suite: one job per benchmark on the gpu-eval queue.

    `limit` caps the items per benchmark (a quick look, not a leaderboard number)."""
    if checkpoint.published:
        raise RegistryError(f"{checkpoint.name} is a published result without files; it cannot be evaluated.")
    if checkpoint.status != CheckpointStatus.READY:
        raise RegistryError(f"{checkpoint.name} is {checkpoint.status}; only ready checkpoints can be evaluated.")
    benchmarks = list(suite.benchmarks.all())
    if not benchmarks:
        raise RegistryError(f"Suite {suite.name} has no benchmarks.")
    if limit is not None and limit <= 0:
        raise RegistryError("limit must be a positive number of items per benchmark.")
    _check_run_quota(created_by)
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite, created_by=created_by, limit=limit)
    for benchmark in benchmarks:
        BenchmarkJob.objects.create(run=run, benchmark=benchmark, job=_evaluation_job(run, benchmark, created_by))
    return run


def _evaluation_job(run: EvaluationRun, benchmark: Benchmark, created_by):
    params = {"run_id": run.pk, "benchmark_id": benchmark.pk}
    if run.limit is not None:
        params["limit"] = run.limit
    return job_submit(task_name=EVALUATE_TASK, params=params, created_by=created_by)


@transaction.atomic
def run_rerun_failed(run: EvaluationRun, *, by=None) -> list[BenchmarkJob]:
    """Queue again only the benchmarks whose job failed or was cancelled (capped per run)."""
    links = [link for link in run.benchmark_jobs.select_related("job", "benchmark") if link.job.state in ("failed", "cancelled")]
    if not links:
        raise RegistryError("No benchmark of this run failed or was cancelled; nothing to rerun.")
    if run.reruns >= settings.FRONTIER_QUOTA_RERUNS_PER_RUN:
        raise QuotaExceeded(f"This run was rerun {run.reruns} times, the limit; start a new run instead.")
    for link in links:
        link.job = _evaluation_job(run, link.benchmark, by)
        link.save(update_fields=["job"])
    EvaluationRun.objects.filter(pk=run.pk).update(reruns=run.reruns + 1)
    return links


def run_cancel(run: EvaluationRun, *, by=None) -> int:
    """Cancel every benchmark of the run that has not ended; returns how many."""
    cancelled = 0
    for link in run.benchmark_jobs.select_related("job"):
        if not link.job.is_terminal:
            job_cancel(link.job, reason=f"run cancelled by {by or 'the system'}")
            cancelled += 1
    if not cancelled:
        raise RegistryError("Every benchmark of this run has already ended.")
    return cancelled


# --- Checkpoint submission ---------------------------------------------------------------------


def _check_submission(*, owner, name: str, visibility: str, suites: list[str] | None) -> list[str]:
    """Check-then-do: everything about a submission that can be refused before bytes are stored."""
    if not name or not name.strip():
        raise RegistryError("Give the checkpoint a name.")
    if len(name) > 200:
        raise RegistryError("The name is longer than 200 characters.")
    if visibility not in Visibility.values:
        raise RegistryError(f"visibility must be one of {', '.join(Visibility.values)}, not {visibility!r}.")
    suites = settings.FRONTIER_DEFAULT_SUITES if suites is None else suites
    known = set(BenchmarkSuite.objects.values_list("name", flat=True))
    unknown = [suite for suite in suites if suite not in known]
    if unknown:
        raise RegistryError(f"Unknown suite(s) {', '.join(unknown)}; known suites: {', '.join(sorted(known))}.")
    return list(suites)


def _check_archive_name(filename: str) -> None:
    if not filename.lower().endswith(ARCHIVE_SUFFIXES):
        raise RegistryError(
            f"{filename!r} is not a checkpoint archive: upload a .tar, .tar.gz or .zip of the checkpoint folder "
            f"(config.json, model.safetensors, tokenizer files)."
        )


def _safe_filename(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:200] or "checkpoint.tar"


def visible_duplicate(owner, archive_sha256: str) -> Checkpoint | None:
    """An existing, not rejected checkpoint with the same archive the owner can see."""
    return (
        Checkpoint.objects.filter(visible_to_owner(owner), archive_sha256=archive_sha256)
        .exclude(status=CheckpointStatus.REJECTED)
        .order_by("id")
        .first()
    )


def checkpoint_submit(
    *, owner, name: str, archive, filename: str, visibility: str = Visibility.PRIVATE,
    suites: list[str] | None = None, archive_sha256: str | None = None,
) -> tuple[Checkpoint, bool]:
    """Store an uploaded archive and queue its validation (cpu queue).

    `archive` is a readable binary file (streamed, never read whole). Returns (checkpoint,
    created); an identical archive the owner can already see is returned instead of a copy."""
    suites = _check_submission(owner=owner, name=name, visibility=visibility, suites=suites)
    _check_archive_name(filename)
    if archive_sha256 is None:
        digest = hashlib.sha256()
        archive.seek(0)
        for chunk in iter(lambda: archive.read(HASH_CHUNK), b""):
            digest.update(chunk)
        archive_sha256 = digest.hexdigest()
    existing = visible_duplicate(owner, archive_sha256)
    if existing is not None:
        return existing, False
    archive.seek(0)
    with transaction.atomic():
        checkpoint = Checkpoint.objects.create(
            owner=owner, name=name.strip(), visibility=visibility, archive_sha256=archive_sha256,
            suites_requested=suites, status=CheckpointStatus.UPLOADED,
        )
        # A File with a temporary_file_path (a large multipart upload, an assembled chunked upload)
        # is moved into local storage rather than copied; S3 streams it like any file.
        content = archive if isinstance(archive, File) else File(archive, name=filename)
        stored = default_storage.save(f"checkpoints/{checkpoint.pk}/upload/{_safe_filename(filename)}", content)
        checkpoint.files_prefix = stored
        checkpoint.size_bytes = default_storage.size(stored)
        checkpoint.save(update_fields=["files_prefix", "size_bytes"])
        job_submit(task_name=VALIDATE_TASK, params={"checkpoint_id": checkpoint.pk}, created_by=owner)
    return checkpoint, True


# --- Registration by reference ------------------------------------------------------------------

REFERENCE_FORMS = "{\"path\": \"/absolute/path\"} or {\"hub\": \"org/name\", \"revision\": \"main or a commit SHA\"}"


def reference_path_resolve(path) -> str:
    """The real path a path reference points to, refused unless it is absolute, has no `..` and lies
    inside FRONTIER_REFERENCE_ROOTS once symbolic links are resolved.

    The web host checks the form (it may not see the shared storage, where nothing resolves); the
    worker calls it again where the files are, so a link out of the roots is caught there too."""
    roots = [Path(os.path.realpath(root)) for root in settings.FRONTIER_REFERENCE_ROOTS]
    if not roots:
        raise RegistryError(
            "Registration by path is disabled on this server: an administrator enables it by setting "
            "FRONTIER_REFERENCE_ROOTS to the shared-storage folders checkpoints may be registered from. "
            "Upload the checkpoint instead, or register it from the Hugging Face hub."
        )
    if not isinstance(path, str) or not path or "\x00" in path:
        raise RegistryError("reference.path must be an absolute path on the workers' shared storage.")
    if not os.path.isabs(path):
        raise RegistryError(f"reference.path {path!r} is relative; give an absolute path under {roots[0]}.")
    if ".." in PurePosixPath(path).parts:
        raise RegistryError(f"reference.path {path!r} contains '..'; give the path without it.")
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(root) for root in roots):
        link = "" if str(real) == os.path.normpath(path) else f" (a symbolic link leads it to {real})"
        allowed = ", ".join(str(root) for root in roots)
        raise RegistryError(
            f"reference.path {path} is outside the folders checkpoints may be registered from{link}: {allowed} "
            f"(FRONTIER_REFERENCE_ROOTS)."
        )
    return str(real)


def _check_hub_reference(repo_id, revision) -> dict:
    if not isinstance(repo_id, str) or not HUB_REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise RegistryError(
            f"reference.hub {repo_id!r} is not a Hugging Face repo id; give it as org/name, "
            f"e.g. llava-hf/llava-1.5-7b-hf."
        )
    if not revision:
        raise RegistryError(
            "reference.revision is required with reference.hub: a branch, tag or commit SHA "
            "(a commit SHA pins exactly what is evaluated)."
        )
    if not isinstance(revision, str) or not HUB_REVISION.fullmatch(revision) or ".." in revision:
        raise RegistryError(f"reference.revision {revision!r} is not a branch, tag or commit SHA.")
    return {"hub": repo_id, "revision": revision}


def reference_check(reference) -> dict:
    """The reference in its stored form, or RegistryError saying what is wrong with it."""
    if not isinstance(reference, dict) or ("path" in reference) == ("hub" in reference):
        raise RegistryError(f"reference must be one of {REFERENCE_FORMS}.")
    if "path" in reference:
        if set(reference) != {"path"}:
            raise RegistryError(f"A path reference takes only a path: {REFERENCE_FORMS}.")
        reference_path_resolve(reference["path"])
        return {"path": os.path.normpath(reference["path"])}
    return _check_hub_reference(reference["hub"], reference.get("revision"))


def checkpoint_register_reference(
    *, owner, name: str, reference: dict, visibility: str = Visibility.PRIVATE, suites: list[str] | None = None
) -> Checkpoint:
    """Register a checkpoint on the workers' shared storage ({"path"}) or on the Hugging Face hub
    ({"hub", "revision"}) and queue its validation (cpu queue): the worker fetches, checks and
    stores its files as it does an upload's. Whether the path exists is for the worker to say."""
    suites = _check_submission(owner=owner, name=name, visibility=visibility, suites=suites)
    reference = reference_check(reference)
    with transaction.atomic():
        checkpoint = Checkpoint.objects.create(
            owner=owner, name=name.strip(), visibility=visibility, reference=reference,
            suites_requested=suites, status=CheckpointStatus.UPLOADED,
        )
        job_submit(task_name=VALIDATE_TASK, params={"checkpoint_id": checkpoint.pk}, created_by=owner)
    return checkpoint


def upload_start(*, owner, filename: str, size: int, sha256: str) -> Upload:
    _check_archive_name(filename)
    if size <= 0:
        raise RegistryError("size must be the archive's size in bytes (> 0).")
    if size > settings.FRONTIER_UPLOAD_MAX_BYTES:
        raise RegistryError(
            f"The archive is {size} bytes; the limit is {settings.FRONTIER_UPLOAD_MAX_BYTES} bytes."
        )
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise RegistryError("sha256 must be the archive's SHA-256 as 64 lowercase hex digits.")
    upload = Upload.objects.create(owner=owner, filename=_safe_filename(filename), size=size, sha256=sha256)
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
            written = write_stream_at(part.fileno(), path, stream, start, length)
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
        defaults={"family": identity["family"], "hidden_size": identity["hidden_size"]},
    )
    method = report["compressor_method"]
    method = CompressorMethod.MLP if method == "mlp_projector" else method
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

