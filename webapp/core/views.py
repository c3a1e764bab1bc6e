from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from webapp.core.health import system_health
from webapp.jobs.models import Job
from webapp.leaderboard.selectors import data_version
from webapp.pages.selectors import overview_headline


@never_cache
def healthz(request):
    """503 when a part is down ("fail"); 200 when it all works, also while a queue stalls ("degraded")."""
    report = system_health()
    return JsonResponse(report, status=503 if report["status"] == "fail" else 200)


def home(request):
    jobs = Job.objects.select_related("created_by")[:50] if request.user.is_staff else Job.objects.none()
    version = data_version()
    return render(request, "core/home.html", {
        "jobs": jobs, "suites": overview_headline(request.user), "version": version,
    })
