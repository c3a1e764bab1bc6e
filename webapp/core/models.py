from django.db import models


class DataVersion(models.Model):
    """One row whose counter moves in the same transaction as every write that changes what
    leaderboards, frontiers and fits show. Pages poll it (one primary-key read) and responses
    are cached under it (webapp.core.versioning)."""

    counter = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "leaderboard_dataversion"  # created by the leaderboard app, where it lived until 2026-12

    def __str__(self) -> str:
        return f"data version {self.counter}"
