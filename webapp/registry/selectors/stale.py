"""Stale results: a checkpoint's newest result on a benchmark whose stamp names another task hash or dataset
revision than the ones installed now.

The current identity is read on the web side from the installed lmms-eval task files
(``evaluation.task_identity.current_hashes_by_task``, once per process) and the dataset mirror's manifests
(``settings.FRONTIER_DATASETS_DIR``, a pinned revision first; re-read every ``MIRROR_TTL_SECONDS``). A result is
stale when its stamp's ``tasks[<task>].task_hash`` differs from the task's current hash, when its
``datasets[<task>].revision`` differs from the mirror's, or when it lacks either (stamped before hashes were, so
nobody can say what it was computed with). What the web side cannot read (a task not installed here, a dataset
not in the mirror) makes nothing stale."""

import hashlib
import json
import threading
import time

from django.conf import settings

from evaluation.datasets import SOURCE_BY_TASK, check_folder, dataset_folder
from evaluation.judges import judge_label
from evaluation.suites import BENCHMARK_BY_TASK
from evaluation.task_identity import current_hashes_by_task
from webapp.registry.models import CheckpointStatus, HarnessOutput

MIRROR_TTL_SECONDS = 60.0
_mirror_cache: dict = {}
_lock = threading.Lock()


def mirror_revision(task: str, root=None) -> str | None:
    """The dataset revision an evaluation of ``task`` reads now: pinned, else the manifest of its complete folder
    in the mirror (``root``, default FRONTIER_DATASETS_DIR); None for a task without hub data or missing there.
    Read from disk each call."""
    source = SOURCE_BY_TASK.get(task)
    if source is None or source.revision is not None:
        return source.revision if source is not None else None
    root = settings.FRONTIER_DATASETS_DIR if root is None else root
    manifest, problem = check_folder(dataset_folder(source.repo_id, root), source.repo_id)
    return None if problem else manifest["revision"]


def _mirror_revisions() -> dict[str, str]:
    """lmms-eval task -> the dataset revision evaluations read now (pinned, else the mirror's manifest)."""
    with _lock:
        now, root = time.monotonic(), settings.FRONTIER_DATASETS_DIR
        if _mirror_cache.get("root") == root and now - _mirror_cache["at"] < MIRROR_TTL_SECONDS:
            return _mirror_cache["revisions"]
        revisions = {task: mirror_revision(task, root) for task in SOURCE_BY_TASK}
        revisions = {task: revision for task, revision in revisions.items() if revision is not None}
        _mirror_cache.update(root=root, at=now, revisions=revisions)
        return revisions


def current_identity() -> dict:
    """{"task_hashes": {lmms-eval task: hash}, "dataset_revisions": {task: revision}, "key": digest of both}."""
    hashes = current_hashes_by_task()
    revisions = _mirror_revisions()
    key = hashlib.sha256(json.dumps([hashes, revisions], sort_keys=True).encode()).hexdigest()[:16]
    return {"task_hashes": hashes, "dataset_revisions": revisions, "key": key}


def _short(value) -> str:
    return str(value)[:12] if value else "none"


def result_identity(task: str, stamp_tasks: dict | None, stamp_datasets: dict | None,
                    batch_size_changed: dict | None = None) -> dict:
    """What a result's stamp says it was computed with: {"task", "task_hash", "dataset_revision", "judge"}.
    ``task`` is the task run: the benchmark's, or its rule-based variant when no LLM judge was configured;
    ``judge`` is ``evaluation.judges.judge_label`` of the judge (None: not a judged benchmark); and, only for a
    result computed after out-of-memory halving, ``batch_size_changed`` ({"from", "to", "reason"})."""
    stamp_tasks, benchmark = stamp_tasks or {}, BENCHMARK_BY_TASK.get(task)
    if task not in stamp_tasks and benchmark is not None and benchmark.rule_based_task in stamp_tasks:
        task = benchmark.rule_based_task
    entry = stamp_tasks.get(task) or {}
    identity = {"task": task, "task_hash": entry.get("task_hash"),
                "dataset_revision": ((stamp_datasets or {}).get(task) or {}).get("revision"),
                "judge": judge_label(entry.get("judge"))}
    if batch_size_changed:
        identity["batch_size_changed"] = batch_size_changed
    return identity


def stale_reasons(result: dict, identity: dict) -> list[str]:
    """Why a result (``result_identity``) is stale now (empty: it is current)."""
    task, reasons = result.get("task"), []
    current_hash = identity["task_hashes"].get(task)
    if current_hash is not None:
        stamped = result.get("task_hash")
        if stamped is None:
            reasons.append(f"task {task}: no task hash in its stamp (evaluated before hashes were stamped)")
        elif stamped != current_hash:
            reasons.append(f"task {task}: its lmms-eval files changed ({_short(stamped)} → {_short(current_hash)})")
    current_revision = identity["dataset_revisions"].get(task)
    if current_revision is not None:
        stamped = result.get("dataset_revision")
        repo = SOURCE_BY_TASK[task].repo_id
        if stamped is None:
            reasons.append(f"dataset {repo}: no revision in its stamp")
        elif stamped != current_revision:
            reasons.append(f"dataset {repo}: revision {_short(stamped)} → {_short(current_revision)}")
    return reasons


def benchmarks_stale(results: dict[str, dict], identity: dict | None = None) -> dict[str, list[str]]:
    """{benchmark key: reasons} of the stale ones among a score's results ({key: ``result_identity``}, what
    SuiteScore.benchmark_identities holds)."""
    identity = identity or current_identity()
    found = {key: stale_reasons(result, identity) for key, result in (results or {}).items()}
    return {key: reasons for key, reasons in found.items() if reasons}


def newest_outputs(*, checkpoint_ids=None, suite=None, benchmark_key: str | None = None) -> list[dict]:
    """The newest harness output per (checkpoint, suite, benchmark) of ready checkpoints: what the scores use."""
    outputs = HarnessOutput.objects.filter(run__checkpoint__status=CheckpointStatus.READY)
    if checkpoint_ids is not None:
        outputs = outputs.filter(run__checkpoint_id__in=checkpoint_ids)
    if suite is not None:
        outputs = outputs.filter(run__suite=suite)
    if benchmark_key is not None:
        outputs = outputs.filter(benchmark__key=benchmark_key)
    rows = outputs.order_by("-id").values(
        "id", "run_id", "run__limit", "run__checkpoint_id", "run__suite_id", "benchmark_id", "benchmark__key",
        "benchmark__lmms_eval_task", "stamp__tasks", "stamp__datasets", "stamp__batch_size_changed",
    )
    newest: dict[tuple, dict] = {}
    for row in rows:
        newest.setdefault((row["run__checkpoint_id"], row["run__suite_id"], row["benchmark_id"]), row)
    return list(newest.values())


def stale_results(*, checkpoint_ids=None, suite=None, benchmark_key: str | None = None) -> list[dict]:
    """Every stale newest result: {checkpoint_id, suite_id, benchmark_id, benchmark, run_id, limit, reasons}."""
    identity = current_identity()
    found = []
    for row in newest_outputs(checkpoint_ids=checkpoint_ids, suite=suite, benchmark_key=benchmark_key):
        result = result_identity(row["benchmark__lmms_eval_task"], row["stamp__tasks"], row["stamp__datasets"])
        reasons = stale_reasons(result, identity)
        if reasons:
            found.append({
                "checkpoint_id": row["run__checkpoint_id"], "suite_id": row["run__suite_id"],
                "benchmark_id": row["benchmark_id"], "benchmark": row["benchmark__key"], "run_id": row["run_id"],
                "limit": row["run__limit"], "reasons": reasons,
            })
    return found
