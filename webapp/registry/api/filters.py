import django_filters
from django import forms

from webapp.core.limits import MAX_ID
from webapp.registry.models import BenchmarkResult, EvaluationRun


class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number the database's integer keys can hold; anything else is a 400
    (a plain NumberFilter passes 1e30 on to the database driver, which overflows)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class BenchmarkResultFilter(django_filters.FilterSet):
    checkpoint = IdFilter(field_name="run__checkpoint_id")
    suite = django_filters.CharFilter(field_name="benchmark__suite__name")
    benchmark = django_filters.CharFilter(field_name="benchmark__key")
    metric = django_filters.CharFilter()
    run = IdFilter(field_name="run_id")

    class Meta:
        model = BenchmarkResult
        fields = ["checkpoint", "suite", "benchmark", "metric", "run"]


class EvaluationRunFilter(django_filters.FilterSet):
    checkpoint = IdFilter(field_name="checkpoint_id")
    suite = django_filters.CharFilter(field_name="suite__name")

    class Meta:
        model = EvaluationRun
        fields = ["checkpoint", "suite"]
