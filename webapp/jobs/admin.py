from django.contrib import admin, messages

from webapp.jobs.models import Job, JobAttempt, JobTransition
from webapp.jobs.services import JobError, job_cancel


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in JobAttempt._meta.fields]


class JobTransitionInline(admin.TabularInline):
    model = JobTransition
    extra = 0
    can_delete = False
    readonly_fields = ["from_state", "to_state", "at", "reason"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "task_name", "state", "attempt_count", "created_by", "queued_at", "heartbeat_at", "finished_at"]
    list_filter = ["state", "task_name"]
    search_fields = ["id", "task_name", "error"]
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [JobTransitionInline, JobAttemptInline]
    actions = ["cancel_jobs"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            try:
                job_cancel(job, reason=f"cancelled by {request.user} in admin")
            except JobError as error:
                self.message_user(request, str(error), messages.WARNING)
