from django.apps import AppConfig
from django.db.models.signals import post_migrate


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
