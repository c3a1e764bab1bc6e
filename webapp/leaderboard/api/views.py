"""JSON (and CSV) reads for leaderboards, frontiers, compressors and the deploy calculator.

Open to anonymous users (who see public and published rows). Every response carries an ETag
and is cached under the data version, so polling pages get 304s, and a burst of clients after a
result lands computes each distinct response once per process."""

import hashlib

from django.http import HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from webapp.core.versioning import data_version, versioned_cache
from webapp.leaderboard.api.renderers import LeaderboardCSVRenderer
from webapp.leaderboard.api.serializers import (
    CompressorQuerySerializer,
    DeployQuerySerializer,
    FrontierQuerySerializer,
    LeaderboardQuerySerializer,
)
from webapp.leaderboard.selectors import (
    LeaderboardError,
    NoFitYet,
    compressor_table,
    deploy_recommendation,
    frontier_chart,
    leaderboard_page,
    viewer_key,
)


class BadQuery(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"


class FitMissing(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "no_fit"


def _not_modified(request, etag: str) -> bool:
    return etag in parse_etags(request.headers.get("If-None-Match", ""))


class ReadOnlyAPIView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "leaderboard"
    renderer_classes = [JSONRenderer]

    def handle_exception(self, exc):
        if isinstance(exc, NoFitYet):
            exc = FitMissing(str(exc))
        elif isinstance(exc, LeaderboardError):
            exc = BadQuery(str(exc))
        return super().handle_exception(exc)


class VersionedReadView(ReadOnlyAPIView):
    """GET: the rendered body cached under (data version, viewer, format, raw query), with an ETag
    of the body (If-None-Match → 304). The query is validated only to compute a body: the same
    raw parameters always validate the same way, and refused queries are never cached."""

    query_serializer: type  # subclasses also define read(request, params) -> dict

    def get(self, request):
        version = data_version()
        renderer = request.accepted_renderer

        def render():
            params = self.query_serializer(data=request.query_params)
            params.is_valid(raise_exception=True)
            data = {**self.read(request, params), "version": version}
            body = renderer.render(data, renderer.media_type, self.get_renderer_context())
            return body, f'"{hashlib.sha1(body).hexdigest()}"'

        parts = (type(self).__name__, viewer_key(request.user), renderer.format, request.build_absolute_uri("/"),
                 sorted(request.query_params.lists()))
        body, etag = versioned_cache(parts, render, version=version)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache", "X-Data-Version": version}
        if _not_modified(request, etag):
            return HttpResponseNotModified(headers=headers)
        content_type = renderer.media_type + (f"; charset={renderer.charset}" if renderer.charset else "")
        response = HttpResponse(body, content_type=content_type, headers=headers)
        if renderer.format == "csv":
            suite = request.query_params.get("suite", "")
            response["Content-Disposition"] = f'attachment; filename="leaderboard-{suite}.csv"'
        return response


def _with_urls(request, rows: list[dict]) -> None:
    prefix = request.build_absolute_uri(reverse("api-checkpoint-list"))
    for row in rows:
        row["url"] = f"{prefix}{row['id']}/"


class LeaderboardView(VersionedReadView):
    """One row per checkpoint you may see with a score on the suite: sort by any column, filter,
    search, paginate; `?format=csv` exports exactly the rows of the JSON page, `all=true` every filtered row."""

    query_serializer = LeaderboardQuerySerializer
    renderer_classes = [JSONRenderer, LeaderboardCSVRenderer]

    @extend_schema(parameters=[LeaderboardQuerySerializer], responses={200: OpenApiTypes.OBJECT, 304: None})
    def get(self, request):
        return super().get(request)

    def read(self, request, params) -> dict:
        page = leaderboard_page(request.user, params.query())
        _with_urls(request, page["results"])
        return page


class FrontierView(VersionedReadView):
    """Error vs FLOPs at Q: points, the measured Pareto frontier, each law's curves per N and its
    law-optimal curve."""

    query_serializer = FrontierQuerySerializer

    @extend_schema(parameters=[FrontierQuerySerializer], responses={200: OpenApiTypes.OBJECT, 304: None})
    def get(self, request):
        return super().get(request)

    def read(self, request, params) -> dict:
        chart = frontier_chart(request.user, params.row_filter(), params.cost())
        _with_urls(request, chart["points"])
        return chart


class CompressorsView(VersionedReadView):
    """α and β with 95 % intervals and the fit details, per compressor (and all together) and law."""

    query_serializer = CompressorQuerySerializer

    @extend_schema(parameters=[CompressorQuerySerializer], responses={200: OpenApiTypes.OBJECT, 304: None})
    def get(self, request):
        return super().get(request)

    def read(self, request, params) -> dict:
        return compressor_table(params.validated_data["suite"], params.cost())


class DeployView(VersionedReadView):
    """The recommended (N, V, compressor) for a FLOPs or latency budget, and the runners-up."""

    query_serializer = DeployQuerySerializer

    @extend_schema(parameters=[DeployQuerySerializer], responses={200: OpenApiTypes.OBJECT, 304: None, 409: None})
    def get(self, request):
        return super().get(request)

    def read(self, request, params) -> dict:
        return deploy_recommendation(request.user, params.query())


class DataVersionView(ReadOnlyAPIView):
    """The data version: poll it (If-None-Match → 304) and refetch a page's JSON when it changes."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 304: None})
    def get(self, request):
        version = data_version()
        etag = f'"{version}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if _not_modified(request, etag):
            return HttpResponseNotModified(headers=headers)
        return Response({"version": version}, headers=headers)
