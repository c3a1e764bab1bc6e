"""Evaluate a checkpoint with lmms-eval 0.7.3, in process: the code path the CLI and the workers share.

``evaluate_checkpoint(path, ["shapes", "glyphs"])`` loads the checkpoint, plugs it into lmms-eval as
``FrontierLMM`` and returns an ``EvaluationOutcome``: lmms-eval's raw result dict, long result rows,
a reproducibility stamp and per-sample latency. A worker that evaluates one checkpoint several times
keeps a ``CheckpointEvaluator``, so the model is loaded once.

Device and batch size: CUDA in bfloat16 when available, else CPU in float32. Without a batch size,
CPU uses ``CPU_BATCH_SIZE``; CUDA uses as many sequences as fit in half the free memory by a KV-cache
estimate (``auto_batch_size``), at most ``MAX_AUTO_BATCH_SIZE``, and halves it when a batch still
runs out of memory.

Importing this module imports lmms-eval (6-11 s); building a ``CheckpointEvaluator`` applies Frontier's
adjustments to it once (``evaluation.lmms_setup``). The lmms-eval model is ``evaluation.lmm_adapter``,
the result rows and stamp are ``evaluation.results``.
"""

import argparse
import contextlib
import difflib
import functools
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch
from datasets.exceptions import DatasetNotFoundError
from lmms_eval.evaluator_utils import get_sample_size
from lmms_eval.tasks import TaskManager
from lmms_eval.utils import handle_non_serializable
from tenacity import RetryError

from . import judges, offline  # noqa: F401  (HF offline defaults; the package __init__ applies them first)
from .datasets import mirror_root
from .errors import (
    CheckpointLoadError,
    DatasetUnavailable,
    EnvironmentMismatch,
    EvaluationError,
    HarnessError,
    OutOfMemory,
)
from .feature_cache import FeatureCache
from .latency import measure_latency
from .lmm_adapter import (
    FrontierLMM,
    ProgressCallback,
    StopCallback,
    first_image,
    is_out_of_memory,
)
from .lmms_setup import configure_lmms_eval
from .loading import VLMRunner, load_vlm
from .mirror_tasks import answer_hub_ids_from_mirror, mirror_task_request
from .modeling import FrontierVLM
from .results import EvaluationOutcome, ResultRow, git_revision, result_rows  # noqa: F401  (ResultRow: re-exported)
from .samples import task_sample_records
from .suites import resolve_task_names
from .stamps import evaluation_stamp
from .synthetic import SYNTHETIC_TASKS, write_synthetic_suite

CPU_BATCH_SIZE = 8
MAX_AUTO_BATCH_SIZE = 64
LATENCY_NEW_TOKENS = 16
AUTO_BATCH_TEXT_TOKENS = 512  # prompt + answer tokens budgeted per sequence besides the V visual tokens
DEFAULT_SYNTHETIC_DIR = Path.home() / ".cache" / "frontier" / "synthetic"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32


def auto_batch_size(runner: VLMRunner) -> int:
    """``CPU_BATCH_SIZE`` on CPU; on CUDA, sequences of V + 512 tokens whose KV cache fits half the free memory."""
    if runner.device.type != "cuda":
        return CPU_BATCH_SIZE
    text = runner.model.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    bytes_per_token = 2 * text.num_hidden_layers * kv_heads * head_dim * runner.model.dtype.itemsize
    sequence_bytes = 2 * bytes_per_token * (runner.visual_tokens + AUTO_BATCH_TEXT_TOKENS)  # x2: activations, logits
    free_bytes, _ = torch.cuda.mem_get_info(runner.device)
    return max(1, min(MAX_AUTO_BATCH_SIZE, int(0.5 * free_bytes // sequence_bytes)))


def _dataset_unavailable_reason(error: BaseException) -> str | None:
    """Why a task's data cannot be read, when ``error`` (or its cause) is a missing-data error."""
    while error is not None:
        if isinstance(error, (ConnectionError, FileNotFoundError, DatasetNotFoundError, TimeoutError)):
            return f"{type(error).__name__}: {error}"
        if isinstance(error, OSError) and ("offline" in str(error).lower() or "connect" in str(error).lower()):
            return f"{type(error).__name__}: {error}"
        error = error.__cause__ or error.__context__
    return None


def _import_failure(error: BaseException) -> tuple[str, ImportError] | None:
    """(module, the ImportError) when ``error`` or its causes is an import failure: the innermost
    ModuleNotFoundError (lmms-eval wraps a task's failed ``!function`` import in an ImportError of
    its own), else the first ImportError."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError) or (isinstance(error, ImportError) and found is None):
            found = error
        error = error.__cause__ or error.__context__
    if found is None:
        return None
    return (found.name or str(found)), found


def _leaf_tasks(task_dict: dict) -> list:
    leaves = []
    for value in task_dict.values():
        leaves.extend(_leaf_tasks(value) if isinstance(value, dict) else [value])
    return leaves


def _task_manager(include_paths: tuple[str, ...], include_defaults: bool) -> TaskManager:
    """Task index, cached per process (indexing lmms-eval's ~2,000 built-in tasks takes seconds).

    The key holds every included YAML file's modification time, so edited or added tasks are seen.
    """
    yaml_files = tuple(
        sorted((str(file), file.stat().st_mtime_ns) for path in include_paths for file in Path(path).rglob("*.yaml"))
    )
    return _cached_task_manager(include_paths, include_defaults, yaml_files)


@functools.cache
def _cached_task_manager(include_paths: tuple[str, ...], include_defaults: bool, yaml_files: tuple) -> TaskManager:
    """``yaml_files`` only keys the cache."""
    return TaskManager(include_path=list(include_paths) or None, include_defaults=include_defaults)


def _request_count(task, limit: float | None) -> int:
    """Model requests a task will send: one per document, one per choice for multiple_choice tasks."""
    documents = task.eval_docs_no_media
    sample_size = get_sample_size(task, limit)
    count = len(documents) if sample_size is None else min(sample_size, len(documents))
    if task.OUTPUT_TYPE == "multiple_choice":
        return sum(len(task.doc_to_choice(documents[index])) for index in range(count))
    return count


class CheckpointEvaluator:
    """A loaded checkpoint wrapped for lmms-eval; ``evaluate`` can be called many times."""

    def __init__(
        self,
        checkpoint: str | Path,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        synthetic_dir: str | Path | None = None,
        synthetic_seed: int = 0,
        feature_cache: FeatureCache | None = None,
        datasets_dir: str | Path | None = None,
    ):
        """``feature_cache``: encoder features shared with other checkpoints on the same frozen tower
        (FrontierVLM checkpoints; a llava-hf model always encodes). ``datasets_dir``: the dataset mirror the
        real benchmarks read (default ``evaluation.datasets.mirror_root()``, FRONTIER_DATASETS_DIR)."""
        self.lmms_evaluator = configure_lmms_eval()  # before any task is indexed or built
        self.checkpoint = Path(checkpoint)
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = default_dtype(self.device)
        self.synthetic_dir = Path(synthetic_dir) if synthetic_dir is not None else DEFAULT_SYNTHETIC_DIR
        self.synthetic_seed = synthetic_seed
        self.datasets_dir = Path(datasets_dir) if datasets_dir is not None else mirror_root()
        answer_hub_ids_from_mirror(self.datasets_dir)  # task code that loads by hub id (GQA's images) too
        try:
            runner = load_vlm(self.checkpoint, device=self.device, dtype=self.dtype)
        except Exception as error:
            failure = _import_failure(error)
            if failure is not None:
                raise EnvironmentMismatch(*failure, where=f"loading checkpoint {self.checkpoint}") from error
            if is_out_of_memory(error):
                raise OutOfMemory(
                    f"checkpoint {self.checkpoint} does not fit on {self.device}: {error}. Use a larger device."
                ) from error
            raise CheckpointLoadError(
                f"cannot load checkpoint {self.checkpoint}: {error}. The folder needs config.json "
                f"(model_type frontier_vlm or llava), safetensors weights and tokenizer files; "
                f"`python -m evaluation make-tiny --out DIR` writes a valid example."
            ) from error
        if isinstance(runner.model, FrontierVLM):
            runner.model.feature_cache = feature_cache
        self.batch_size_given = batch_size is not None
        self.lmm = FrontierLMM(
            runner,
            batch_size if batch_size is not None else auto_batch_size(runner),
            auto_batch_size=batch_size is None,
        )

    @property
    def runner(self) -> VLMRunner:
        return self.lmm.runner

    def _synthetic_suite(self) -> Path:
        return write_synthetic_suite(self.synthetic_dir / f"seed{self.synthetic_seed}", seed=self.synthetic_seed)

    def load_tasks(
        self, tasks: list[str], include_path: str | Path | None = None
    ) -> tuple[TaskManager, dict[str, list]]:
        """The task index and task objects by requested name.

        Real benchmarks read the dataset mirror; missing data raises ``DatasetUnavailable``; a module a task's
        code cannot import raises ``EnvironmentMismatch``; unknown names and broken YAML raise ``HarnessError``.
        """
        tasks = resolve_task_names(tasks)
        include_paths = [str(self._synthetic_suite())]  # written once, then reused from disk
        if include_path is not None:
            if not Path(include_path).is_dir():
                raise HarnessError(f"--include-path {include_path} is not a folder of lmms-eval task YAML files")
            include_paths.append(str(Path(include_path).resolve()))
        manager = _task_manager(tuple(include_paths), include_defaults=False)
        if not set(tasks) <= set(manager.all_tasks):
            manager = _task_manager(tuple(include_paths), include_defaults=True)
        unknown = [task for task in tasks if task not in manager.all_tasks]
        if unknown:
            hints = {task: difflib.get_close_matches(task, manager.all_tasks, n=3) for task in unknown}
            raise HarnessError(
                "unknown task(s): "
                + "; ".join(
                    f"{task} (did you mean {', '.join(close)}?)" if close else task for task, close in hints.items()
                )
                + ". Use lmms-eval task names, Frontier benchmark keys, or add a folder with --include-path."
            )
        loaded = {}
        for task in tasks:
            request = mirror_task_request(task, self.datasets_dir)  # DatasetUnavailable before any loading
            try:
                loaded[task] = _leaf_tasks(manager.load_task_or_group([request]))
            except Exception as error:
                failure = _import_failure(error)
                if failure is not None:
                    raise EnvironmentMismatch(*failure, where=f"lmms-eval, building task {task!r},") from error
                reason = _dataset_unavailable_reason(error)
                if reason is not None:
                    raise DatasetUnavailable(task, reason) from error
                raise HarnessError(f"lmms-eval could not build task {task!r}: {error!r}. Check its YAML.") from error
        return manager, loaded

    def evaluate(
        self,
        tasks: list[str],
        limit: float | None = None,
        include_path: str | Path | None = None,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
        latency_samples: int = 3,
        judge_environ: dict | None = None,
    ) -> EvaluationOutcome:
        """Run ``tasks`` (lmms-eval names, benchmark keys or suite names) and collect the outcome; the LLM judge is
        read from ``judge_environ`` (FRONTIER_JUDGE_*; default the process environment)."""
        judge, ran, judged = judges.plan(resolve_task_names(tasks), judge_environ)  # no judge: rule-based or refused
        judge_code = any(judges.judged_benchmark(task) for task in ran)  # MMBench, MathVista
        manager, loaded = self.load_tasks(list(ran.values()), include_path)
        task_objects = [task for leaves in loaded.values() for task in leaves]
        self.lmm.track(sum(_request_count(task, limit) for task in task_objects), progress, should_stop)
        transport = judges.judge_transport(judge) if judge_code else contextlib.nullcontext()
        try:  # files tasks write (TextVQA's submission JSON) go to a scratch folder, not the working directory
            with tempfile.TemporaryDirectory(prefix="frontier-lmms-eval-") as scratch, transport as client:
                if judged:
                    client.probe()  # JudgeUnavailable before the model runs
                raw = self.lmms_evaluator.simple_evaluate(
                    model=self.lmm,
                    tasks=task_objects,
                    task_manager=manager,  # without it lmms-eval indexes all its built-in tasks again (~5 s)
                    limit=limit,
                    batch_size=self.lmm.batch_size,
                    device=str(self.device),
                    log_samples=True,  # per-item records (evaluation.samples); not kept in raw_results
                    verbosity="WARNING",
                    process_docs_parallel=1,
                    cli_args=argparse.Namespace(output_path=scratch, process_with_media=True),
                )
        except EvaluationError:
            raise
        except judges.JudgeFailed as error:
            raise judges.JudgeUnavailable(f"{error}. No score was recorded; evaluate again once it answers.") from error
        except Exception as error:
            raise self._classified(error) from error
        samples = task_sample_records(raw.pop("samples", None), self.lmm.request_stats)
        raw = json.loads(json.dumps(raw, default=handle_non_serializable))
        latency = self.measure_latency(task_objects[0], latency_samples) if latency_samples else {}
        stamp = evaluation_stamp(self, raw, limit, uses_synthetic=any(task in SYNTHETIC_TASKS for task in loaded),
                           tasks=list(loaded), loaded=loaded, include_path=include_path)
        if judge_code:
            judges.stamp_judges(stamp["tasks"], ran, client)
        return EvaluationOutcome(checkpoint=str(self.checkpoint), tasks=list(loaded), raw_results=raw,
                                 rows=result_rows(raw), stamp=stamp, latency=latency, samples=samples)

    def _classified(self, error: BaseException) -> EvaluationError:
        if isinstance(error, RetryError) and error.last_attempt.exception() is not None:
            error = error.last_attempt.exception()
        failure = _import_failure(error)
        if failure is not None:
            return EnvironmentMismatch(*failure, where="lmms-eval")
        if is_out_of_memory(error):
            return OutOfMemory(
                f"{self.device} ran out of memory at batch size {self.lmm.batch_size}: {error}. "
                f"Retry with a smaller --batch-size."
            )
        return HarnessError(f"lmms-eval failed: {type(error).__name__}: {error}. Check the task's YAML and data.")

    @property
    def device_name(self) -> str:
        """The accelerator's model (e.g. NVIDIA H100), or the CPU architecture: what latency depends on."""
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else platform.machine()

    @property
    def latency_key(self) -> dict:
        """What a latency measurement holds for: the same checkpoint on the same device model, in the same dtype."""
        return {"device": str(self.device), "device_name": self.device_name,
                "dtype": str(self.dtype).removeprefix("torch.")}

    def measure_latency(self, task, samples: int) -> dict:
        """Prefill and decode time of single samples (batch size 1) from ``task``'s first documents."""
        documents = [task.eval_docs[index] for index in range(min(samples, len(task.eval_docs)))]
        measurements = [
            measure_latency(
                self.runner,
                [first_image(task.doc_to_visual(document))],
                [task.doc_to_text(document)],
                new_tokens=LATENCY_NEW_TOKENS,
                warmup=1 if index == 0 else 0,
            ).as_dict()
            for index, document in enumerate(documents)
        ]
        return {
            "task": task.config.task,
            "samples": measurements,
            "median_time_to_first_token_s": statistics.median(m["time_to_first_token_s"] for m in measurements),
            "median_decode_per_token_s": statistics.median(m["decode_per_token_s"] for m in measurements),
        }


def evaluate_checkpoint(
    checkpoint: str | Path,
    tasks: list[str],
    limit: float | None = None,
    include_path: str | Path | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    synthetic_dir: str | Path | None = None,
    latency_samples: int = 3,
    feature_cache: FeatureCache | None = None,
    datasets_dir: str | Path | None = None,
) -> EvaluationOutcome:
    """Load ``checkpoint`` and evaluate it on ``tasks``; failures raise ``evaluation.errors`` classes."""
    evaluator = CheckpointEvaluator(
        checkpoint, batch_size=batch_size, device=device, synthetic_dir=synthetic_dir, feature_cache=feature_cache,
        datasets_dir=datasets_dir,
    )
    return evaluator.evaluate(
        tasks,
        limit=limit,
        include_path=include_path,
        progress=progress,
        should_stop=should_stop,
        latency_samples=latency_samples,
    )
