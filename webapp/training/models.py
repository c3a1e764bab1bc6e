"""Compressor training runs (one gpu-train job each), their live loss curves, and sweeps (grids of runs).

A run's state is its job's state (the job row is the truth); the run adds what the job does not
know: the spec, the live curve, the ETA, and (through ``Checkpoint.training_run``) the checkpoint
it produced.
"""

from django.conf import settings
from django.db import models

from webapp.jobs.models import Job
from webapp.registry.models import Checkpoint, Visibility


class Sweep(models.Model):
    """A grid of training runs: bases (LLM sizes) x compressors x V, sharing everything else."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_sweeps")
    name = models.CharField(max_length=200)
    grid = models.JSONField(help_text="The submitted grid, with defaults filled in.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"sweep {self.pk}: {self.name}"


class TrainingRun(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_runs")
    name = models.CharField(max_length=200, help_text="Also the name of the checkpoint it produces.")
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    base_checkpoint = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Starting weights (vision encoder + LLM); empty when training starts from a tiny config.",
    )
    tiny_model = models.JSONField(
        null=True, blank=True, help_text="Random-init tiny model: llm_hidden, llm_layers, llm_family, seed."
    )
    compressor_from = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Initialise the compressor from this checkpoint's (same method and V), e.g. stage 2 after stage 1.",
    )
    compressor = models.CharField(max_length=32, help_text="Compressor method, e.g. avgpool, quecc.")
    visual_tokens = models.PositiveIntegerField(help_text="V")
    stage = models.PositiveSmallIntegerField(
        default=1, help_text="1: compressor (and projector) trained, LLM frozen; 2: LLM fine-tuned too."
    )
    dataset = models.JSONField(help_text="{kind: synthetic-shapes | synthetic-glyphs | synthetic-spots | llava, json, images, count}")
    hyperparameters = models.JSONField(help_text="Learning rate, batch size, steps or epochs, ... (defaults filled).")
    suites = models.JSONField(default=list, blank=True, help_text="Suites the trained checkpoint is evaluated on.")
    eval_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Items per benchmark, if capped.")
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="training_run")

    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(null=True, blank=True)
    last_loss = models.FloatField(null=True, blank=True)
    resumed_from_step = models.PositiveIntegerField(
        default=0, help_text="Step the latest attempt resumed from (0: it started from scratch)."
    )
    eta_at = models.DateTimeField(null=True, blank=True, help_text="Expected end of training, from the current rate.")
    progress_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"training {self.pk}: {self.name}"


class TrainingLoss(models.Model):
    """One optimizer step's training loss; rows are written in batches while the run trains."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="losses")
    step = models.PositiveIntegerField()
    loss = models.FloatField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="unique_loss_step")]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step}: {self.loss:.4f}"
