from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core.api import readable_or_refused
from webapp.core.parsers import BoundedJSONParser
from webapp.jobs.services import JobError
from webapp.training.api.serializers import (
    SweepCreateSerializer,
    SweepDetailSerializer,
    SweepSerializer,
    TrainingCreateSerializer,
    TrainingRunDetailSerializer,
    TrainingRunSerializer,
)
from webapp.training.selectors import (
    sweeps_readable_by,
    sweeps_visible_to,
    training_runs_readable_by,
    training_runs_visible_to,
)
from webapp.training.services import sweep_create, training_run_cancel, training_run_start


def _since(request) -> int:
    value = request.query_params.get("since", "0")
    if not value.isdigit():
        raise ValidationError({"since": "A step number (>= 0): losses after that step are returned."})
    return int(value)


class TrainingListView(generics.ListAPIView):
    """Your training runs (staff: all); POST a JSON spec to check it and queue it on gpu-train."""

    serializer_class = TrainingRunSerializer
    parser_classes = [BoundedJSONParser]

    def get_queryset(self):
        return training_runs_visible_to(self.request.user)

    @extend_schema(request=TrainingCreateSerializer, responses={201: TrainingRunDetailSerializer})
    def post(self, request):
        serializer = TrainingCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = training_run_start(request.user, serializer.validated_data)
        data = TrainingRunDetailSerializer(run, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": str(data["url"])})


class TrainingDetailView(APIView):
    """Your runs and others' public ones (anonymous visitors: public ones)."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(
        responses=TrainingRunDetailSerializer,
        parameters=[OpenApiParameter("since", int, description="Only losses after this step (incremental polling).")],
    )
    def get(self, request, pk: int):
        run = readable_or_refused(training_runs_readable_by(request.user), request, pk, "training run")
        context = {"request": request, "since": _since(request)}
        return Response(TrainingRunDetailSerializer(run, context=context).data)


class TrainingCancelView(APIView):
    """A queued run is cancelled at once; a running one saves its state and stops within seconds."""

    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    def post(self, request, pk: int):
        run = get_object_or_404(training_runs_visible_to(request.user), pk=pk)
        try:
            run = training_run_cancel(run, by=request.user)
        except JobError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(TrainingRunSerializer(run, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class SweepListView(generics.ListAPIView):
    """Your sweeps (staff: all); POST a grid to check every point and queue one training run per point."""

    serializer_class = SweepSerializer
    parser_classes = [BoundedJSONParser]

    def get_queryset(self):
        return sweeps_visible_to(self.request.user)

    @extend_schema(request=SweepCreateSerializer, responses={201: SweepDetailSerializer})
    def post(self, request):
        serializer = SweepCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sweep = sweep_create(request.user, serializer.validated_data)
        sweep = sweeps_visible_to(request.user).get(pk=sweep.pk)
        data = SweepDetailSerializer(sweep, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": str(data["url"])})


class SweepDetailView(APIView):
    """Your sweeps and others' public ones (anonymous visitors: public ones)."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=SweepDetailSerializer)
    def get(self, request, pk: int):
        sweep = readable_or_refused(sweeps_readable_by(request.user), request, pk, "sweep")
        return Response(SweepDetailSerializer(sweep, context={"request": request}).data)
