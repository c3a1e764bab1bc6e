from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _validation_failed(sender, job, **kwargs):
    from webapp.jobs.task_names import VALIDATE
    from webapp.registry.services import checkpoint_validation_failed

    if job.task_name == VALIDATE.name:
        checkpoint_validation_failed(job.params.get("checkpoint_id"), job.error)


def _sync_benchmark_catalog(sender, **kwargs):
    from webapp.registry.services import benchmark_catalog_sync

    benchmark_catalog_sync()


class RegistryConfig(AppConfig):
    name = "webapp.registry"
    label = "registry"
    verbose_name = "Checkpoint registry and results"

    def ready(self):
        # After every migrate (and every test-database flush, like content types), the default
        # suites and benchmarks exist; rows an admin changed are left as they are.
        post_migrate.connect(_sync_benchmark_catalog, sender=self)
        # A validation job that fails for good (attempts used up by a full disk, a database outage, lost
        # workers) leaves its checkpoint with a final state and the reason, not `validating` forever.
        from webapp.jobs.signals import job_failed

        job_failed.connect(_validation_failed, dispatch_uid="registry-validation-failed")
