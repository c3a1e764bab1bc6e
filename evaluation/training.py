"""Compressor training: a plain, resumable torch loop that writes a checkpoint ``load_vlm`` reads.

``Trainer(config, output_dir).run()`` builds the model (a tiny random-init model or a FrontierVLM
base checkpoint, with the requested compressor), trains it on a LLaVA-format dataset or a synthetic
train split, and writes ``output_dir/checkpoint`` (safetensors, tokenizer, image processor,
``training_config.json``). Stage 1 trains the compressor (its projector included) with the LLM
frozen; stage 2 also fine-tunes the LLM. The vision tower is always frozen.

``validate_config`` checks everything first and reports all problems in one ``TrainingConfigError``; the
checks that need no tensors live in ``evaluation.training_config`` (no torch), which the web side runs.

Resuming: every ``save_every`` steps (and before stopping or finishing) the loop writes
``output_dir/state/step-NNNNNN/`` into a temporary folder and renames it, so a killed process leaves
either the previous or the new state, never half of one. ``run()`` continues from the newest state:
trainable weights (safetensors), optimizer and scheduler state, RNG states (python, numpy, torch,
cuda), data position (epoch and index into that epoch's seeded permutation), step and loss history.
The resumed run repeats the lost steps exactly, so its weights equal an uninterrupted run's on CPU. Optimizer,
scheduler and RNG states are read back with ``torch.load(weights_only=True)``: tensors and containers, never code.
Prompts as evaluation renders them (``evaluation.prompts``). CUDA (bf16 autocast) when available, else CPU.

Frozen-encoder cache: the vision tower never changes during training, so when a run sees its
examples at least once and their encoder features fit ``FEATURE_CACHE_MAX_BYTES`` (in CPU memory),
every image is encoded once before the first step and the steps read the held features (the
compressor and the LLM still run every step). On tiny models this makes a step about ten times
cheaper; encoding time counts as compute, image preprocessing as data. With a ``feature_cache``
(``evaluation.feature_cache.FeatureCache``, a folder shared by runs and processes) the features are
encoded once for every run on the same tower and images, e.g. all points of a sweep.
"""

import dataclasses
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, get_scheduler

from .feature_cache import FeatureCache
from .loading import load_image_processor
from .modeling import FrontierVLM, FrontierVLMConfig, VisionFeatures, from_pretrained_complete
from .prompts import format_of_conversation
from .tiny import build_tiny_vlm, tiny_image_processor
from .training_batches import Collator, DataCursor, loss_from_features
from .training_config import TinyModelSpec  # noqa: F401  (re-exported: callers build configs from here)
from .training_config import TrainingConfig, TrainingConfigError, config_problems, load_examples
from .training_data import TrainingExample
from .training_memory import check_memory
from .vlm_spec import COMPRESSOR_LAYOUT

STATE_DIR = "state"
CHECKPOINT_DIR = "checkpoint"
STATE_PREFIX = "step-"
FEATURE_CACHE_MAX_BYTES = 2 * 1024**3
ENCODE_CHUNK = 64  # images per preprocessing and encoder call when features are held

ProgressCallback = Callable[[int, int, float], None]
StopCallback = Callable[[], bool]


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: the weights are no longer numbers, so nothing is saved from here
    and no checkpoint is registered. Lower the learning rate (or raise max_grad_norm's strictness)."""

    failure_class = "training_diverged"

    def __init__(self, step: int, loss: float, learning_rate: float):
        super().__init__(
            f"the loss became {loss} at step {step}: training diverged and was stopped, nothing from it is kept; "
            f"lower the learning rate (it was {learning_rate:g}) and train again"
        )


class TrainingCancelled(Exception):
    """``should_stop()`` asked to stop; raised between steps, after the state was saved."""

    failure_class = "cancelled"

    def __init__(self, step: int, total: int):
        self.step = step
        super().__init__(f"training stopped at step {step} of {total}; run again with the same output folder to resume")


@dataclass
class TrainingResult:
    """``seconds``: wall time of this ``run()`` call; ``samples_per_second``: examples / loop time."""

    steps: int
    final_loss: float
    loss_history: list[float]
    seconds: float
    samples_per_second: float
    checkpoint: str
    resumed_from_step: int
    data_seconds: float  # building batches: image preprocessing, tokenization
    compute_seconds: float  # forward, backward, optimizer step (and encoding the images once, unless cached)
    encoder_features: str = "per step"  # "cache" (a shared FeatureCache), "encoded" (once, held), "per step"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate_config(config: TrainingConfig, device: torch.device | None = None) -> list[TrainingExample]:
    """Check everything before training; returns the dataset's examples, raises ``TrainingConfigError``."""
    problems = config_problems(config)
    if (
        config.precision == "bf16"
        and device is not None
        and not (device.type == "cuda" and torch.cuda.is_bf16_supported())
    ):
        problems.append(f"precision bf16 needs a CUDA device with bfloat16 support, got {device}; use fp32 or auto")
    if problems:
        raise TrainingConfigError(problems)
    return load_examples(config)


def build_model(config: TrainingConfig):
    """(model, tokenizer, image processor) to train, in fp32; call after ``validate_config``."""
    if config.tiny_model is not None:
        spec = config.tiny_model
        model, tokenizer = build_tiny_vlm(config.compressor, config.tokens, spec.llm_hidden, spec.llm_layers,
                                          spec.llm_family, spec.seed)
        image_processor = tiny_image_processor()
    else:
        model = _model_from_base(config)
        tokenizer = AutoTokenizer.from_pretrained(config.base_checkpoint)
        image_processor = load_image_processor(Path(config.base_checkpoint), model.config.vision_config.image_size,
                                               model.config.image_aspect_ratio)  # as its evaluation prepares them
    if config.compressor_from is not None:
        source = from_pretrained_complete(FrontierVLM, config.compressor_from, dtype=torch.float32)
        model.compressor = source.compressor  # with its layout and options (num_heads, ...), which its config says
        model.config.compressor_layout, model.config.compressor_params = (source.config.compressor_layout,
                                                                           source.config.compressor_params)
    model.vision_tower.requires_grad_(False)
    model.compressor.requires_grad_(True)
    model.language_model.requires_grad_(config.stage == 2)
    return model, tokenizer, image_processor


def _model_from_base(config: TrainingConfig) -> FrontierVLM:
    base = from_pretrained_complete(FrontierVLM, config.base_checkpoint, dtype=torch.float32)
    if (base.config.compressor_method, base.visual_tokens) == (config.compressor, config.tokens):
        return base
    settings = base.config.to_dict()
    settings.update(compressor_method=config.compressor, visual_tokens=config.tokens, compressor_params={},
                    compressor_layout=COMPRESSOR_LAYOUT)  # a fresh compressor: the current layout
    torch.manual_seed(config.seed)  # the fresh compressor's initialisation
    model = FrontierVLM(FrontierVLMConfig.from_dict(settings))
    model.vision_tower.load_state_dict(base.vision_tower.state_dict())
    model.language_model.load_state_dict(base.language_model.state_dict())
    return model


def _rng_states() -> dict:
    version, mt_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": [version, list(mt_state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore_rng_states(states: dict) -> None:
    version, mt_state, gauss = states["python"]
    random.setstate((version, tuple(mt_state), gauss))
    kind, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _state_step(path: Path) -> int:
    return int(path.name.removeprefix(STATE_PREFIX))


def latest_state(output_dir: str | Path) -> Path | None:
    """The newest complete state folder (partial ones are never renamed into place)."""
    states = sorted(Path(output_dir, STATE_DIR).glob(f"{STATE_PREFIX}*"), key=_state_step)
    return states[-1] if states else None


def _replace_directory(temporary: Path, final: Path) -> None:
    """Move a fully written ``temporary`` folder to ``final``, replacing an older one."""
    retired = final.with_name(f".{final.name}-old")
    shutil.rmtree(retired, ignore_errors=True)
    if final.exists():
        final.rename(retired)
    temporary.rename(final)
    shutil.rmtree(retired, ignore_errors=True)


class Trainer:
    """Runs one training config into ``output_dir``; ``run()`` resumes from its newest saved state."""

    def __init__(
        self,
        config: TrainingConfig,
        output_dir: str | Path,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
        device: str | torch.device | None = None,
        feature_cache: FeatureCache | None = None,
    ):
        self.config = config
        self.feature_cache = feature_cache
        self.output_dir = Path(output_dir)
        self.progress = progress
        self.should_stop = should_stop
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.examples = validate_config(config, self.device)
        self.total_steps = config.total_steps(len(self.examples))
        use_bf16 = self.device.type == "cuda" and config.precision != "fp32" and torch.cuda.is_bf16_supported()
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None

    def run(self) -> TrainingResult:
        started = time.perf_counter()
        config = self.config
        random.seed(config.seed)
        np.random.seed(config.seed)
        check_memory(config, self.device)
        model, tokenizer, image_processor = build_model(config)
        model.to(self.device)
        torch.manual_seed(config.seed)  # training randomness does not depend on how the model was built
        trainable = {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
        optimizer = torch.optim.AdamW(trainable.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = get_scheduler(
            config.lr_schedule, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=self.total_steps
        )
        collate = Collator(tokenizer, image_processor, model.config.image_token_id, model.visual_tokens,
                           model.compressor.uses_query, format_of_conversation(model.config.conversation))
        history: list[float] = []
        epoch = index = 0
        state = latest_state(self.output_dir)
        if state is not None:
            history, epoch, index = self._load_state(state, trainable, optimizer, scheduler)
        cursor = DataCursor(len(self.examples), config.seed, epoch, index)
        resumed_from = len(history)

        model.train()
        model.vision_tower.eval()
        data_seconds = compute_seconds = 0.0
        if self.total_steps * config.examples_per_step() >= len(self.examples):
            features, data_seconds, compute_seconds, feature_source = self._encode_examples(model, collate)
        else:
            features, feature_source = None, "per step"
        while len(history) < self.total_steps:
            if self.should_stop is not None and self.should_stop():
                self._save_state(len(history), trainable, optimizer, scheduler, cursor, history)
                raise TrainingCancelled(len(history), self.total_steps)
            tick = time.perf_counter()
            batches = []
            for _ in range(config.gradient_accumulation):
                indices = cursor.next_indices(config.batch_size)
                batch = collate([self.examples[i] for i in indices], pixels=features is None)
                if features is not None:
                    batch["vision_features"] = {name: tensor[indices] for name, tensor in features.items()}
                batches.append(batch)
            tock = time.perf_counter()
            loss = self._step(model, trainable, optimizer, scheduler, batches, step=len(history) + 1)
            data_seconds += tock - tick
            compute_seconds += time.perf_counter() - tock
            history.append(loss)
            step = len(history)
            if self.progress is not None:
                self.progress(step, self.total_steps, loss)
            if config.save_every and step % config.save_every == 0 and step < self.total_steps:
                self._save_state(step, trainable, optimizer, scheduler, cursor, history)
        self._save_state(len(history), trainable, optimizer, scheduler, cursor, history)
        checkpoint = self._write_checkpoint(model, tokenizer, image_processor)
        trained_samples = (len(history) - resumed_from) * config.examples_per_step()
        loop_seconds = data_seconds + compute_seconds
        return TrainingResult(
            steps=len(history),
            final_loss=history[-1],
            loss_history=history,
            seconds=time.perf_counter() - started,
            samples_per_second=trained_samples / loop_seconds if loop_seconds else 0.0,
            checkpoint=str(checkpoint),
            resumed_from_step=resumed_from,
            data_seconds=data_seconds,
            compute_seconds=compute_seconds,
            encoder_features=feature_source,
        )

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        )

    def _feature_bytes_per_example(self, model) -> int:
        """Upper bound of one example's encoder features plus its pixels (fp32), known before encoding."""
        vision = model.config.vision_config
        patches, width = model.config.patch_grid_side**2, vision.hidden_size
        per_patch = width * (1 + len(model.config.multi_level_layers))
        if model.compressor.uses_cls_attention:
            per_patch += 1 + width
        return 4 * (patches * per_patch + vision.num_channels * vision.image_size**2)

    def _encode_examples(self, model, collate) -> tuple[dict[str, torch.Tensor] | None, float, float, str]:
        """(every example's encoder features on the CPU, or None when they would not fit
        ``FEATURE_CACHE_MAX_BYTES``; preprocessing seconds; encoding seconds; where the features came
        from: ``cache`` (the shared ``feature_cache``), ``encoded``, or ``per step`` when not held)."""
        if self._feature_bytes_per_example(model) * len(self.examples) > FEATURE_CACHE_MAX_BYTES:
            return None, 0.0, 0.0, "per step"
        tick = time.perf_counter()
        pixel_chunks = [
            collate.pixel_values(self.examples[start : start + ENCODE_CHUNK])
            for start in range(0, len(self.examples), ENCODE_CHUNK)
        ]
        data_seconds = time.perf_counter() - tick

        def encode() -> dict[str, torch.Tensor]:
            chunks = []
            for pixel_values in pixel_chunks:
                with self._autocast():
                    chunks.append(model.encode_images(pixel_values.to(self.device)).cpu_tensors())
            return {name: torch.cat([chunk[name] for chunk in chunks]) for name in chunks[0]}

        tick = time.perf_counter()
        if self.feature_cache is None:
            features, source = encode(), "encoded"
        else:
            precision = str(self.autocast_dtype or torch.float32)
            key = FeatureCache.key(model, pixel_chunks, self.device.type, precision)
            features, hit = self.feature_cache.get_or_compute(key, encode)
            source = "cache" if hit else "encoded"
        return features, data_seconds, time.perf_counter() - tick, source

    def _step(self, model, trainable, optimizer, scheduler, batches, step: int) -> float:
        """One optimizer step over the micro-batches; returns their mean loss. A NaN or infinite loss stops
        training before the optimizer applies it (TrainingDiverged)."""
        total = 0.0
        for batch in batches:
            features = batch.pop("vision_features", None)
            batch = {key: value.to(self.device) for key, value in batch.items()}
            with self._autocast():
                if features is None:
                    loss = model(**batch, use_cache=False).loss
                else:
                    features = VisionFeatures(**{name: tensor.to(self.device) for name, tensor in features.items()})
                    loss = loss_from_features(model, batch, features)
                loss = loss / len(batches)
            loss.backward()
            total += loss.item()
        if not math.isfinite(total):
            raise TrainingDiverged(step, total, self.config.learning_rate)
        torch.nn.utils.clip_grad_norm_(trainable.values(), self.config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return total

    def _save_state(self, step, trainable, optimizer, scheduler, cursor, history) -> None:
        states = self.output_dir / STATE_DIR
        final = states / f"{STATE_PREFIX}{step:06d}"
        temporary = states / f".tmp-{final.name}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        save_file(
            {name: parameter.detach().cpu().contiguous() for name, parameter in trainable.items()},
            temporary / "trainable.safetensors",
        )
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, temporary / "optimizer.pt"
        )
        torch.save(_rng_states(), temporary / "rng.pt")
        progress = {
            "step": step,
            "epoch": cursor.epoch,
            "index": cursor.index,
            "loss_history": history,
            "config": self.config.to_dict(),
        }
        (temporary / "progress.json").write_text(json.dumps(progress))
        _replace_directory(temporary, final)
        for older in states.glob(f"{STATE_PREFIX}*"):
            if older != final:
                shutil.rmtree(older)

    def _load_state(self, state: Path, trainable, optimizer, scheduler) -> tuple[list[float], int, int]:
        """Restore weights, optimizer, scheduler and RNGs; returns (loss history, epoch, index)."""
        progress = json.loads((state / "progress.json").read_text())
        if progress["config"] != self.config.to_dict():
            changed = sorted(
                key for key, value in self.config.to_dict().items() if progress["config"].get(key) != value
            )
            problem = (
                f"{self.output_dir} holds a run with a different config ({', '.join(changed)} differ); "
                "use a new output folder or the original config"
            )
            raise TrainingConfigError([problem])
        weights = load_file(state / "trainable.safetensors")
        with torch.no_grad():
            for name, parameter in trainable.items():
                parameter.copy_(weights[name])
        optimizer_state = torch.load(state / "optimizer.pt", weights_only=True)
        optimizer.load_state_dict(optimizer_state["optimizer"])
        scheduler.load_state_dict(optimizer_state["scheduler"])
        _restore_rng_states(torch.load(state / "rng.pt", weights_only=True))
        return progress["loss_history"], progress["epoch"], progress["index"]

    def _write_checkpoint(self, model, tokenizer, image_processor) -> Path:
        final = self.output_dir / CHECKPOINT_DIR
        temporary = self.output_dir / f".tmp-{CHECKPOINT_DIR}"
        shutil.rmtree(temporary, ignore_errors=True)
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        image_processor.save_pretrained(temporary)
        (temporary / "training_config.json").write_text(self.config.to_json())
        _replace_directory(temporary, final)
        return final
