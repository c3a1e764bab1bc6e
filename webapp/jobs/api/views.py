from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs.api.serializers import DiagnosticJobSerializer, JobDetailSerializer, JobSerializer
from webapp.jobs.selectors import job_detail, jobs_visible_to
from webapp.jobs.services import JobError, job_cancel, job_submit
from webapp.jobs.task_names import DIAGNOSTIC


class JobListView(generics.ListAPIView):
    serializer_class = JobSerializer

    def get_queryset(self):
        return jobs_visible_to(self.request.user)


class JobDetailView(APIView):
    @extend_schema(responses=JobDetailSerializer)
    def get(self, request, job_id: int):
        job = job_detail(job_id, request.user)
        if job is None:
            raise Http404("No such job, or it is not yours.")
        return Response(JobDetailSerializer(job).data)


class JobCancelView(APIView):
    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, job_id: int):
        job = jobs_visible_to(request.user).filter(pk=job_id).first()
        if job is None:
            raise Http404("No such job, or it is not yours.")
        try:
            job = job_cancel(job, reason=f"cancelled by {request.user.username}")
        except JobError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class DiagnosticJobView(APIView):
    """Staff only: queue a job that sleeps, to check the queue end to end."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=DiagnosticJobSerializer, responses={201: JobSerializer})
    def post(self, request):
        serializer = DiagnosticJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = job_submit(
            task_name=DIAGNOSTIC.name, params=serializer.validated_data, created_by=request.user
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)
