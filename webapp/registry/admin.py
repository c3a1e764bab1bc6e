from django.contrib import admin

from webapp.registry.models import (
    Benchmark,
    BenchmarkResult,
    BenchmarkSuite,
    Checkpoint,
    Compressor,
    EvaluationRun,
    LanguageModel,
    SuiteScore,
)


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    list_display = ["name", "family", "n_params", "n_params_counted", "n_params_nominal", "hidden_size", "revision"]
    list_filter = ["family", "n_params_counted"]
    search_fields = ["name", "family", "source"]


@admin.register(Compressor)
class CompressorAdmin(admin.ModelAdmin):
    list_display = ["method", "version", "trainable"]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "llm", "compressor", "visual_tokens", "status", "visibility", "published", "hidden"]
    list_filter = ["status", "visibility", "published", "hidden", "compressor__method"]
    search_fields = ["name", "sha256", "owner__username"]
    actions = ["hide", "unhide"]

    @admin.action(description="Hide selected checkpoints from leaderboards")
    def hide(self, request, queryset):
        queryset.update(hidden=True)

    @admin.action(description="Show selected checkpoints again")
    def unhide(self, request, queryset):
        queryset.update(hidden=False)


class BenchmarkInline(admin.TabularInline):
    model = Benchmark
    extra = 0


@admin.register(BenchmarkSuite)
class BenchmarkSuiteAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "description"]
    inlines = [BenchmarkInline]


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "checkpoint", "suite", "created_by", "created_at"]
    list_filter = ["suite"]


@admin.register(BenchmarkResult)
class BenchmarkResultAdmin(admin.ModelAdmin):
    list_display = ["run", "benchmark", "metric", "value", "stderr", "n"]
    list_filter = ["benchmark__suite", "benchmark"]


@admin.register(SuiteScore)
class SuiteScoreAdmin(admin.ModelAdmin):
    list_display = ["checkpoint", "suite", "error", "stderr", "n_benchmarks", "source", "updated_at"]
    list_filter = ["suite", "source"]
