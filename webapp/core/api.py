"""API-wide error handling (service errors become 4xx responses with their message; reads of one row
anonymous visitors may not see ask them to authenticate), and the queue's API, which no single app
answers alone."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from webapp.jobs.api.serializers import QueueSerializer
from webapp.jobs.selectors import ETA_METHOD
from webapp.jobs.services import JobError
from webapp.pages.selectors import queue_jobs
from webapp.registry.services import QuotaExceeded, RegistryError
from webapp.training.services import TrainingError


def frontier_exception_handler(exc, context):
    if isinstance(exc, QuotaExceeded):
        return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
    if isinstance(exc, (RegistryError, JobError, TrainingError)):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)


def readable_or_refused(queryset, request, pk: int, what: str):
    """The row the user may read, else: anonymous visitors are asked to authenticate (401; the same
    for a row that does not exist, so nothing is given away), logged-in users get a 404."""
    found = queryset.filter(pk=pk).first()
    if found is None:
        if not request.user.is_authenticated:
            raise NotAuthenticated(f"No public {what} {pk}: if it is yours, authenticate (Authorization: Token …).")
        raise Http404(f"No such {what}, or it is not yours.")
    return found


class QueueView(APIView):
    """Every queued and running job you may see, of every kind, with its queue, its position there and its
    estimated start and finish (how: `eta_method`); and per queue everyone's counts. What /queue/ shows."""

    @extend_schema(responses=QueueSerializer)
    def get(self, request):
        return Response(QueueSerializer({**queue_jobs(request.user), "eta_method": ETA_METHOD}).data)
