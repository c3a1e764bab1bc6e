"""Frontier evaluation library: VLM checkpoint format, visual-token compressors, FLOPs, latency,
benchmark registry and the offline synthetic suite.

Importing the package registers ``FrontierVLMConfig`` / ``FrontierVLM`` with transformers' Auto
classes. No Django, no Celery: usable from a notebook. The lmms-eval adapter lives in
``evaluation.harness`` (``evaluate_checkpoint``); it is not imported here because importing
lmms-eval takes seconds.
"""

from . import offline  # noqa: F401  (HF offline defaults, before any submodule imports datasets)
from .compressors import COMPRESSORS, Compressor, build_compressor
from .errors import (
    CheckpointLoadError,
    DatasetUnavailable,
    EvaluationCancelled,
    EvaluationError,
    HarnessError,
    OutOfMemory,
)
from .flops import FLOPS_FORMULA_VERSION, count_parameters, inference_flops
from .latency import LatencyResult, measure_latency
from .loading import FrontierRunner, LlavaRunner, VLMRunner, load_vlm
from .modeling import FrontierVLM, FrontierVLMConfig
from .suites import BENCHMARKS, Benchmark, resolve_task_names, suite_tasks
from .synthetic import SYNTHETIC_TASKS, SyntheticExample, chance_level, synthetic_examples, write_synthetic_suite
from .tiny import build_tiny_tokenizer, build_tiny_vlm, make_tiny_checkpoint

__all__ = [
    "BENCHMARKS",
    "COMPRESSORS",
    "FLOPS_FORMULA_VERSION",
    "SYNTHETIC_TASKS",
    "Benchmark",
    "CheckpointLoadError",
    "Compressor",
    "DatasetUnavailable",
    "EvaluationCancelled",
    "EvaluationError",
    "FrontierRunner",
    "FrontierVLM",
    "FrontierVLMConfig",
    "HarnessError",
    "LatencyResult",
    "LlavaRunner",
    "OutOfMemory",
    "SyntheticExample",
    "VLMRunner",
    "build_compressor",
    "build_tiny_tokenizer",
    "build_tiny_vlm",
    "chance_level",
    "count_parameters",
    "inference_flops",
    "load_vlm",
    "make_tiny_checkpoint",
    "measure_latency",
    "resolve_task_names",
    "suite_tasks",
    "synthetic_examples",
    "write_synthetic_suite",
]
