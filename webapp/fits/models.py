from django.db import models

from webapp.registry.models import BenchmarkSuite, Compressor


class FitStatus(models.TextChoices):
    FITTED = "fitted"
    CANNOT_FIT = "cannot_fit", "cannot fit"


class ScalingLawFit(models.Model):
    """One fit of error(N, V) for a suite and a compressor (or all), with the decisions it
    implies at a query length Q. A new row is written only when the input data changed
    (`fingerprint`), so the latest row per (suite, scope, law, Q) is the current fit.

    When the input cannot be fitted (e.g. every checkpoint has the same error) the row records
    that, with `status` cannot_fit, the `reason` users see and no parameters or statistics: an
    unchanged input is then not tried again, and pages show the reason."""

    suite = models.ForeignKey(BenchmarkSuite, on_delete=models.CASCADE, related_name="fits")
    compressor = models.ForeignKey(
        Compressor, null=True, blank=True, on_delete=models.CASCADE, related_name="fits",
        help_text="Empty: all compressors together.",
    )
    scope = models.CharField(max_length=100, help_text="'all' or the compressor's method/version.")
    law = models.CharField(max_length=50)
    query_tokens = models.FloatField(help_text="Q used for the derived decisions.")
    status = models.CharField(max_length=20, choices=FitStatus.choices, default=FitStatus.FITTED)
    reason = models.TextField(blank=True, help_text="Why the input cannot be fitted (\"cannot fit: …\"); empty for a fit.")
    reason_code = models.CharField(max_length=50, blank=True, help_text="fitting.FitInputError.code, e.g. zero_spread.")
    params = models.JSONField(default=dict, blank=True)
    intervals = models.JSONField(default=dict, help_text="95 % bootstrap intervals: parameters and decisions.")
    decisions = models.JSONField(default=dict, help_text="V*(Q) and other derived choices.")
    parameter_draws = models.JSONField(
        default=list, blank=True,
        help_text="Bootstrap parameter draws: one row per valid resample, columns in the law's parameter order. "
                  "Empty for fits stored before draws were kept.",
    )
    sse = models.FloatField(null=True, blank=True)
    rmse = models.FloatField(null=True, blank=True)
    r2 = models.FloatField(null=True, blank=True, help_text="Empty when undefined (the errors have no spread).")
    mape = models.FloatField(null=True, blank=True, help_text="Empty when undefined (every error is 0).")
    loso_mape = models.FloatField(null=True, blank=True)
    active_bounds = models.JSONField(default=list)
    warnings = models.JSONField(default=list)
    residuals = models.JSONField(default=list)
    n_points = models.PositiveIntegerField(help_text="Checkpoints in the input (several may share one (N, V)).")
    method = models.JSONField(
        default=dict, blank=True,
        help_text="How it was fitted: fitting.FitResult.method (repeated (N, V) pooled as replicates, counts of "
                  "checkpoints and configurations, their spread) and how the bootstrap resampled.",
    )
    fingerprint = models.CharField(max_length=64)
    seconds = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["suite", "scope", "law", "query_tokens", "fingerprint"], name="unique_fit_per_input"
            )
        ]
        indexes = [models.Index(fields=["suite", "scope", "law", "query_tokens", "-created_at"], name="fit_latest_idx")]

    def __str__(self) -> str:
        what = "fit" if self.status == FitStatus.FITTED else "cannot-fit record"
        return f"{self.law} {what} of {self.suite}/{self.scope} (Q={self.query_tokens:g}, {self.n_points} points)"


class RefitState(models.Model):
    """How far the refit brought a suite's measured scores. The next refit rescores only the checkpoints
    with results created since ``last_started_at`` (less a margin for transactions still open then); a
    change of ``scores_key`` (the suite's benchmarks and how they are normalised) rescores all of them."""

    suite = models.OneToOneField(BenchmarkSuite, on_delete=models.CASCADE, related_name="refit_state")
    scores_key = models.CharField(max_length=64)
    last_started_at = models.DateTimeField()
    last_full_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"refit state of {self.suite} (last {self.last_started_at:%Y-%m-%d %H:%M:%S})"
