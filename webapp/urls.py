from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from webapp.accounts.api.views import WhoAmIView
from webapp.accounts.views import signup
from webapp.jobs.api.views import DiagnosticJobView, JobCancelView, JobDetailView, JobListView
from webapp.leaderboard.api import views as leaderboard
from webapp.leaderboard.api.compare import CompareView
from webapp.pages.views import home
from webapp.registry.api import views as registry
from webapp.registry.api.datasets import DatasetMirrorView, DatasetPrefetchView
from webapp.registry.api.samples import ResultSamplesView
from webapp.stack.views import QueueView, healthz
from webapp.training.api import views as training

api_v1 = [
    path("api/v1/whoami/", WhoAmIView.as_view(), name="api-whoami"),
    path("api/v1/jobs/", JobListView.as_view(), name="api-job-list"),
    path("api/v1/queue/", QueueView.as_view(), name="api-queue"),
    path("api/v1/jobs/diagnostic/", DiagnosticJobView.as_view(), name="api-job-diagnostic"),
    path("api/v1/jobs/<int:job_id>/", JobDetailView.as_view(), name="api-job-detail"),
    path("api/v1/jobs/<int:job_id>/cancel/", JobCancelView.as_view(), name="api-job-cancel"),
    path("api/v1/checkpoints/", registry.CheckpointListView.as_view(), name="api-checkpoint-list"),
    path("api/v1/checkpoints/<int:pk>/", registry.CheckpointDetailView.as_view(), name="api-checkpoint-detail"),
    path("api/v1/checkpoints/<int:pk>/hide/", registry.CheckpointHideView.as_view(), name="api-checkpoint-hide"),
    path("api/v1/checkpoints/<int:pk>/archive/", registry.CheckpointArchiveView.as_view(),
         name="api-checkpoint-archive"),
    path("api/v1/checkpoints/<int:pk>/files/<path:name>", registry.CheckpointFileView.as_view(),
         name="api-checkpoint-file"),
    path("api/v1/uploads/", registry.UploadStartView.as_view(), name="api-upload-start"),
    path("api/v1/uploads/<int:pk>/", registry.UploadDetailView.as_view(), name="api-upload-detail"),
    path("api/v1/uploads/<int:pk>/complete/", registry.UploadCompleteView.as_view(), name="api-upload-complete"),
    path("api/v1/suites/", registry.SuiteListView.as_view(), name="api-suite-list"),
    path("api/v1/evaluations/", registry.EvaluationListView.as_view(), name="api-evaluation-list"),
    path("api/v1/evaluations/<int:pk>/", registry.EvaluationDetailView.as_view(), name="api-evaluation-detail"),
    path("api/v1/evaluations/<int:pk>/rerun/", registry.EvaluationRerunView.as_view(), name="api-evaluation-rerun"),
    path("api/v1/evaluations/<int:pk>/cancel/", registry.EvaluationCancelView.as_view(), name="api-evaluation-cancel"),
    path("api/v1/evaluations/<int:pk>/samples/<slug:benchmark>/", ResultSamplesView.as_view(),
         name="api-evaluation-samples"),
    path("api/v1/results/", registry.ResultListView.as_view(), name="api-result-list"),
    path("api/v1/results/stale/", registry.StaleResultsView.as_view(), name="api-results-stale"),
    path("api/v1/datasets/", DatasetMirrorView.as_view(), name="api-dataset-mirror"),
    path("api/v1/datasets/prefetch/", DatasetPrefetchView.as_view(), name="api-dataset-prefetch"),
    path("api/v1/leaderboard/", leaderboard.LeaderboardView.as_view(), name="api-leaderboard"),
    path("api/v1/compare/", CompareView.as_view(), name="api-compare"),
    path("api/v1/frontier/", leaderboard.FrontierView.as_view(), name="api-frontier"),
    path("api/v1/compressors/", leaderboard.CompressorsView.as_view(), name="api-compressors"),
    path("api/v1/deploy/", leaderboard.DeployView.as_view(), name="api-deploy"),
    path("api/v1/version/", leaderboard.DataVersionView.as_view(), name="api-data-version"),
    path("api/v1/trainings/", training.TrainingListView.as_view(), name="api-training-list"),
    path("api/v1/trainings/<int:pk>/", training.TrainingDetailView.as_view(), name="api-training-detail"),
    path("api/v1/trainings/<int:pk>/cancel/", training.TrainingCancelView.as_view(), name="api-training-cancel"),
    path("api/v1/sweeps/", training.SweepListView.as_view(), name="api-sweep-list"),
    path("api/v1/sweeps/<int:pk>/", training.SweepDetailView.as_view(), name="api-sweep-detail"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="pages/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", signup, name="signup"),
    path("", include("webapp.pages.urls")),
    *api_v1,
]
