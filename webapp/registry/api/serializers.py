from rest_framework import serializers
from rest_framework.reverse import reverse

from webapp.core.limits import MAX_ID, MAX_INT
from webapp.jobs.api.serializers import JobAttemptSerializer, PublicJobAttemptSerializer
from webapp.registry.models import (
    Benchmark,
    BenchmarkResult,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    EvaluationRun,
    Upload,
    Visibility,
)
from webapp.registry.selectors import run_status

# Bounds of the database's integer columns: larger numbers are a 400, not an overflow in the driver.


class CheckpointSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    llm = serializers.StringRelatedField()
    llm_params = serializers.IntegerField(
        source="llm.n_params", read_only=True, default=None,
        help_text="N: counted from the weights (tied embeddings once) where llm_params_counted, else the nominal size.",
    )
    llm_params_nominal = serializers.IntegerField(
        source="llm.n_params_nominal", read_only=True, default=None,
        help_text="The size in the LLM's name (e.g. 500000000 for Qwen1.5-0.5B); null where unknown.",
    )
    llm_params_counted = serializers.BooleanField(
        source="llm.n_params_counted", read_only=True, default=None,
        help_text="Whether llm_params was counted from the weights (fits on counted N leave the others out).",
    )
    compressor = serializers.CharField(source="compressor.method", read_only=True, default=None)
    url = serializers.HyperlinkedIdentityField(view_name="api-checkpoint-detail")

    class Meta:
        model = Checkpoint
        fields = [
            "id", "url", "name", "owner", "status", "rejection_reason", "visibility", "published", "citation",
            "source_url", "llm", "llm_params", "llm_params_nominal", "llm_params_counted", "compressor",
            "visual_tokens", "compressor_params", "sha256", "archive_sha256", "size_bytes", "reference",
            "suites_requested", "evaluations_deferred", "duplicate_of", "hidden", "created_at",
        ]


class CheckpointDetailSerializer(CheckpointSerializer):
    archive_url = serializers.SerializerMethodField(
        help_text="Where its files download as one .tar (a ready checkpoint's; null before validation)."
    )

    class Meta(CheckpointSerializer.Meta):
        fields = CheckpointSerializer.Meta.fields + ["config", "validation_report", "archive_url"]

    def to_representation(self, checkpoint):
        data = super().to_representation(checkpoint)
        if isinstance(data.get("validation_report"), dict):  # where the worker unpacked it: nobody's business
            data["validation_report"] = {k: v for k, v in data["validation_report"].items() if k != "path"}
        return data

    def get_archive_url(self, checkpoint) -> str | None:
        if checkpoint.status != CheckpointStatus.READY or not checkpoint.files_prefix:
            return None
        return reverse("api-checkpoint-archive", args=[checkpoint.pk], request=self.context.get("request"))


class CheckpointUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The checkpoint folder as .tar, .tar.gz or .zip.")
    name = serializers.CharField(max_length=200)
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)
    suites = serializers.ListField(child=serializers.CharField(), required=False, help_text="Default: the server's.")


class CheckpointHideSerializer(serializers.Serializer):
    hidden = serializers.BooleanField(default=True, help_text="false shows the checkpoint again.")


class ReferenceSerializer(serializers.Serializer):
    """Either `path` alone or `hub` with `revision`; the service checks which and says what is wrong."""

    path = serializers.CharField(
        required=False, max_length=4096,
        help_text="Absolute path of a checkpoint folder or archive on the workers' shared storage, under one of "
        "the server's FRONTIER_REFERENCE_ROOTS.",
    )
    hub = serializers.CharField(required=False, max_length=200, help_text="Hugging Face repo id, org/name.")
    revision = serializers.CharField(required=False, max_length=200, help_text="Branch, tag or commit SHA.")


class CheckpointReferenceSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    reference = ReferenceSerializer()
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)
    suites = serializers.ListField(child=serializers.CharField(), required=False, help_text="Default: the server's.")


class UploadStartSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1)
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", error_messages={"invalid": "64 lowercase hex digits."})


class UploadCompleteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)
    suites = serializers.ListField(child=serializers.CharField(), required=False)


class UploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Upload
        fields = ["id", "filename", "size", "sha256", "offset", "checkpoint", "created_at", "updated_at"]


class BenchmarkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Benchmark
        fields = ["id", "key", "lmms_eval_task", "metrics", "full_scale", "higher_is_better", "version"]


class SuiteSerializer(serializers.ModelSerializer):
    benchmarks = BenchmarkSerializer(many=True, read_only=True)

    class Meta:
        model = BenchmarkSuite
        fields = ["id", "name", "description", "version", "benchmarks"]


class EvaluationCreateSerializer(serializers.Serializer):
    checkpoint = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    suite = serializers.SlugField()
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_INT, required=False, help_text="Items per benchmark (a quick look)."
    )


class EvaluationRunSerializer(serializers.ModelSerializer):
    checkpoint = serializers.PrimaryKeyRelatedField(read_only=True)
    suite = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = EvaluationRun
        fields = ["id", "checkpoint", "suite", "created_by", "limit", "reruns", "created_at", "status"]

    def get_status(self, run) -> dict:
        return run_status(run)


class EvaluationRunDetailSerializer(EvaluationRunSerializer):
    benchmarks = serializers.SerializerMethodField()

    class Meta(EvaluationRunSerializer.Meta):
        fields = EvaluationRunSerializer.Meta.fields + ["benchmarks"]

    def get_benchmarks(self, run) -> list[dict]:
        """Error texts, workers and log tails only for the checkpoint's owner and staff (context ``internals``)."""
        internals = self.context.get("internals", False)
        attempts = JobAttemptSerializer if internals else PublicJobAttemptSerializer
        rows = []
        for link in run.benchmark_jobs.all():
            job = link.job
            rows.append({
                "benchmark": link.benchmark.key,
                "job": job.pk,
                "state": job.state,
                "progress_done": job.progress_done,
                "progress_total": job.progress_total,
                "heartbeat_at": job.heartbeat_at,
                "error": job.error if internals else None,
                "failure_class": job.failure_class,
                "attempts": attempts(job.attempts.all(), many=True).data,
            })
        return rows


class BenchmarkResultSerializer(serializers.ModelSerializer):
    checkpoint = serializers.IntegerField(source="run.checkpoint_id", read_only=True)
    suite = serializers.CharField(source="benchmark.suite.name", read_only=True)
    benchmark = serializers.CharField(source="benchmark.key", read_only=True)

    class Meta:
        model = BenchmarkResult
        fields = ["id", "run", "checkpoint", "suite", "benchmark", "metric", "value", "stderr", "n",
                  "higher_is_better", "created_at"]
