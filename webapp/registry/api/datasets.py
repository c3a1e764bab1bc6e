"""The dataset mirror over the API, the twin of ``python -m evaluation datasets status|prefetch`` and
``manage.py datasets``: GET /api/v1/datasets/ (anyone; ``?suite=``, staff ``?verify=true``) and staff
POST /api/v1/datasets/prefetch/, which queues a prefetch job on the cpu queue."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs.api.serializers import JobSerializer
from webapp.registry.selectors.datasets import dataset_mirror
from webapp.registry.services import datasets_prefetch_queue


class DatasetMirrorQuerySerializer(serializers.Serializer):
    suite = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                  help_text="Only this suite's benchmarks, e.g. reasoning.")
    verify = serializers.BooleanField(required=False, default=False,
                                      help_text="Staff only: re-hash every file (slow for large datasets).")


class MirrorRecordSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Benchmark key.")
    task = serializers.CharField(help_text="lmms-eval task name.")
    repo_id = serializers.CharField(help_text="Hub dataset repository.")
    folder = serializers.CharField()
    present = serializers.BooleanField(help_text="Its data are complete in the mirror: the benchmark can run.")
    revision = serializers.CharField(allow_null=True)
    bytes = serializers.IntegerField(allow_null=True)
    fingerprint = serializers.CharField(allow_null=True)
    problem = serializers.CharField(allow_blank=True, help_text="Why it is not present ('' when it is).")
    prefetch = serializers.CharField(help_text="The command that fills it, on a machine with hub access.")


class DatasetMirrorSerializer(serializers.Serializer):
    root = serializers.CharField(help_text="FRONTIER_DATASETS_DIR.")
    suite = serializers.CharField(allow_null=True)
    verified = serializers.BooleanField()
    benchmarks = MirrorRecordSerializer(many=True)
    generated = serializers.ListField(child=serializers.CharField(),
                                      help_text="Benchmarks generated locally: they need no data.")


class DatasetPrefetchSerializer(serializers.Serializer):
    suite = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                  help_text="Every real benchmark of a suite, e.g. reasoning.")
    tasks = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=64,
                                  help_text="lmms-eval task names or benchmark keys, e.g. [\"pope\", \"mme\"].")
    revision = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                     help_text="Hub revision (branch, tag or commit); with one task only.")


class DatasetPrefetchJobSerializer(serializers.Serializer):
    job = JobSerializer()
    url = serializers.CharField(help_text="The job: GET it to follow the prefetch.")
    coalesced = serializers.BooleanField(help_text="True: a prefetch of the same datasets was already queued or "
                                                   "running, and this is that job.")
    datasets = serializers.ListField(child=serializers.CharField(), help_text="The tasks whose data it fetches.")
    detail = serializers.CharField()


class DatasetMirrorView(APIView):
    """Per real benchmark: whether its hub data are in the dataset mirror (revision, size, fingerprint), or why
    not and the command that fetches them."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[DatasetMirrorQuerySerializer], responses={200: DatasetMirrorSerializer})
    def get(self, request):
        query = DatasetMirrorQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        verify = query.validated_data["verify"]
        if verify and not request.user.is_staff:
            raise PermissionDenied("Only staff may verify the mirror (it re-hashes every file); "
                                   "leave out verify=true for the quick check.")
        mirror = dataset_mirror(suite=query.validated_data.get("suite") or None, verify=verify)
        return Response(DatasetMirrorSerializer(mirror).data)


class DatasetPrefetchView(APIView):
    """Staff: queue one job on the cpu queue that fetches a suite's or some tasks' hub datasets into the mirror;
    while one for the same datasets is queued or running, that job is returned instead."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=DatasetPrefetchSerializer, responses={202: DatasetPrefetchJobSerializer})
    def post(self, request):
        body = DatasetPrefetchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job, coalesced = datasets_prefetch_queue(**body.validated_data, by=request.user)
        url = reverse("api-job-detail", args=[job.pk])
        tasks = job.params.get("tasks", [])
        detail = (f"A prefetch of these datasets is already {job.state} (job {job.pk}); nothing new was queued."
                  if coalesced else f"Queued job {job.pk} on the cpu queue to fetch {', '.join(tasks)}.")
        detail += (f" Follow it at {url}; once it has succeeded, GET /api/v1/datasets/ shows the data as present. "
                   f"If it fails for lack of hub access, its error says how to fill the mirror by hand.")
        data = {"job": job, "url": url, "coalesced": coalesced, "datasets": tasks, "detail": detail}
        return Response(DatasetPrefetchJobSerializer(data).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": url})
