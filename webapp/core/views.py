from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from webapp.core.health import system_health
from webapp.jobs.models import Job
from webapp.leaderboard.selectors import data_version
from webapp.pages.selectors import overview_headline


@never_cache
def healthz(request):
    report = system_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def home(request):
    jobs = Job.objects.select_related("created_by")[:50] if request.user.is_staff else Job.objects.none()
    version = data_version()
    return render(request, "core/home.html", {
        "jobs": jobs, "suites": overview_headline(request.user), "version": version,
    })
