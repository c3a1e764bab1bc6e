from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _checkpoint_changed(sender, **kwargs):
    from webapp.core.versioning import data_version_bump

    data_version_bump()


class LeaderboardConfig(AppConfig):
    name = "webapp.leaderboard"
    label = "leaderboard"
    verbose_name = "Leaderboards, frontiers and the deploy calculator"

    def ready(self):
        # A checkpoint's status, visibility, hidden flag or deletion changes what leaderboards show,
        # and these are written from many places (services, the hide view, the admin): one
        # receiver keeps the data version honest for all of them. Scores and fits bump it in
        # their own services.
        from webapp.registry.models import Checkpoint

        post_save.connect(_checkpoint_changed, sender=Checkpoint, dispatch_uid="leaderboard-checkpoint-saved")
        post_delete.connect(_checkpoint_changed, sender=Checkpoint, dispatch_uid="leaderboard-checkpoint-deleted")
