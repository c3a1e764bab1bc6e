"""Results one suite can take from another: a benchmark shared by several suites (``evaluation.suites``,
``shared_with``) is evaluated once per checkpoint, lmms-eval task and task hash, and every other run that needs it
takes that result (``webapp.leaderboard.services.benchmark_result_reuse``) instead of loading the model again."""

from evaluation.datasets import SOURCE_BY_TASK
from webapp.registry.models import HarnessOutput
from webapp.registry.selectors.stale import current_identity, mirror_revision, result_identity, stale_reasons


def reused_origin(output: HarnessOutput) -> dict:
    """The original evaluation behind a harness output: {"harness_output", "run", "suite"}; an output that was
    itself reused names the one it came from, so a chain of reuses always points at the evaluation that ran."""
    return output.stamp.get("reused_from") or {
        "harness_output": output.pk, "run": output.run_id, "suite": output.run.suite.name}


def reusable_output(
    *, checkpoint_id: int, task: str, limit: int | None, judge: str | None, exclude_run: int | None = None
) -> HarnessOutput | None:
    """The newest harness output that can stand in for evaluating ``task`` (an lmms-eval task) on the checkpoint
    now, None if there is none: of another run (not ``exclude_run``) of the same checkpoint, in any suite, with the
    same ``limit``; current (not stale, ``selectors.stale``, and ``computed_with`` the task files and data here);
    and judged by ``judge`` (``evaluation.judges.current_judge_label``: None for a benchmark
    no LLM judges)."""
    outputs = (
        HarnessOutput.objects.filter(run__checkpoint_id=checkpoint_id, benchmark__lmms_eval_task=task,
                                     run__limit=limit)
        .exclude(run_id=exclude_run)
        .select_related("run__suite", "benchmark")
        .order_by("-id")
    )
    identity = None
    for output in outputs:
        stamp = output.stamp or {}
        result = result_identity(task, stamp.get("tasks"), stamp.get("datasets"))
        if result["judge"] != judge:
            continue
        identity = identity or current_identity()
        if computed_with(result, identity) and not stale_reasons(result, identity):
            return output
    return None


def computed_with(result: dict, identity: dict) -> bool:
    """Whether a result (``result_identity``) names the task files installed here and, for a real benchmark, the
    dataset revision the mirror holds now (read from disk, not the stale check's minute-old copy): what an
    evaluation here would use. Stricter than not stale, where what cannot be read here (a task not installed, a
    dataset missing from the mirror) makes nothing stale: an emptied mirror reuses nothing, and its evaluations
    fail as ``dataset_unavailable``."""
    task = result["task"]
    installed = identity["task_hashes"].get(task)
    if installed is None or result["task_hash"] != installed:
        return False
    return task not in SOURCE_BY_TASK or mirror_revision(task) == result["dataset_revision"]
