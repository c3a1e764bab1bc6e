"""What gets evaluated (LLMs, compressors, checkpoints), on what (suites, benchmarks), and the
results: a long table of benchmark metrics plus per-suite scores that fits and leaderboards read."""

from django.conf import settings
from django.db import models

from evaluation.vlm_spec import METHOD_LABELS
from webapp.jobs.models import Job


class LanguageModel(models.Model):
    family = models.CharField(max_length=100, help_text="e.g. qwen1.5-chat, llama-3")
    name = models.CharField(max_length=200)
    n_params = models.PositiveBigIntegerField(
        help_text="N: the parameters counted from the weights (tied embeddings once); where n_params_counted is "
                  "false (a published row of a model Frontier does not know), the nominal size."
    )
    n_params_nominal = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The size in the model's name, e.g. 0.5e9 for Qwen1.5-0.5B; empty: unknown."
    )
    n_params_counted = models.BooleanField(
        default=True,
        help_text="Whether n_params was counted from the weights (fits on counted N leave the others out).",
    )
    hidden_size = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Hub repo id, URL or path.")
    revision = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["family", "n_params"]
        constraints = [models.UniqueConstraint(fields=["name", "revision", "n_params"], name="unique_llm")]

    def __str__(self) -> str:
        return f"{self.name} ({self.n_params / 1e9:.2f} B)"

    @property
    def n_params_b(self) -> float:
        return self.n_params / 1e9


# The compressor vocabulary is evaluation.vlm_spec's (METHOD_LABELS): one definition for every part.
CompressorMethod = models.TextChoices(
    "CompressorMethod", [(method.upper(), (method, label)) for method, label in METHOD_LABELS.items()]
)


class Compressor(models.Model):
    method = models.CharField(max_length=32, choices=CompressorMethod.choices)
    version = models.CharField(max_length=50, default="1")
    trainable = models.BooleanField(default=True)

    class Meta:
        ordering = ["method", "version"]
        constraints = [models.UniqueConstraint(fields=["method", "version"], name="unique_compressor")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} v{self.version}"


class CheckpointStatus(models.TextChoices):
    UPLOADED = "uploaded"
    VALIDATING = "validating"
    READY = "ready"
    REJECTED = "rejected"


class Visibility(models.TextChoices):
    PRIVATE = "private"
    PUBLIC = "public"


class Checkpoint(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkpoints"
    )
    name = models.CharField(max_length=200)
    llm = models.ForeignKey(LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="checkpoints")
    compressor = models.ForeignKey(
        Compressor, null=True, blank=True, on_delete=models.PROTECT, related_name="checkpoints"
    )
    visual_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="V")
    compressor_params = models.PositiveBigIntegerField(null=True, blank=True)
    files_prefix = models.CharField(max_length=500, blank=True, help_text="Storage path of the checkpoint files.")
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=CheckpointStatus.choices, default=CheckpointStatus.UPLOADED)
    rejection_reason = models.TextField(blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    published = models.BooleanField(default=False, help_text="A published result (no files), with its citation.")
    citation = models.TextField(blank=True)
    source_url = models.URLField(blank=True)
    hidden = models.BooleanField(default=False, help_text="Hidden by staff.")
    archive_sha256 = models.CharField(max_length=64, blank=True, db_index=True, help_text="Of the uploaded archive.")
    reference = models.JSONField(
        default=dict, blank=True, help_text="Registered by reference: {'path': ...} or {'hub': repo, 'revision': ...}."
    )
    suites_requested = models.JSONField(default=list, blank=True, help_text="Suites to evaluate once ready.")
    evaluations_deferred = models.TextField(
        blank=True, help_text="Why requested evaluations wait (a quota); the reaper starts them later. Empty: none wait."
    )
    validation_report = models.JSONField(default=dict, blank=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    training_run = models.OneToOneField(
        "training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="checkpoint",
        help_text="Lineage: the training run that produced this checkpoint (at most one checkpoint per run).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "visibility"], name="checkpoint_status_vis_idx"),
            # The leaderboard's name sort reads every score in name order once per data version: it walks this.
            models.Index(fields=["name", "id"], name="checkpoint_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Upload(models.Model):
    """A resumable chunked upload: bytes are appended at `offset` until `size`, then checked
    against `sha256` and handed to checkpoint_submit."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    offset = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"upload {self.pk}: {self.filename} {self.offset}/{self.size}"


class BenchmarkSuite(models.Model):
    name = models.SlugField(max_length=50, unique=True, help_text="reasoning, ocr, synthetic, …")
    description = models.TextField(blank=True)
    version = models.CharField(max_length=50, default="1")

    def __str__(self) -> str:
        return self.name


class Benchmark(models.Model):
    suite = models.ForeignKey(BenchmarkSuite, on_delete=models.CASCADE, related_name="benchmarks")
    key = models.SlugField(max_length=50, help_text="Name used by the fitting normalisation, e.g. gqa.")
    lmms_eval_task = models.CharField(max_length=100)
    metrics = models.JSONField(default=list, help_text="Metric keys summed into the score.")
    full_scale = models.FloatField(default=1.0, help_text="score = sum(metrics) / full_scale")
    higher_is_better = models.BooleanField(default=True)
    version = models.CharField(max_length=50, default="1")

    class Meta:
        ordering = ["suite", "key"]
        constraints = [models.UniqueConstraint(fields=["suite", "key"], name="unique_benchmark_in_suite")]

    def __str__(self) -> str:
        return f"{self.suite}/{self.key}"


class EvaluationRun(models.Model):
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="runs")
    suite = models.ForeignKey(BenchmarkSuite, on_delete=models.PROTECT, related_name="runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Items per benchmark, if capped.")
    reruns = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"run {self.pk}: {self.checkpoint} on {self.suite}"


class BenchmarkJob(models.Model):
    """One job per benchmark of a run (the job pattern of webapp.jobs)."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="benchmark_jobs")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT)
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="benchmark_job")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "benchmark"], name="unique_job_per_benchmark")]


class HarnessOutput(models.Model):
    """The harness's raw JSON, kept untouched, and the reproducibility stamp."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="harness_outputs")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT)
    raw = models.JSONField()
    stamp = models.JSONField(default=dict)
    samples_key = models.CharField(
        max_length=500, blank=True,
        help_text="Storage key of the per-item records (gzip'd JSON lines); a reused result names its source's.",
    )
    samples_sha256 = models.CharField(max_length=64, blank=True)
    samples_count = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "benchmark"], name="unique_output_per_benchmark")]


class BenchmarkResult(models.Model):
    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT, related_name="results")
    metric = models.CharField(max_length=100)
    value = models.FloatField()
    stderr = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(null=True, blank=True)
    higher_is_better = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "benchmark", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["run", "benchmark", "metric"], name="unique_result_metric")
        ]
        # The refit rescores the checkpoints with results created since its last run.
        indexes = [models.Index(fields=["created_at"], name="result_created_idx")]

    def __str__(self) -> str:
        return f"{self.benchmark}.{self.metric} = {self.value:g}"


class ScoreSource(models.TextChoices):
    MEASURED = "measured"
    PUBLISHED = "published"


class SuiteScore(models.Model):
    """A checkpoint's average normalised error on a suite: what fits and leaderboards read.

    Measured scores are recomputed from BenchmarkResult rows by the refit; published ones are
    loaded as given (e.g. the paper's table)."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="suite_scores")
    suite = models.ForeignKey(BenchmarkSuite, on_delete=models.PROTECT, related_name="scores")
    error = models.FloatField()
    stderr = models.FloatField(null=True, blank=True)
    n_benchmarks = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=16, choices=ScoreSource.choices, default=ScoreSource.MEASURED)
    # Denormalised for the leaderboard, so a page of rows needs no per-row query: each
    # benchmark's normalised score (key → score in [0, 1]) and the newest measured latency.
    benchmark_scores = models.JSONField(default=dict, blank=True)
    # What each benchmark's result was computed with ({key: {"task", "task_hash", "dataset_revision"}}, from its
    # stamp): a row is stale where these differ from the installed task files or mirror (registry.selectors.stale).
    benchmark_identities = models.JSONField(default=dict, blank=True)
    latency_first_token_s = models.FloatField(null=True, blank=True, help_text="Median time to first token.")
    latency_decode_per_token_s = models.FloatField(null=True, blank=True, help_text="Median decode time per token.")
    latency_device = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["checkpoint", "suite"], name="unique_suite_score")]
        indexes = [models.Index(fields=["suite", "error"], name="suite_score_error_idx")]

    def __str__(self) -> str:
        return f"{self.checkpoint} on {self.suite}: error {self.error:.4f}"
