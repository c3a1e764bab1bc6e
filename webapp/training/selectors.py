"""Reads of training runs and sweeps for the API and pages: owners see their own, staff everything."""

from django.conf import settings
from django.db.models import Avg, Count, F, Max, QuerySet
from django.utils import timezone

from webapp.jobs.models import JobState
from webapp.registry.models import Checkpoint, SuiteScore
from webapp.registry.selectors import visible_to_owner
from webapp.training.models import Sweep, TrainingLoss, TrainingRun


def training_runs_visible_to(user) -> QuerySet[TrainingRun]:
    """The user's own runs (staff: all): what lists, the queue and cancel act on."""
    runs = TrainingRun.objects.select_related("owner", "job", "sweep", "checkpoint")
    return runs if user.is_staff else runs.filter(owner=user)


def sweeps_visible_to(user) -> QuerySet[Sweep]:
    """The user's own sweeps (staff: all)."""
    sweeps = Sweep.objects.select_related("owner").annotate(run_count=Count("runs")).order_by("-id")
    return sweeps if user.is_staff else sweeps.filter(owner=user)


def training_runs_readable_by(user) -> QuerySet[TrainingRun]:
    """Runs whose page and detail anyone may read: own ones and public ones (registry's visibility
    rule; anonymous visitors: public ones only); staff read everything."""
    runs = TrainingRun.objects.select_related("owner", "job", "sweep", "checkpoint")
    return runs if user.is_staff else runs.filter(visible_to_owner(user, hidden=None))


def sweeps_readable_by(user) -> QuerySet[Sweep]:
    """Sweeps whose page anyone may read: own ones and those whose grid is public (every point of a
    sweep shares the grid's visibility); staff read everything."""
    sweeps = Sweep.objects.select_related("owner").annotate(run_count=Count("runs")).order_by("-id")
    return sweeps if user.is_staff else sweeps.filter(visible_to_owner(user, visibility="grid__visibility", hidden=None))


def trained_checkpoint(run: TrainingRun) -> Checkpoint | None:
    """The checkpoint the run produced (``Checkpoint.training_run``), if any yet."""
    return getattr(run, "checkpoint", None)  # a missing reverse one-to-one raises an AttributeError subclass


def eta_seconds(run: TrainingRun) -> float | None:
    """Seconds until training should end at the current rate; None unless it is running."""
    if run.job.state != JobState.RUNNING or run.eta_at is None:
        return None
    return max(0.0, (run.eta_at - timezone.now()).total_seconds())


def loss_curve(run: TrainingRun, since: int = 0, max_points: int | None = None) -> dict:
    """The loss per step after step `since`, as columns for a plot. Longer curves are averaged over
    equal runs of steps (each point at its bucket's last step) down to `max_points` points."""
    max_points = max_points or settings.FRONTIER_TRAINING_CURVE_POINTS
    rows = TrainingLoss.objects.filter(run=run, step__gt=since)
    summary = rows.aggregate(count=Count("pk"), last=Max("step"))
    if summary["count"] <= max_points:
        points = list(rows.order_by("step").values_list("step", "loss"))
        downsampled = False
    else:
        width = -(-summary["count"] // max_points)  # ceil: steps per bucket
        buckets = (
            rows.annotate(bucket=(F("step") - since - 1) / width)
            .values("bucket").annotate(last=Max("step"), mean=Avg("loss")).order_by("bucket")
        )
        points = [(bucket["last"], bucket["mean"]) for bucket in buckets]
        downsampled = True
    return {
        "since": since,
        "last_step": summary["last"] or since,
        "downsampled": downsampled,
        "steps": [step for step, _ in points],
        "loss": [loss for _, loss in points],
    }


def sweep_runs_with_scores(sweep: Sweep) -> list[tuple[TrainingRun, dict[str, float]]]:
    """Each grid point's run with its checkpoint's error per suite (empty until evaluated)."""
    runs = list(sweep.runs.select_related("owner", "job", "checkpoint").order_by("pk"))
    checkpoint_runs = {checkpoint.pk: run.pk for run in runs if (checkpoint := trained_checkpoint(run)) is not None}
    errors: dict[int, dict[str, float]] = {run.pk: {} for run in runs}
    for score in SuiteScore.objects.filter(checkpoint_id__in=checkpoint_runs).select_related("suite"):
        errors[checkpoint_runs[score.checkpoint_id]][score.suite.name] = score.error
    return [(run, errors[run.pk]) for run in runs]
