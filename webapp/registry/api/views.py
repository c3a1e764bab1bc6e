import re
from pathlib import PurePosixPath

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from webapp.core.api import readable_or_refused
from webapp.core.parsers import BoundedJSONParser
from webapp.core.storage import storage_read, storage_tar
from webapp.registry.api.bodies import chunk_body
from webapp.registry.api.filters import BenchmarkResultFilter, EvaluationRunFilter
from webapp.registry.api.serializers import (
    BenchmarkResultSerializer,
    CheckpointDetailSerializer,
    CheckpointHideSerializer,
    CheckpointReferenceSerializer,
    CheckpointSerializer,
    CheckpointUploadSerializer,
    EvaluationCreateSerializer,
    EvaluationRunDetailSerializer,
    EvaluationRunSerializer,
    SuiteSerializer,
    UploadCompleteSerializer,
    UploadSerializer,
    UploadStartSerializer,
)
from webapp.registry.models import BenchmarkResult, BenchmarkSuite, EvaluationRun, Upload
from webapp.registry.selectors import (
    can_manage,
    checkpoint_files,
    checkpoints_visible_to,
    results_visible_to,
    runs_visible_to,
)
from webapp.registry.selectors.stale import stale_results
from webapp.registry.services import (
    RegistryError,
    checkpoint_delete,
    checkpoint_register_reference,
    checkpoint_submit,
    run_cancel,
    run_rerun_failed,
    run_start,
    stale_results_reevaluate,
    upload_append,
    upload_complete,
    upload_start,
)

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class RawChunkParser(BaseParser):
    """Chunks are raw bytes; the view streams them from the request itself."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


def _checkpoint_response(request, checkpoint, created: bool) -> Response:
    data = CheckpointSerializer(checkpoint, context={"request": request}).data
    return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
                    headers={"Location": str(data["url"])})


class CheckpointListView(generics.ListAPIView):
    """Checkpoints you can see (anonymous visitors: the public ones). POST a multipart `file` + `name` to
    upload a small one in one go, or JSON `{name, reference}` to register one on the workers' shared
    storage or the Hugging Face hub."""

    serializer_class = CheckpointSerializer
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    def get_queryset(self):
        return checkpoints_visible_to(self.request.user)

    @extend_schema(
        request={
            "multipart/form-data": CheckpointUploadSerializer,
            "application/x-www-form-urlencoded": CheckpointUploadSerializer,
            "application/json": CheckpointReferenceSerializer,
        },
        responses={201: CheckpointSerializer, 200: CheckpointSerializer},
    )
    def post(self, request):
        if request.content_type.startswith("application/json"):
            return self._register_reference(request)
        serializer = CheckpointUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        checkpoint, created = checkpoint_submit(
            owner=request.user, name=serializer.validated_data["name"], archive=upload, filename=upload.name,
            visibility=serializer.validated_data["visibility"], suites=serializer.validated_data.get("suites"),
        )
        return _checkpoint_response(request, checkpoint, created)

    def _register_reference(self, request) -> Response:
        if isinstance(request.data, dict) and "reference" not in request.data:
            raise RegistryError(
                "A JSON body registers a checkpoint by reference: {name, reference: {path} or {hub, revision}}. "
                "To upload an archive, send multipart/form-data with file and name."
            )
        serializer = CheckpointReferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        checkpoint = checkpoint_register_reference(
            owner=request.user, name=serializer.validated_data["name"],
            reference=dict(serializer.validated_data["reference"]),
            visibility=serializer.validated_data["visibility"], suites=serializer.validated_data.get("suites"),
        )
        return _checkpoint_response(request, checkpoint, created=True)


class CheckpointDetailView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=CheckpointDetailSerializer)
    def get(self, request, pk: int):
        checkpoint = readable_or_refused(checkpoints_visible_to(request.user), request, pk, "checkpoint")
        return Response(CheckpointDetailSerializer(checkpoint, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        checkpoint = get_object_or_404(checkpoints_visible_to(request.user), pk=pk)
        if checkpoint.owner_id != request.user.pk and not request.user.is_staff:
            return Response({"detail": "Only its owner can delete a checkpoint."}, status=status.HTTP_403_FORBIDDEN)
        checkpoint_delete(checkpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _downloadable(request, pk: int):
    checkpoint = readable_or_refused(checkpoints_visible_to(request.user), request, pk, "checkpoint")
    files = checkpoint_files(checkpoint)
    if not files:
        why = ("a published result has no files" if checkpoint.published
               else f"it is {checkpoint.status}: files are kept once a checkpoint is validated (ready)")
        raise Http404(f"Checkpoint {pk} has no files to download: {why}.")
    return checkpoint, files


class CheckpointArchiveView(APIView):
    """Every file of a checkpoint you may see, as one .tar streamed from storage (local or S3), under a
    folder checkpoint-<id>/: `curl -fL URL | tar -x` gives the folder `python -m evaluation run` takes."""

    permission_classes = [permissions.AllowAny]  # the checkpoint's visibility decides

    @extend_schema(responses={(200, "application/x-tar"): bytes})
    def get(self, request, pk: int):
        checkpoint, files = _downloadable(request, pk)
        top = f"checkpoint-{checkpoint.pk}"
        length, body = storage_tar(checkpoint.files_prefix.rstrip("/"), [(f["name"], f["size"]) for f in files], top,
                                   checkpoint.created_at.timestamp())
        response = StreamingHttpResponse(body, content_type="application/x-tar")
        response["Content-Length"] = str(length)
        response["Content-Disposition"] = f'attachment; filename="{top}.tar"'
        return response


class CheckpointFileView(APIView):
    """One file of a checkpoint you may see, streamed from storage; `name` as listed on its page."""

    permission_classes = [permissions.AllowAny]  # the checkpoint's visibility decides

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int, name: str):
        checkpoint, files = _downloadable(request, pk)
        size = {f["name"]: f["size"] for f in files}.get(name)
        if size is None:
            raise Http404(f"Checkpoint {pk} has no file {name!r}; its files are listed on its page and at /archive/.")
        response = StreamingHttpResponse(storage_read(f"{checkpoint.files_prefix.rstrip('/')}/{name}"),
                                         content_type="application/octet-stream")
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition_header(True, PurePosixPath(name).name)
        return response


class CheckpointHideView(APIView):
    """Staff: hide a checkpoint from others (or show it again with {"hidden": false})."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=CheckpointHideSerializer, responses=CheckpointSerializer)
    def post(self, request, pk: int):
        checkpoint = get_object_or_404(checkpoints_visible_to(request.user), pk=pk)
        serializer = CheckpointHideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        checkpoint.hidden = serializer.validated_data["hidden"]
        checkpoint.save(update_fields=["hidden"])
        return Response(CheckpointSerializer(checkpoint, context={"request": request}).data)


class UploadStartView(APIView):
    """Start a resumable upload: then PUT chunks with Content-Range, then POST complete."""

    @extend_schema(request=UploadStartSerializer, responses={201: UploadSerializer})
    def post(self, request):
        serializer = UploadStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = upload_start(owner=request.user, **serializer.validated_data)
        return Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED,
                        headers={"Location": str(reverse("api-upload-detail", args=[upload.pk], request=request))})


class UploadDetailView(APIView):
    parser_classes = [RawChunkParser]

    def _upload(self, request, pk: int) -> Upload:
        return get_object_or_404(Upload, pk=pk, owner=request.user)

    @extend_schema(responses=UploadSerializer)
    def get(self, request, pk: int):
        """Where to resume: the number of bytes received (`offset`)."""
        return Response(UploadSerializer(self._upload(request, pk)).data)

    @extend_schema(
        request={"application/octet-stream": bytes}, responses=UploadSerializer,
        parameters=[OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, required=True,
                                     description="bytes START-END/TOTAL")],
    )
    def put(self, request, pk: int):
        """Append one chunk: raw bytes, `Content-Range: bytes START-END/TOTAL`, START = current offset."""
        upload = self._upload(request, pk)
        match = CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
        if not match:
            raise RegistryError("Send Content-Range: bytes START-END/TOTAL with each chunk.")
        start, end, total = (int(group) for group in match.groups())
        if total != upload.size or end < start:
            raise RegistryError(f"Content-Range total must be the declared size {upload.size}, with END >= START.")
        body_bytes = int(request.META.get("CONTENT_LENGTH") or 0)
        if body_bytes > end - start + 1:  # a shorter body is a cut-short chunk: upload_append says so
            raise RegistryError(
                f"The body has {body_bytes} bytes but Content-Range bytes {start}-{end} covers {end - start + 1}; "
                f"send exactly the range's bytes (nothing was stored; the upload still has {upload.offset} bytes)."
            )
        upload = upload_append(upload, start=start, stream=chunk_body(request), length=end - start + 1)
        return Response(UploadSerializer(upload).data)


class UploadCompleteView(APIView):
    @extend_schema(request=UploadCompleteSerializer, responses={201: CheckpointSerializer, 200: CheckpointSerializer})
    def post(self, request, pk: int):
        upload = get_object_or_404(Upload, pk=pk, owner=request.user)
        serializer = UploadCompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        checkpoint, created = upload_complete(upload, **serializer.validated_data)
        return _checkpoint_response(request, checkpoint, created)


class SuiteListView(generics.ListAPIView):
    serializer_class = SuiteSerializer
    queryset = BenchmarkSuite.objects.prefetch_related("benchmarks").order_by("name")


class EvaluationListView(generics.ListAPIView):
    serializer_class = EvaluationRunSerializer
    parser_classes = [BoundedJSONParser, FormParser]
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filter_backends = [DjangoFilterBackend]
    filterset_class = EvaluationRunFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return EvaluationRun.objects.none()
        return runs_visible_to(self.request.user).prefetch_related("benchmark_jobs__job")

    @extend_schema(request=EvaluationCreateSerializer, responses={201: EvaluationRunSerializer})
    def post(self, request):
        serializer = EvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        checkpoint = checkpoints_visible_to(request.user).filter(pk=serializer.validated_data["checkpoint"]).first()
        if checkpoint is None:
            raise Http404("No such checkpoint, or it is not yours.")
        if checkpoint.owner_id != request.user.pk and not request.user.is_staff:
            return Response({"detail": "Only its owner can evaluate a checkpoint."}, status=status.HTTP_403_FORBIDDEN)
        suite = get_object_or_404(BenchmarkSuite, name=serializer.validated_data["suite"])
        run = run_start(checkpoint=checkpoint, suite=suite, created_by=request.user,
                        limit=serializer.validated_data.get("limit"))
        return Response(EvaluationRunSerializer(run).data, status=status.HTTP_201_CREATED)


def _own_run(request, pk: int):
    run = get_object_or_404(runs_visible_to(request.user), pk=pk)
    if run.checkpoint.owner_id != request.user.pk and not request.user.is_staff:
        raise Http404("No such evaluation, or it is not yours.")
    return run


class EvaluationDetailView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=EvaluationRunDetailSerializer)
    def get(self, request, pk: int):
        runs = runs_visible_to(request.user).prefetch_related("benchmark_jobs__job__attempts")
        run = readable_or_refused(runs, request, pk, "evaluation")
        internals = can_manage(request.user, run.checkpoint)
        return Response(EvaluationRunDetailSerializer(run, context={"internals": internals}).data)


class EvaluationRerunView(APIView):
    """Queue again only the benchmarks that failed or were cancelled."""

    @extend_schema(request=None, responses={202: EvaluationRunSerializer})
    def post(self, request, pk: int):
        run = _own_run(request, pk)
        run_rerun_failed(run, by=request.user)
        return Response(EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class EvaluationCancelView(APIView):
    @extend_schema(request=None, responses={202: EvaluationRunSerializer})
    def post(self, request, pk: int):
        run = _own_run(request, pk)
        run_cancel(run, by=request.user)
        return Response(EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ResultListView(generics.ListAPIView):
    serializer_class = BenchmarkResultSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filter_backends = [DjangoFilterBackend]
    filterset_class = BenchmarkResultFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return BenchmarkResult.objects.none()
        return results_visible_to(self.request.user).order_by("id")


class StaleResultsView(APIView):
    """Staff: GET lists the stale results (the newest result of a checkpoint on a benchmark whose task hash or
    dataset revision is not the current one); POST ``{"benchmark": key?, "dry_run": bool?}`` queues their
    re-evaluation, one run per checkpoint and suite with the stale benchmarks; a second POST queues nothing new."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=[OpenApiParameter("benchmark", str, required=False)],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        rows = stale_results(benchmark_key=request.query_params.get("benchmark") or None)
        return Response({"count": len(rows), "results": rows})

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT})
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        benchmark, dry_run = body.get("benchmark") or None, body.get("dry_run", False)
        if not isinstance(dry_run, bool) or not (benchmark is None or isinstance(benchmark, str)):
            return Response({"detail": "benchmark is a benchmark key (string) and dry_run a boolean."},
                            status=status.HTTP_400_BAD_REQUEST)
        outcome = stale_results_reevaluate(benchmark_key=benchmark, dry_run=dry_run, by=request.user)
        return Response(outcome, status=status.HTTP_200_OK if dry_run else status.HTTP_202_ACCEPTED)
