from django.db import models


class DataVersion(models.Model):
    """One row whose counter moves in the same transaction as every write that changes what
    leaderboards, frontiers and fits show. Pages poll it (one primary-key read) and responses
    are cached under it."""

    counter = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"data version {self.counter}"
