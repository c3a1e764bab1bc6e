from django.contrib import admin
from django.urls import path

from webapp.accounts.api.views import WhoAmIView
from webapp.core.views import healthz, home
from webapp.jobs.api.views import DiagnosticJobView, JobCancelView, JobDetailView, JobListView

api_v1 = [
    path("api/v1/whoami/", WhoAmIView.as_view(), name="api-whoami"),
    path("api/v1/jobs/", JobListView.as_view(), name="api-job-list"),
    path("api/v1/jobs/diagnostic/", DiagnosticJobView.as_view(), name="api-job-diagnostic"),
    path("api/v1/jobs/<int:job_id>/", JobDetailView.as_view(), name="api-job-detail"),
    path("api/v1/jobs/<int:job_id>/cancel/", JobCancelView.as_view(), name="api-job-cancel"),
]

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    *api_v1,
]
