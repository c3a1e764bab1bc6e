"""Writes of training: start a run or a sweep (everything checked before anything is queued), cancel
one, and the writes of the worker that trains it: live loss rows and progress, the trained
checkpoint (validated like an upload) and its evaluations."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.core.errors import ServiceError
from webapp.jobs.models import JobState
from webapp.jobs.services import job_cancel, job_submit
from webapp.jobs.task_names import TRAIN
from webapp.registry.models import BenchmarkSuite, Checkpoint, CheckpointStatus, Visibility
from webapp.registry.selectors import checkpoints_visible_to
from webapp.registry.services import checkpoint_accept, run_start
from webapp.training.configs import (
    DATASET_KINDS,
    HYPERPARAMETER_DEFAULTS,
    LLAVA_DATASET,
    dataset_path,
    training_config_problems,
)
from webapp.training.models import Sweep, TrainingLoss, TrainingRun

TRAIN_TASK = TRAIN.name
TINY_DEFAULTS = {"llm_hidden": 64, "llm_layers": 2, "llm_family": "qwen2", "seed": 0}
TINY_MAX_HIDDEN, TINY_MAX_LAYERS = 4096, 64


class TrainingError(ServiceError):
    """A training request that cannot be accepted; the message says what to fix."""


# --- Checking a request ------------------------------------------------------------------------


def _usable_checkpoint(owner, checkpoint_id: int, role: str) -> Checkpoint:
    checkpoint = checkpoints_visible_to(owner).filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise TrainingError(f"{role}: there is no checkpoint {checkpoint_id} you can see.")
    if checkpoint.published:
        raise TrainingError(
            f"{role}: checkpoint {checkpoint_id} ({checkpoint.name}) is a published result without files."
        )
    if checkpoint.status != CheckpointStatus.READY:
        raise TrainingError(
            f"{role}: checkpoint {checkpoint_id} ({checkpoint.name}) is {checkpoint.status}; "
            f"training starts only from ready checkpoints."
        )
    return checkpoint


def _tiny_model(values: dict) -> dict:
    tiny = {**TINY_DEFAULTS, **values}
    hidden, layers = tiny["llm_hidden"], tiny["llm_layers"]
    # evaluation.tiny builds 4 attention heads, and rotary embeddings need an even head size.
    if not (8 <= hidden <= TINY_MAX_HIDDEN and hidden % 8 == 0):
        raise TrainingError(f"tiny.llm_hidden must be a multiple of 8 between 8 and {TINY_MAX_HIDDEN}, got {hidden}.")
    if not 1 <= layers <= TINY_MAX_LAYERS:
        raise TrainingError(f"tiny.llm_layers must be between 1 and {TINY_MAX_LAYERS}, got {layers}.")
    return tiny


def _dataset(values: dict) -> dict:
    kind = values.get("kind")
    if kind not in DATASET_KINDS:
        raise TrainingError(f"dataset.kind must be one of {', '.join(DATASET_KINDS)}, not {kind!r}.")
    if kind != LLAVA_DATASET:
        if "json" in values or "images" in values:
            raise TrainingError(f"dataset.json and dataset.images belong to llava datasets, not {kind}.")
        return {"kind": kind, "count": values.get("count")}
    if "count" in values:
        raise TrainingError("dataset.count limits synthetic datasets; a llava dataset is used whole.")
    root = settings.FRONTIER_TRAINING_DATA_ROOT
    for key in ("json", "images"):
        if not values.get(key):
            raise TrainingError(f"a llava dataset needs dataset.{key}, a path under the training data root {root}.")
        if not dataset_path(values[key]).is_relative_to(root):
            raise TrainingError(f"dataset.{key} {values[key]!r} is outside the training data root {root}.")
    return {"kind": kind, "json": values["json"], "images": values["images"]}


def _suites(names: list[str] | None) -> list[str]:
    names = list(settings.FRONTIER_DEFAULT_SUITES if names is None else names)
    known = set(BenchmarkSuite.objects.values_list("name", flat=True))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise TrainingError(f"Unknown suite(s) {', '.join(unknown)}; known suites: {', '.join(sorted(known))}.")
    return names


def _run_fields(owner, spec: dict) -> dict:
    """The TrainingRun fields of a spec (as the API serializers shape it), checked except for the
    parts ``evaluation.training_config`` judges (method, V, widths, dataset contents, numbers)."""
    name = (spec.get("name") or "").strip()
    if not name or len(name) > 200:
        raise TrainingError("Give the training run a name of 1 to 200 characters.")
    base = spec["base"]
    if ("checkpoint" in base) == ("tiny" in base):
        raise TrainingError("base: give either checkpoint (a checkpoint id) or tiny (a tiny model config).")
    visibility = spec.get("visibility", Visibility.PRIVATE)
    if visibility not in Visibility.values:
        raise TrainingError(f"visibility must be one of {', '.join(Visibility.values)}, not {visibility!r}.")
    hyperparameters = {**HYPERPARAMETER_DEFAULTS, **spec.get("hyperparameters", {})}
    if hyperparameters["save_every"] is None:
        hyperparameters["save_every"] = settings.FRONTIER_TRAINING_SAVE_EVERY
    compressor_from = spec.get("compressor_from")
    return {
        "owner": owner,
        "name": name,
        "base_checkpoint": _usable_checkpoint(owner, base["checkpoint"], "base") if "checkpoint" in base else None,
        "tiny_model": _tiny_model(base["tiny"]) if "tiny" in base else None,
        "compressor_from": _usable_checkpoint(owner, compressor_from, "compressor_from") if compressor_from else None,
        "compressor": spec["compressor"],
        "visual_tokens": spec["tokens"],
        "stage": spec.get("stage", 1),
        "dataset": _dataset(spec["dataset"]),
        "hyperparameters": hyperparameters,
        "suites": _suites(spec.get("suites")),
        "eval_limit": spec.get("eval_limit"),
        "visibility": visibility,
    }


class TrainingQuotaExceeded(TrainingError):
    """A per-user training limit was reached; the message says which and how to get under it."""

    http_status = 429


def _check_training_quota(owner, adding: int) -> None:
    """Trainings queued or running, and started in the last 24 hours, per user (staff exempt): a sweep
    counts as its points, all or none."""
    if owner is None or owner.is_staff:
        return
    mine = TrainingRun.objects.filter(owner=owner)
    active = mine.filter(job__state__in=[JobState.QUEUED, JobState.RUNNING]).count()
    limit = settings.FRONTIER_QUOTA_CONCURRENT_TRAININGS
    if active + adding > limit:
        raise TrainingQuotaExceeded(
            f"You have {active} trainings queued or running and asked for {adding} more; the limit is {limit}. "
            f"Wait for some to finish or cancel some."
        )
    today = mine.filter(created_at__gte=timezone.now() - timedelta(days=1)).count()
    daily = settings.FRONTIER_QUOTA_TRAININGS_PER_DAY
    if today + adding > daily:
        raise TrainingQuotaExceeded(
            f"You started {today} trainings in the last 24 hours and asked for {adding} more; the limit is {daily}."
        )


def _create_run(fields: dict, sweep: Sweep | None = None) -> TrainingRun:
    job = job_submit(task_name=TRAIN_TASK, params={"training": fields["name"]}, created_by=fields["owner"])
    return TrainingRun.objects.create(job=job, sweep=sweep, **fields)


def training_run_start(owner, spec: dict) -> TrainingRun:
    """Check a training spec completely, then queue its job on the gpu-train queue."""
    fields = _run_fields(owner, spec)
    problems = training_config_problems(TrainingRun(**fields))
    if problems:
        raise TrainingError("Invalid training config: " + "; ".join(problems))
    with transaction.atomic():
        _check_training_quota(owner, 1)
        return _create_run(fields)


def training_run_cancel(run: TrainingRun, *, by) -> TrainingRun:
    """Cancel a queued run at once; a running one saves its state and stops within seconds.
    Raises ``JobError`` when the run has already ended."""
    job_cancel(run.job, reason=f"cancelled by {by.username}")
    run.job.refresh_from_db()
    return run


def _base_label(base: dict) -> str:
    if "checkpoint" in base:
        return f"checkpoint {base['checkpoint']}"
    tiny = {**TINY_DEFAULTS, **base["tiny"]}
    return f"tiny {tiny['llm_family']} d={tiny['llm_hidden']} x{tiny['llm_layers']}"


def sweep_points(spec: dict) -> list[dict]:
    """One training spec per grid point: bases (LLM sizes) x compressors x V, the rest shared; a base's
    own ``hyperparameters`` override the sweep's for its points."""
    shared = {key: value for key, value in spec.items() if key not in ("name", "bases", "compressors", "tokens")}
    points = []
    for base in spec["bases"]:
        model = {key: value for key, value in base.items() if key != "hyperparameters"}
        hyperparameters = {**shared.get("hyperparameters", {}), **base.get("hyperparameters", {})}
        points += [
            {
                **shared,
                "name": f"{spec['name'].strip()} / {_base_label(model)} {compressor} V={tokens}"[:200],
                "base": model,
                "hyperparameters": hyperparameters,
                "compressor": compressor,
                "tokens": tokens,
            }
            for compressor in spec["compressors"]
            for tokens in spec["tokens"]
        ]
    return points


def sweep_create(owner, spec: dict) -> Sweep:
    """Check every grid point, then create the sweep and queue one training run per point; when any
    point is bad nothing is queued and the message names each bad point."""
    name = (spec.get("name") or "").strip()
    if not name or len(name) > 150:
        raise TrainingError("Give the sweep a name of 1 to 150 characters.")
    axes = [len(spec[axis]) for axis in ("bases", "compressors", "tokens")]
    size = axes[0] * axes[1] * axes[2]  # counted from the axes: a huge grid is refused before it is built
    if size > settings.FRONTIER_TRAINING_SWEEP_MAX_POINTS:
        raise TrainingError(
            f"The grid has {axes[0]} bases x {axes[1]} compressors x {axes[2]} token counts = {size:,} points; "
            f"the limit is {settings.FRONTIER_TRAINING_SWEEP_MAX_POINTS}. Split it into smaller sweeps."
        )
    points = sweep_points(spec)
    checked: dict[int, dict] = {}
    refusals: dict[int, list[str]] = {}
    for index, point in enumerate(points):
        try:
            checked[index] = _run_fields(owner, point)
        except TrainingError as error:
            refusals[index] = [str(error)]
    for index, values in checked.items():
        problems = training_config_problems(TrainingRun(**values))
        if problems:
            refusals[index] = problems
    if refusals:
        described = [
            f"point {index + 1} of {len(points)} ({_base_label(points[index]['base'])}, "
            f"{points[index]['compressor']}, V={points[index]['tokens']}): " + "; ".join(refusals[index])
            for index in sorted(refusals)
        ]
        raise TrainingError("Invalid sweep, nothing was queued: " + " | ".join(described))
    with transaction.atomic():
        _check_training_quota(owner, len(checked))
        sweep = Sweep.objects.create(owner=owner, name=name, grid={**spec, "name": name})
        for values in checked.values():
            _create_run(values, sweep=sweep)
    return sweep


# --- Writes of the training worker --------------------------------------------------------------


def training_attempt_resumed(run_id: int, from_step: int) -> None:
    """An attempt continues after `from_step`: loss rows a lost attempt wrote past it are dropped
    (the resumed run computes those steps again)."""
    TrainingLoss.objects.filter(run_id=run_id, step__gt=from_step).delete()
    TrainingRun.objects.filter(pk=run_id).update(resumed_from_step=from_step)


def training_progress_record(
    run_id: int, *, losses: list[tuple[int, float]], steps_done: int, steps_total: int, eta_seconds: float | None
) -> None:
    """Append a batch of (step, loss) rows and the run's progress and expected end."""
    now = timezone.now()
    TrainingLoss.objects.bulk_create(
        [TrainingLoss(run_id=run_id, step=step, loss=loss) for step, loss in losses], ignore_conflicts=True
    )
    fields = {"steps_done": steps_done, "steps_total": steps_total, "progress_at": now,
              "eta_at": None if eta_seconds is None else now + timedelta(seconds=eta_seconds)}
    if losses:
        fields["last_loss"] = losses[-1][1]
    TrainingRun.objects.filter(pk=run_id).update(**fields)


@transaction.atomic
def training_losses_complete(run_id: int, history: list[float]) -> None:
    """Make the stored curve exactly the finished run's: one row per step 1..len(history)."""
    TrainingLoss.objects.filter(run_id=run_id, step__gt=len(history)).delete()
    stored = set(TrainingLoss.objects.filter(run_id=run_id).values_list("step", flat=True))
    missing = [TrainingLoss(run_id=run_id, step=step, loss=loss) for step, loss in enumerate(history, 1)
               if step not in stored]
    TrainingLoss.objects.bulk_create(missing, ignore_conflicts=True)
    TrainingRun.objects.filter(pk=run_id).update(
        steps_done=len(history), steps_total=len(history), last_loss=history[-1] if history else None,
        eta_at=None, progress_at=timezone.now(),
    )


def trained_checkpoint_create(run: TrainingRun) -> Checkpoint:
    """The run's checkpoint row, created once: a retried registration finds the first one."""
    checkpoint, _ = Checkpoint.objects.get_or_create(
        training_run=run,
        defaults={"owner": run.owner, "name": run.name, "visibility": run.visibility,
                  "status": CheckpointStatus.VALIDATING},
    )
    return checkpoint


@transaction.atomic
def trained_checkpoint_accept(
    run: TrainingRun, checkpoint: Checkpoint, *, report: dict, config: dict, files_prefix: str
) -> Checkpoint:
    """Accept the validated trained checkpoint as an upload is accepted, then queue its evaluations
    on the run's suites with the run's item limit, once: a checkpoint already accepted is returned as it
    is. They belong to the training request, so the
    per-user evaluation quotas (checked when a user starts an evaluation) do not apply."""
    checkpoint = Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
    if checkpoint.status == CheckpointStatus.READY:  # accepted by an earlier registration: a no-op
        return checkpoint
    checkpoint_accept(checkpoint, report=report, config=config, files_prefix=files_prefix)
    checkpoint.suites_requested = run.suites
    checkpoint.save(update_fields=["suites_requested"])
    started = set(checkpoint.runs.values_list("suite__name", flat=True))
    for suite in BenchmarkSuite.objects.filter(name__in=run.suites).exclude(name__in=started):
        run_start(checkpoint=checkpoint, suite=suite, limit=run.eval_limit)
    return checkpoint
