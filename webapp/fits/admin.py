from django.contrib import admin

from webapp.fits.models import ScalingLawFit


@admin.register(ScalingLawFit)
class ScalingLawFitAdmin(admin.ModelAdmin):
    list_display = ["suite", "scope", "law", "query_tokens", "status", "n_points", "sse", "loso_mape", "created_at"]
    list_filter = ["suite", "law", "scope", "status"]
    readonly_fields = [f.name for f in ScalingLawFit._meta.fields if f.name != "parameter_draws"]
    exclude = ["parameter_draws"]  # ~1000 rows of numbers: the API and the deploy page use them
