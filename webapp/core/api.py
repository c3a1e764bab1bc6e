"""API-wide error handling: service errors become 4xx responses with their message."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from webapp.jobs.services import JobError
from webapp.registry.services import QuotaExceeded, RegistryError
from webapp.training.services import TrainingError


def frontier_exception_handler(exc, context):
    if isinstance(exc, QuotaExceeded):
        return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
    if isinstance(exc, (RegistryError, JobError, TrainingError)):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)
