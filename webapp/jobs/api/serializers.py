from rest_framework import serializers

from webapp.jobs.models import Job, JobAttempt, JobTransition


class JobAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobAttempt
        fields = [
            "number", "task_id", "worker_hostname", "worker_pid", "started_at", "finished_at",
            "duration_seconds", "outcome", "error_class", "failure_class", "error_message", "log_tail",
        ]


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
