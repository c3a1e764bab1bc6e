"""Frontier evaluation library: VLM checkpoint format, visual-token compressors, FLOPs, latency,
benchmark registry and the offline synthetic suite.

Importing ``evaluation.modeling`` (or using ``evaluation.FrontierVLM``) registers the model with
transformers' Auto classes. No Django, no Celery: usable from a notebook. The lmms-eval adapter lives in
``evaluation.harness`` (``evaluate_checkpoint``); it is not imported here because importing
lmms-eval takes seconds.
"""

import importlib

from . import offline  # noqa: F401  (HF offline defaults, before any submodule imports datasets)

# Names resolve on first use (PEP 562), so `import evaluation.validation` on a CPU worker does not
# pay for torch and transformers; `from evaluation import FrontierVLM` imports what it needs.
_EXPORTS = {
    "COMPRESSORS": "compressors",
    "Compressor": "compressors",
    "build_compressor": "compressors",
    "CheckpointLoadError": "errors",
    "DatasetUnavailable": "errors",
    "EvaluationCancelled": "errors",
    "EvaluationError": "errors",
    "HarnessError": "errors",
    "OutOfMemory": "errors",
    "FLOPS_FORMULA_VERSION": "flops",
    "count_parameters": "flops",
    "inference_flops": "flops",
    "LatencyResult": "latency",
    "measure_latency": "latency",
    "FrontierRunner": "loading",
    "LlavaRunner": "loading",
    "VLMRunner": "loading",
    "load_vlm": "loading",
    "FrontierVLM": "modeling",
    "FrontierVLMConfig": "modeling",
    "BENCHMARKS": "suites",
    "Benchmark": "suites",
    "resolve_task_names": "suites",
    "suite_tasks": "suites",
    "SYNTHETIC_TASKS": "synthetic",
    "SyntheticExample": "synthetic",
    "chance_level": "synthetic",
    "synthetic_examples": "synthetic",
    "write_synthetic_suite": "synthetic",
    "build_tiny_tokenizer": "tiny",
    "build_tiny_vlm": "tiny",
    "make_tiny_checkpoint": "tiny",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


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
