"""Training glue for the gpu-train queue: run a TrainingRun's ``Trainer`` (resuming from its last
saved state), keep its loss curve and progress live, then register the trained model as a
checkpoint, validated like an upload, whose evaluations are queued.

A run's state folder is FRONTIER_TRAINING_DIR/<run id>/. A worker that dies mid-run leaves the
newest state there; the lease machinery gives the job to another attempt, which continues from
that state. With workers on several machines the folder must be on shared storage. A transient
failure (the base checkpoint's files unreachable in storage, the database busy or unreachable:
``workers.transient``) ends the attempt with a retry, which resumes from the newest state too.
"""

import json
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection

from evaluation.training import Trainer, TrainingCancelled, TrainingConfig, latest_state
from evaluation.validation import CheckpointInvalid, validate_checkpoint_dir
from webapp.core.storage import checkpoint_files_store
from webapp.registry.models import Checkpoint, CheckpointStatus
from webapp.registry.services import checkpoint_reject
from webapp.training.configs import training_config_values
from webapp.training.models import TrainingRun
from webapp.training.services import (
    trained_checkpoint_accept,
    trained_checkpoint_create,
    training_attempt_resumed,
    training_losses_complete,
    training_progress_record,
)
from workers.evaluate import fetch_checkpoint, shared_feature_cache
from workers.transient import retry_transient_failures


class TrainedCheckpointInvalid(Exception):
    """The trained model failed the upload validation (a bug in training, not the user's input)."""


def training_dir(run: TrainingRun) -> Path:
    return settings.FRONTIER_TRAINING_DIR / str(run.pk)


class ProgressRecorder:
    """The Trainer's per-step callback: job progress every step; loss rows, run progress and ETA in
    batches, at most every FRONTIER_TRAINING_LOSS_FLUSH_SECONDS, at the end and at every state save
    (so the stored curve always reaches the state a resumed attempt starts from)."""

    def __init__(self, ctx, run_id: int, save_every: int):
        self.ctx = ctx
        self.run_id = run_id
        self.save_every = save_every
        self.pending: list[tuple[int, float]] = []
        self.first_step: int | None = None
        self.first_at = self.flushed_at = time.monotonic()
        self.step, self.total = 0, 0

    def __call__(self, step: int, total: int, loss: float) -> None:
        self.ctx.progress(step, total)
        self.step, self.total = step, total
        if self.first_step is None:
            self.first_step, self.first_at = step, time.monotonic()
            with self.ctx.fenced():
                training_attempt_resumed(self.run_id, step - 1)
        self.pending.append((step, loss))
        saving = self.save_every and step % self.save_every == 0
        due = time.monotonic() - self.flushed_at >= settings.FRONTIER_TRAINING_LOSS_FLUSH_SECONDS
        if saving or step == total or due:
            self.flush()

    def eta_seconds(self) -> float | None:
        if self.first_step is None or self.step <= self.first_step:
            return None
        rate = (self.step - self.first_step) / (time.monotonic() - self.first_at)
        return (self.total - self.step) / rate

    def flush(self) -> None:
        if not self.pending:
            return
        try:
            with self.ctx.fenced():  # a taken-over attempt stops here instead of writing over its successor
                training_progress_record(
                    self.run_id, losses=self.pending, steps_done=self.step, steps_total=self.total,
                    eta_seconds=self.eta_seconds(),
                )
        except DatabaseError:  # keep the rows for the next flush (on a new connection); training goes on
            self.ctx.log.exception("Could not store the losses of training %s; will try again", self.run_id)
            connection.close_if_unusable_or_obsolete()
            return
        self.pending = []
        self.flushed_at = time.monotonic()


def _local_folder(checkpoint: Checkpoint | None) -> str | None:
    return None if checkpoint is None else str(fetch_checkpoint(checkpoint))


def register_trained_checkpoint(ctx, run: TrainingRun, folder: Path) -> Checkpoint:
    """Store the trained folder as checkpoints/<pk>/files and accept it after the upload validation.

    Once per run: every write is fenced by the attempt's lease, and a checkpoint already accepted is
    returned as it is (a second registration is a no-op)."""
    with ctx.fenced():
        checkpoint = trained_checkpoint_create(run)
    if checkpoint.status == CheckpointStatus.READY:
        return checkpoint
    try:
        report = validate_checkpoint_dir(folder)
    except CheckpointInvalid as error:
        reason = "\n".join(error.problems)
        with ctx.fenced():
            checkpoint_reject(checkpoint, reason)
        raise TrainedCheckpointInvalid(f"the trained checkpoint {checkpoint.pk} failed validation: {reason}") from None
    prefix = f"checkpoints/{checkpoint.pk}/files"
    checkpoint_files_store(folder, prefix, report.file_sha256, ctx.check)
    config = json.loads((folder / "config.json").read_text())
    with ctx.fenced():
        checkpoint = trained_checkpoint_accept(run, checkpoint, report=report.to_dict(), config=config,
                                               files_prefix=prefix)
    ctx.log.info("Training %s registered checkpoint %s (%s)", run.pk, checkpoint.pk, checkpoint.name)
    return checkpoint


@retry_transient_failures
def train_compressor_job(ctx) -> dict:
    run = TrainingRun.objects.select_related("owner", "base_checkpoint", "compressor_from").get(job_id=ctx.job.pk)
    registered = Checkpoint.objects.filter(training_run=run, status=CheckpointStatus.READY).first()
    if registered is not None:  # an attempt after the registration committed: nothing left to do
        return {"checkpoint": registered.pk, "note": "already registered"}
    if run.base_checkpoint_id is None and run.tiny_model is None:
        raise ValueError(f"the base checkpoint of training {run.pk} was deleted; start a new run")
    output_dir = training_dir(run)
    if ctx.attempt.number == 1:  # a first attempt starts from scratch, whatever an old database left here
        shutil.rmtree(output_dir, ignore_errors=True)
    config = TrainingConfig.from_dict(
        training_config_values(run, _local_folder(run.base_checkpoint), _local_folder(run.compressor_from))
    )
    state = latest_state(output_dir)
    ctx.log.info(
        "Training %s: %s V=%s stage %s in %s, %s", run.pk, config.compressor, config.tokens, config.stage, output_dir,
        f"resuming from saved state {state.name}" if state else "starting from scratch",
    )
    recorder = ProgressRecorder(ctx, run.pk, config.save_every)
    trainer = Trainer(
        config, output_dir, progress=recorder,
        should_stop=lambda: ctx.cancel_requested.is_set() or ctx.lease_lost.is_set(),
        feature_cache=shared_feature_cache(),
    )
    try:
        result = trainer.run()
    except TrainingCancelled:
        recorder.flush()
        ctx.check()  # raises the runner's JobCancelled or LeaseLost
        raise
    training_losses_complete(run.pk, result.loss_history)
    ctx.log.info(
        "Training %s finished %s steps (resumed from step %s), loss %.4f -> %.4f, encoder features: %s", run.pk,
        result.steps, result.resumed_from_step, result.loss_history[0], result.final_loss, result.encoder_features,
    )
    checkpoint = register_trained_checkpoint(ctx, run, Path(result.checkpoint))
    shutil.rmtree(output_dir, ignore_errors=True)
    return {
        "checkpoint": checkpoint.pk,
        "steps": result.steps,
        "resumed_from_step": result.resumed_from_step,
        "first_loss": result.loss_history[0],
        "final_loss": result.final_loss,
        "seconds": round(result.seconds, 3),
        "samples_per_second": round(result.samples_per_second, 3),
        "data_seconds": round(result.data_seconds, 3),
        "compute_seconds": round(result.compute_seconds, 3),
        "encoder_features": result.encoder_features,
    }
