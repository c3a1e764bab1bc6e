"""Whether a model can train on this worker at all: the memory its weights, gradients and optimizer state
need, counted before anything is loaded (from the tiny model's shape or the base checkpoint's safetensors
headers), against what the device has free. A model past it is refused with a clear failure
(``too_large``) instead of growing until the worker dies."""

from pathlib import Path

import torch

from .safetensors_check import read_safetensors_header
from .training_config import TrainingConfig


class TrainingTooLarge(Exception):
    """The model cannot fit this worker's memory for training: refused before anything is loaded."""

    failure_class = "too_large"


# fp32 training: every parameter's weight (4 bytes), and for the trainable ones a gradient (4) and AdamW's
# two moments (8). Activations come on top, so this is a floor: a model past it cannot train here at all.
WEIGHT_BYTES, TRAINABLE_EXTRA_BYTES = 4, 12


def parameter_counts(config: TrainingConfig) -> tuple[int, int]:
    """(all parameters, trainable ones) of the model `config` trains, counted without building it: from the
    tiny model's shape, or from the base checkpoint's safetensors headers (the new compressor, small, left out)."""
    if config.tiny_model is not None:
        llm = 12 * config.tiny_model.llm_layers * config.tiny_model.llm_hidden**2
        return llm, llm if config.stage == 2 else 0
    total = llm = 0
    for path in Path(config.base_checkpoint).glob("*.safetensors"):
        for name, tensor in read_safetensors_header(path).items():
            total += tensor.numel
            llm += tensor.numel if name.startswith("language_model.") else 0
    return total, llm if config.stage == 2 else 0


def available_memory_bytes(device: torch.device) -> int:
    """What this worker can give a training now: the device's free memory, or on CPU the kernel's MemAvailable."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 2**63


def check_memory(config: TrainingConfig, device: torch.device, available: int | None = None) -> None:
    """Raise ``TrainingTooLarge`` when the weights, gradients and optimizer state alone exceed the memory."""
    total, trainable = parameter_counts(config)
    needed = WEIGHT_BYTES * total + TRAINABLE_EXTRA_BYTES * trainable
    available = available_memory_bytes(device) if available is None else available
    if needed > available:
        raise TrainingTooLarge(
            f"training this model needs at least {needed / 1e9:.1f} GB ({total / 1e9:.2f} B parameters in fp32, "
            f"{trainable / 1e9:.2f} B of them trainable with gradients and AdamW state), but this worker has "
            f"{available / 1e9:.1f} GB available on {device}: train stage 1 (the compressor only), a smaller model, "
            f"or on a worker with more memory"
        )
