import django_filters

from webapp.registry.models import BenchmarkResult


class BenchmarkResultFilter(django_filters.FilterSet):
    checkpoint = django_filters.NumberFilter(field_name="run__checkpoint_id")
    suite = django_filters.CharFilter(field_name="benchmark__suite__name")
    benchmark = django_filters.CharFilter(field_name="benchmark__key")
    metric = django_filters.CharFilter()
    run = django_filters.NumberFilter(field_name="run_id")

    class Meta:
        model = BenchmarkResult
        fields = ["checkpoint", "suite", "benchmark", "metric", "run"]
