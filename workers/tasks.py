"""Celery tasks. Each job task takes a job id; `workers.runner` does the job bookkeeping."""

import hashlib
import time

from django.core.files.storage import default_storage

from webapp.jobs.services import jobs_reap
from webapp.jobs.task_names import REAP
from webapp.leaderboard.services import refit_all
from webapp.registry.services import deferred_evaluations_start, uploads_expire
from workers.celery_app import app
from workers.datasets import prefetch_datasets_job
from workers.evaluate import evaluate_benchmark_job
from workers.runner import job_task
from workers.train import train_compressor_job
from workers.transient import retry_transient_failures
from workers.validate import validate_checkpoint_job, work_folders_remove


@job_task()
def diagnostic_sleep(ctx) -> dict:
    """Sleep `seconds` in small steps with progress: checks queue, worker and job machinery."""
    seconds = float(ctx.params.get("seconds", 1.0))
    steps = max(1, int(seconds * 4))
    ctx.progress(0, steps)
    started = time.monotonic()
    for step in range(1, steps + 1):
        ctx.sleep(seconds / steps)
        ctx.progress(step)
    return {"slept_seconds": round(time.monotonic() - started, 3)}


@job_task()
def storage_digest(ctx) -> dict:
    """SHA-256 of a file in the shared storage, read by the worker: proves web and workers
    see the same files (local disk or S3)."""
    name = ctx.params["name"]
    digest = hashlib.sha256()
    size = 0
    with default_storage.open(name, "rb") as stored:
        for chunk in iter(lambda: stored.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            ctx.check()
    return {"name": name, "sha256": digest.hexdigest(), "size": size}


@app.task(name=REAP.name, soft_time_limit=60, time_limit=90)
def reap_jobs() -> dict:
    """Periodic (celery beat): re-queue or fail jobs whose worker stopped heartbeating, remove
    chunked uploads abandoned for FRONTIER_UPLOAD_EXPIRY_HOURS, remove the extraction folders of
    validations that ended (a killed attempt leaves one), and start evaluations that waited for their
    owner's quota."""
    report = jobs_reap()
    return {
        "requeued": report.requeued, "ended": report.ended, "republished": report.republished,
        "work_folders_removed": work_folders_remove(),
        "uploads_expired": uploads_expire(),
        "deferred_evaluations_started": deferred_evaluations_start(),
    }


@job_task(soft_time_limit=15 * 60, time_limit=16 * 60)
@retry_transient_failures
def refit_scaling_laws(ctx) -> dict:
    """Bring measured suite scores up to date (param ``full``: rescore every checkpoint) and refit every
    suite × compressor × law whose input changed."""
    return refit_all(progress=ctx.progress, full=bool(ctx.params.get("full", False)))


@job_task(soft_time_limit=24 * 3600, time_limit=24 * 3600 + 300)
def evaluate_benchmark(ctx) -> dict:
    """Evaluate one benchmark of an evaluation run (gpu-eval queue)."""
    return evaluate_benchmark_job(ctx)


@job_task(soft_time_limit=2 * 3600, time_limit=2 * 3600 + 120)
def validate_checkpoint(ctx) -> dict:
    """Validate an uploaded checkpoint (cpu queue): headers only, nothing unpickled."""
    return validate_checkpoint_job(ctx)


@job_task(soft_time_limit=72 * 3600, time_limit=72 * 3600 + 600)
def train_compressor(ctx) -> dict:
    """Train a compressor (gpu-train queue), resuming from the run's last saved state, then register
    the trained checkpoint and queue its evaluations."""
    return train_compressor_job(ctx)


@job_task(soft_time_limit=6 * 3600, time_limit=6 * 3600 + 120)
def prefetch_datasets(ctx) -> dict:
    """Fetch benchmarks' hub datasets into the dataset mirror (cpu queue; staff, POST /api/v1/datasets/prefetch/)."""
    return prefetch_datasets_job(ctx)
