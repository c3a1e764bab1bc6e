from django.apps import AppConfig
from django.db.models.signals import post_delete


def _checkpoint_deleted(sender, **kwargs):
    from webapp.fits.services import refit_request

    refit_request()


class FitsConfig(AppConfig):
    name = "webapp.fits"
    label = "fits"
    verbose_name = "Scaling-law fits"

    def ready(self):
        # A deleted checkpoint's points leave every fit it was in. Deletions come from the registry's
        # service, the admin and cascades: one receiver requests the (coalesced) refit for all of them, so
        # the registry, which the fits are built on, need not know the fits exist.
        from webapp.registry.models import Checkpoint

        post_delete.connect(_checkpoint_deleted, sender=Checkpoint, dispatch_uid="fits-checkpoint-deleted")
