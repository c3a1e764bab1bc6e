from django.urls import path

from webapp.pages import views

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("frontier/", views.frontier, name="frontier"),
    path("compressors/", views.compressors, name="compressors"),
    path("suites/", views.suites, name="suites"),
    path("deploy/", views.deploy, name="deploy"),
    path("compare/", views.compare, name="compare"),
    path("queue/", views.queue, name="queue"),
    path("checkpoints/<int:pk>/", views.checkpoint_detail, name="checkpoint-detail"),
    path("evaluations/<int:pk>/", views.evaluation_detail, name="evaluation-detail"),
    path("evaluations/<int:pk>/samples/<slug:key>/", views.evaluation_samples, name="evaluation-samples"),
    path("trainings/new/", views.training_new, name="training-new"),
    path("trainings/<int:pk>/", views.training_detail, name="training-detail"),
    path("sweeps/new/", views.sweep_new, name="sweep-new"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep-detail"),
]
