from django.db import migrations

from webapp.registry.catalog import SUITE_DESCRIPTIONS, default_catalog


def create_default_catalog(apps, schema_editor):
    suite_model = apps.get_model("registry", "BenchmarkSuite")
    benchmark_model = apps.get_model("registry", "Benchmark")
    for suite_name, rows in default_catalog().items():
        suite, _ = suite_model.objects.get_or_create(
            name=suite_name, defaults={"description": SUITE_DESCRIPTIONS.get(suite_name, "")}
        )
        for row in rows:
            benchmark_model.objects.get_or_create(suite=suite, key=row["key"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(create_default_catalog, migrations.RunPython.noop)]
