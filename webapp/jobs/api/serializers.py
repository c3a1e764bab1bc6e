from rest_framework import serializers

from webapp.jobs.models import Job, JobAttempt, JobTransition


class JobAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobAttempt
        fields = [
            "number", "task_id", "worker_hostname", "worker_pid", "started_at", "finished_at",
            "duration_seconds", "outcome", "error_class", "failure_class", "error_message", "log_tail",
        ]


class PublicJobAttemptSerializer(serializers.ModelSerializer):
    """An attempt as anyone who may see the object sees it: no worker host, pid, task id, error text or
    log tail (they name machines and paths); the owner and staff get ``JobAttemptSerializer``."""

    class Meta:
        model = JobAttempt
        fields = ["number", "started_at", "finished_at", "duration_seconds", "outcome", "failure_class"]


class JobTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobTransition
        fields = ["from_state", "to_state", "at", "reason"]


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "task_name", "params", "state", "created_by", "created_at", "queued_at",
            "started_at", "finished_at", "heartbeat_at", "lease_expires_at", "cancel_requested_at",
            "attempt_count", "max_attempts", "progress_done", "progress_total", "progress_fraction",
            "result", "error", "failure_class",
        ]


class JobDetailSerializer(JobSerializer):
    attempts = JobAttemptSerializer(many=True, read_only=True)
    transitions = JobTransitionSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["attempts", "transitions"]


class DiagnosticJobSerializer(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=3600, default=1.0)


class QueueSubjectSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text='"evaluation" (pk: the run), "training" (the training run), '
                                           '"checkpoint" (a validation\'s), or "" (a refit, a diagnostic job).')
    pk = serializers.IntegerField(allow_null=True)
    label = serializers.CharField()


class QueueJobSerializer(serializers.Serializer):
    """A queued or running job on the queue: a row of webapp.pages.selectors.queue_jobs (a
    webapp.jobs.selectors.QueueEntry and what the job works on)."""

    id = serializers.IntegerField(source="entry.job.pk")
    kind = serializers.CharField(source="entry.kind")
    task_name = serializers.CharField(source="entry.job.task_name")
    params = serializers.JSONField(source="entry.job.params")
    subject = QueueSubjectSerializer()
    state = serializers.CharField(source="entry.job.state")
    created_by = serializers.CharField(source="entry.job.created_by.username", default=None)
    queue = serializers.CharField(source="entry.queue")
    worker_pool = serializers.CharField(source="entry.pool")
    position = serializers.IntegerField(source="entry.position", allow_null=True,
                                        help_text="1 = starts next in its queue; null while running.")
    queued_at = serializers.DateTimeField(source="entry.job.queued_at")
    due_at = serializers.DateTimeField(source="entry.job.due_at", allow_null=True)
    started_at = serializers.DateTimeField(source="entry.job.started_at", allow_null=True)
    waited_seconds = serializers.FloatField(source="entry.waited_seconds", allow_null=True,
                                            help_text="Queued: seconds since it became due.")
    starts_in_seconds = serializers.FloatField(source="entry.starts_in_seconds", allow_null=True,
                                               help_text="Queued: estimated; null = unknown.")
    finishes_in_seconds = serializers.FloatField(source="entry.finishes_in_seconds", allow_null=True,
                                                 help_text="Estimated; null = unknown.")
    progress_done = serializers.IntegerField(source="entry.job.progress_done")
    progress_total = serializers.IntegerField(source="entry.job.progress_total", allow_null=True)


class QueueSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    worker_pool = serializers.CharField(source="pool")
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    oldest_queued_seconds = serializers.FloatField(allow_null=True, help_text="Since it became due.")
    slots_assumed = serializers.IntegerField()


class QueueSerializer(serializers.Serializer):
    queues = QueueSummarySerializer(many=True)
    jobs = QueueJobSerializer(many=True)
    eta_method = serializers.CharField()
