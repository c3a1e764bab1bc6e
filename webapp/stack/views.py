"""What the running stack answers as a whole, which no single app answers alone: /healthz and the queue's
API (every kind of job, with its queue position and ETA)."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs.api.serializers import QueueSerializer
from webapp.jobs.selectors import ETA_METHOD
from webapp.pages.selectors import queue_jobs
from webapp.stack.health import system_health


@never_cache
def healthz(request):
    """503 when a part is down ("fail"); 200 when it all works, also while a queue stalls ("degraded")."""
    report = system_health()
    return JsonResponse(report, status=503 if report["status"] == "fail" else 200)


class QueueView(APIView):
    """Every queued and running job you may see, of every kind, with its queue, its position there and its
    estimated start and finish (how: `eta_method`); and per queue everyone's counts. What /queue/ shows."""

    @extend_schema(responses=QueueSerializer)
    def get(self, request):
        return Response(QueueSerializer({**queue_jobs(request.user), "eta_method": ETA_METHOD}).data)
