from django.contrib import admin

from webapp.training.models import Sweep, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "compressor", "visual_tokens", "stage", "state", "steps_done", "steps_total",
                    "last_loss", "sweep", "created_at"]
    list_filter = ["compressor", "stage", "job__state"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner", "job", "sweep"]
    readonly_fields = ["job", "steps_done", "steps_total", "last_loss", "resumed_from_step", "eta_at", "progress_at"]

    @admin.display(description="state", ordering="job__state")
    def state(self, run) -> str:
        return run.job.state


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "created_at"]
    search_fields = ["name", "owner__username"]
