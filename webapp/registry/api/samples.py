"""GET /api/v1/evaluations/<id>/samples/<benchmark key>/: the per-item records of one benchmark result.

An evaluation (run) holds one result per benchmark key, so the pair names the result the results API lists under
``?run=<id>&benchmark=<key>``; a reused result serves the records of the evaluation that ran. Visible as that
evaluation is (private checkpoints to their owner and staff), paginated like the other lists (``page``,
``page_size`` up to 500), filtered to ``wrong=true`` items or by a score ``field`` (and its ``value``)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination

from webapp.registry.selectors.samples import SamplesNotFound, harness_output_samples, visible_harness_output


class SamplesPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SamplesQuerySerializer(serializers.Serializer):
    wrong = serializers.BooleanField(required=False, default=False,
                                     help_text="Only items whose primary score (the benchmark's metric) is 0/false.")
    field = serializers.CharField(required=False, max_length=100,
                                  help_text="Only items with this score field, e.g. pope_accuracy.")
    value = serializers.CharField(required=False, max_length=200,
                                  help_text="With field: only items where it equals this (1, 0, true, false, text).")
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=SamplesPagination.max_page_size)

    def validate(self, data):
        if "value" in data and not data.get("field"):
            raise serializers.ValidationError({"value": "Give the score field it is a value of, e.g. "
                                                        "?field=pope_accuracy&value=0."})
        return data


class SampleRecordSerializer(serializers.Serializer):
    task = serializers.CharField(help_text="lmms-eval task (a group benchmark's subtask).")
    doc_id = serializers.IntegerField()
    item_id = serializers.CharField(help_text="doc_id, and the document's own id (question_id, index, pid or id).")
    prompt_sha256 = serializers.CharField(help_text="Of the prompt text the model was given.")
    prediction = serializers.JSONField(help_text="The filtered response lmms-eval scored.")
    target = serializers.JSONField()
    scores = serializers.DictField(child=serializers.JSONField(), help_text="lmms-eval's per-item metric values.")
    tokens_generated = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True, help_text="Its share of its batch's wall time.")


class ResultSamplesView(generics.GenericAPIView):
    serializer_class = SampleRecordSerializer
    pagination_class = SamplesPagination
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=[SamplesQuerySerializer], responses={200: SampleRecordSerializer(many=True)})
    def get(self, request, pk: int, benchmark: str):
        query = SamplesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            output = visible_harness_output(request.user, pk, benchmark)
        except SamplesNotFound as error:
            raise NotFound(str(error)) from error
        records = harness_output_samples(output, wrong=query.validated_data["wrong"],
                                         field=query.validated_data.get("field"),
                                         value=query.validated_data.get("value"))
        return self.get_paginated_response(self.paginate_queryset(records))
