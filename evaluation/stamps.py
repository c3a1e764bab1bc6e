"""An evaluation's reproducibility stamp: harness and task identities, the data read, the model, the software and
the hardware (``evaluation_stamp``, called by ``evaluation.harness.CheckpointEvaluator.evaluate``)."""

import importlib.metadata
import platform

import torch

from .flops import LATEST_FLOPS_FORMULA
from .loading import preprocessing_stamp
from .mirror_tasks import mirror_stamp
from .results import git_revision
from .synthetic import suite_manifest
from .task_identity import tasks_stamp
from .vlm_spec import LLAVA_PROJECTOR_METHOD


def evaluation_stamp(evaluator, raw: dict, limit: float | None, uses_synthetic: bool, tasks: tuple = (), loaded=None,
                     include_path=None) -> dict:
    """Everything needed to reproduce the numbers (harness, data, model, software, hardware); ``tasks``:
    per task its hash, generation kwargs and judge (``evaluation.task_identity``)."""
    runner = evaluator.runner
    config = raw.get("config", {})
    return {
        "harness": "lmms-eval",
        "lmms_eval_version": importlib.metadata.version("lmms_eval"),
        "task_versions": raw.get("versions", {}),
        "model_args": {
            "checkpoint": str(evaluator.checkpoint.resolve()),
            "model_type": runner.model_type,
            "compressor": getattr(runner.model.config, "compressor_method", LLAVA_PROJECTOR_METHOD),
            "limit": limit,
        },
        "seeds": {key: config.get(key) for key in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")},
        "synthetic_suite": suite_manifest(evaluator._synthetic_suite()) if uses_synthetic else None,
        "datasets": mirror_stamp(tasks, evaluator.datasets_dir),  # mirror folders read: revision, fingerprint
        **tasks_stamp(loaded or {}, [include_path] if include_path is not None else []),  # hashes, kwargs, judge
        "dtype": str(evaluator.dtype).removeprefix("torch."),
        "device": str(evaluator.device),
        "device_name": evaluator.device_name,
        "batch_size": evaluator.lmm.batch_size,
        "batch_size_rule": "given" if evaluator.batch_size_given else "auto",
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "transformers_version": importlib.metadata.version("transformers"),
        "datasets_version": importlib.metadata.version("datasets"),
        # The formula this result's FLOPs are read with (fitting.flops): it stores N, V and the compressor,
        # not a FLOPs number, so any version recomputes them; older results keep the version they carry.
        "flops_formula_version": LATEST_FLOPS_FORMULA,
        "prompt_format": runner.prompt_format.stamp(),
        "image_preprocessing": preprocessing_stamp(runner.image_processor),
        "visual_tokens": runner.visual_tokens,
        "llm_params": runner.llm_param_count,
        "compressor_params": runner.compressor_param_count,
        "frontier_git_revision": git_revision(),
    }
