"""A training run as the values of ``evaluation.training.TrainingConfig``, and checking them.

The checks are ``evaluation.training_config.config_problems``, which needs no torch and runs in the
web process: the same checks the worker's ``Trainer`` runs again before training.
"""

from pathlib import Path

from django.conf import settings

from evaluation.synthetic import SYNTHETIC_TASKS
from evaluation.training_config import TrainingConfig, config_problems
from webapp.registry.models import Checkpoint
from webapp.training.models import TrainingRun

SYNTHETIC_DATASETS = {f"synthetic-{task}": f"synthetic:{task}" for task in SYNTHETIC_TASKS}  # synthetic-shapes, ...
LLAVA_DATASET = "llava"
DATASET_KINDS = (*SYNTHETIC_DATASETS, LLAVA_DATASET)
# TrainingConfig fields a spec sets under "hyperparameters", with the defaults of a new run.
HYPERPARAMETER_DEFAULTS = {
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "batch_size": 16,
    "gradient_accumulation": 1,
    "max_steps": None,
    "epochs": None,
    "warmup_steps": 0,
    "lr_schedule": "cosine",
    "seed": 0,
    "precision": "auto",
    "save_every": None,  # None: FRONTIER_TRAINING_SAVE_EVERY
}


def dataset_path(relative: str) -> Path:
    """A dataset path under FRONTIER_TRAINING_DATA_ROOT (relative to it, or absolute inside it)."""
    return (settings.FRONTIER_TRAINING_DATA_ROOT / relative).resolve()


def training_config_values(run: TrainingRun, base_path: str | None, compressor_from_path: str | None) -> dict:
    """The ``TrainingConfig`` dict of `run`, with the local folders of its checkpoints."""
    dataset = run.dataset
    if dataset["kind"] == LLAVA_DATASET:
        dataset_values = {
            "dataset": str(dataset_path(dataset["json"])),
            "image_folder": str(dataset_path(dataset["images"])),
            "synthetic_count": None,
        }
    else:
        dataset_values = {
            "dataset": SYNTHETIC_DATASETS[dataset["kind"]],
            "image_folder": None,
            "synthetic_count": dataset.get("count"),
        }
    return {
        "compressor": run.compressor,
        "tokens": run.visual_tokens,
        "stage": run.stage,
        "base_checkpoint": base_path,
        "tiny_model": run.tiny_model,
        "compressor_from": compressor_from_path,
        **dataset_values,
        **run.hyperparameters,
    }


def _checkpoint_label(checkpoint: Checkpoint) -> str:
    return f"checkpoint {checkpoint.pk} ({checkpoint.name})"


def training_config_problems(run: TrainingRun) -> list[str]:
    """Every problem of an (unsaved) run's config; an empty list when it can run. Its checkpoints are
    judged by their stored config.json, and the problems name them by id and name."""
    base, source = run.base_checkpoint, run.compressor_from
    stored_configs = {_checkpoint_label(checkpoint): checkpoint.config for checkpoint in (base, source) if checkpoint}
    values = training_config_values(
        run, _checkpoint_label(base) if base else None, _checkpoint_label(source) if source else None
    )
    return config_problems(TrainingConfig.from_dict(values), stored_configs)
