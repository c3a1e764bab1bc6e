"""A training run as the values of ``evaluation.training.TrainingConfig``, and checking them.

The web side never imports torch, so it checks configs by running ``evaluation.training``'s own
``validate_config`` in a child process (``python -m workers.training_check``): the same checks
the worker's ``Trainer`` runs again before training.
"""

import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from webapp.training.models import TrainingRun

SYNTHETIC_DATASETS = {"synthetic-shapes": "synthetic:shapes", "synthetic-glyphs": "synthetic:glyphs"}
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


class ConfigCheckFailed(RuntimeError):
    """The checker process itself failed (not the config): a server problem."""


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


def training_config_problems(configs: list[dict]) -> list[list[str]]:
    """Every problem of each config (an empty list when it can run), from ``validate_config``."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "workers.training_check"],
            input=json.dumps(configs), capture_output=True, text=True, cwd=settings.BASE_DIR,
            timeout=settings.FRONTIER_TRAINING_CHECK_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise ConfigCheckFailed(f"checking the training config took longer than {error.timeout:g} s") from None
    if completed.returncode != 0:
        raise ConfigCheckFailed(f"the training config checker failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)
