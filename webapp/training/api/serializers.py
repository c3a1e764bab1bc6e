"""Shapes of training requests (types only: the services check meaning) and of the JSON the UI reads."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from webapp.core.limits import MAX_INT
from webapp.registry.models import Visibility
from webapp.training.configs import DATASET_KINDS
from webapp.training.models import Sweep, TrainingRun
from webapp.training.selectors import eta_seconds, loss_curve, sweep_runs_with_scores, trained_checkpoint


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a misspelt hyper-parameter must not be silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(self.fields)
                raise serializers.ValidationError({key: [f"Unknown field; known fields: {known}."] for key in unknown})
        return super().to_internal_value(data)


class TinyModelSerializer(StrictSerializer):
    llm_hidden = serializers.IntegerField(default=64, help_text="LLM hidden size (a multiple of 8).")
    llm_layers = serializers.IntegerField(default=2)
    llm_family = serializers.CharField(default="qwen2", help_text="qwen2 or llama")
    seed = serializers.IntegerField(default=0, help_text="Seed of the random initialisation.")


class BaseSerializer(StrictSerializer):
    checkpoint = serializers.IntegerField(required=False, help_text="A ready checkpoint: its encoder and LLM.")
    tiny = TinyModelSerializer(required=False, help_text="A random-init tiny model (tests, demos).")

    def validate(self, data):
        if ("checkpoint" in data) == ("tiny" in data):
            raise serializers.ValidationError("Give either checkpoint (a checkpoint id) or tiny (a tiny model config).")
        return data


class DatasetSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=DATASET_KINDS)
    json = serializers.CharField(required=False, help_text="llava: conversation JSON, under the training data root.")
    images = serializers.CharField(required=False, help_text="llava: image folder, under the training data root.")
    count = serializers.IntegerField(required=False, help_text="synthetic: examples used (default: all 2,000).")


class HyperparametersSerializer(StrictSerializer):
    """Names and meanings of ``evaluation.training.TrainingConfig``; ranges are checked there."""

    learning_rate = serializers.FloatField(required=False)
    weight_decay = serializers.FloatField(required=False)
    max_grad_norm = serializers.FloatField(required=False)
    batch_size = serializers.IntegerField(required=False, help_text="Examples per micro-batch.")
    gradient_accumulation = serializers.IntegerField(required=False, help_text="Micro-batches per optimizer step.")
    max_steps = serializers.IntegerField(required=False, allow_null=True, help_text="Give max_steps or epochs.")
    epochs = serializers.FloatField(required=False, allow_null=True)
    warmup_steps = serializers.IntegerField(required=False)
    lr_schedule = serializers.CharField(required=False, help_text="cosine or linear")
    seed = serializers.IntegerField(required=False)
    precision = serializers.CharField(required=False, help_text="auto, fp32 or bf16")
    save_every = serializers.IntegerField(required=False, help_text="Steps between resumable saves.")


class SharedSpecSerializer(StrictSerializer):
    """What a single run and every point of a sweep have in common."""

    stage = serializers.IntegerField(default=1, help_text="1: compressor only; 2: the LLM is fine-tuned too.")
    dataset = DatasetSerializer()
    hyperparameters = HyperparametersSerializer(default=dict)
    suites = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Evaluated once trained (default: the server's)."
    )
    eval_limit = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False,
                                         help_text="Items per benchmark, if capped.")
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)


class TrainingCreateSerializer(SharedSpecSerializer):
    name = serializers.CharField(max_length=200)
    base = BaseSerializer()
    compressor = serializers.CharField(max_length=32, help_text="avgpool, tokenpacker, quecc, prumerge, mqt")
    tokens = serializers.IntegerField(help_text="Visual tokens V.")
    compressor_from = serializers.IntegerField(
        required=False, help_text="A checkpoint whose compressor (same method and V) initialises this one."
    )


class SweepBaseSerializer(BaseSerializer):
    hyperparameters = HyperparametersSerializer(
        required=False, help_text="This base's values over the sweep's, e.g. a smaller learning rate for a larger LLM."
    )


class SweepCreateSerializer(SharedSpecSerializer):
    name = serializers.CharField(max_length=150)
    bases = serializers.ListField(child=SweepBaseSerializer(), min_length=1, help_text="The LLM sizes of the grid.")
    compressors = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1)
    tokens = serializers.ListField(child=serializers.IntegerField(), min_length=1, help_text="Values of V.")


class TrainingRunSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api-training-detail")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    state = serializers.CharField(source="job.state", read_only=True)
    error = serializers.CharField(source="job.error", read_only=True)
    progress = serializers.SerializerMethodField(help_text="Fraction of the steps done (0 to 1).")
    eta_seconds = serializers.SerializerMethodField()
    checkpoint = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "url", "name", "owner", "sweep", "base_checkpoint", "tiny_model", "compressor_from", "compressor",
            "visual_tokens", "stage", "dataset", "hyperparameters", "suites", "eval_limit", "visibility", "job",
            "state", "error", "steps_done", "steps_total", "progress", "last_loss", "resumed_from_step", "eta_at",
            "eta_seconds", "progress_at", "checkpoint", "created_at",
        ]

    def get_progress(self, run) -> float | None:
        return min(1.0, run.steps_done / run.steps_total) if run.steps_total else None

    def get_eta_seconds(self, run) -> float | None:
        return eta_seconds(run)

    def get_checkpoint(self, run) -> dict | None:
        checkpoint = trained_checkpoint(run)
        if checkpoint is None:
            return None
        url = reverse("api-checkpoint-detail", args=[checkpoint.pk], request=self.context.get("request"))
        return {
            "id": checkpoint.pk, "url": url, "status": checkpoint.status,
            "rejection_reason": checkpoint.rejection_reason,
        }


class TrainingRunDetailSerializer(TrainingRunSerializer):
    """Adds the loss curve (after ``since`` from the context) and the job's attempts."""

    losses = serializers.SerializerMethodField()
    attempts = serializers.SerializerMethodField()

    class Meta(TrainingRunSerializer.Meta):
        fields = TrainingRunSerializer.Meta.fields + ["losses", "attempts"]

    def get_losses(self, run) -> dict:
        return loss_curve(run, since=self.context.get("since", 0))

    def get_attempts(self, run) -> list[dict]:
        """The worker and error text only for the run's owner and staff (they name machines and paths)."""
        request = self.context.get("request")
        user = getattr(request, "user", None)
        internals = user is not None and user.is_authenticated and (user.is_staff or run.owner_id == user.pk)
        return [
            {"number": attempt.number, "worker": attempt.worker_hostname if internals else None,
             "started_at": attempt.started_at, "finished_at": attempt.finished_at, "outcome": attempt.outcome,
             "failure_class": attempt.failure_class, "error": attempt.error_message if internals else None}
            for attempt in run.job.attempts.all()
        ]


class SweepSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api-sweep-detail")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    runs = serializers.IntegerField(source="run_count", read_only=True)

    class Meta:
        model = Sweep
        fields = ["id", "url", "name", "owner", "grid", "runs", "created_at"]


class SweepDetailSerializer(SweepSerializer):
    points = serializers.SerializerMethodField()

    class Meta(SweepSerializer.Meta):
        fields = SweepSerializer.Meta.fields + ["points"]

    def get_points(self, sweep) -> list[dict]:
        return [
            {**TrainingRunSerializer(run, context=self.context).data, "suite_errors": suite_errors}
            for run, suite_errors in sweep_runs_with_scores(sweep)
        ]
