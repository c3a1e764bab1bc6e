"""Compressor training: a plain, resumable torch loop that writes a checkpoint ``load_vlm`` reads.

``Trainer(config, output_dir).run()`` builds the model (a tiny random-init model or a FrontierVLM
base checkpoint, with the requested compressor), trains it on a LLaVA-format dataset or a synthetic
train split, and writes ``output_dir/checkpoint`` (safetensors, tokenizer, image processor,
``training_config.json``). Stage 1 trains the compressor (its projector included) with the LLM
frozen; stage 2 also fine-tunes the LLM. The vision tower is always frozen.

Everything in the config is checked by ``validate_config`` before anything runs; all problems are
reported at once in one ``TrainingConfigError``.

Resuming: every ``save_every`` steps (and before stopping or finishing) the loop writes
``output_dir/state/step-NNNNNN/`` into a temporary folder and renames it, so a killed process leaves
either the previous or the new state, never half of one. ``run()`` continues from the newest state:
trainable weights (safetensors), optimizer and scheduler state, RNG states (python, numpy, torch,
cuda), data position (epoch and index into that epoch's seeded permutation), step and loss history.
The resumed run repeats the lost steps exactly, so its weights equal an uninterrupted run's on CPU.
Optimizer, scheduler and RNG states are written with ``torch.save`` and read back with
``torch.load(weights_only=True)``: only tensors and plain containers are ever unpickled, never code.

Device and precision: CUDA when available, else CPU; fp32 on CPU, bf16 autocast (fp32 master
weights) on CUDA with ``precision="auto"`` or ``"bf16"``.

Frozen-encoder cache: the vision tower never changes during training, so when a run sees its
examples at least once and their encoder features fit ``FEATURE_CACHE_MAX_BYTES`` (in CPU memory),
every image is encoded once before the first step and the steps read the cached features (the
compressor and the LLM still run every step). On tiny models this makes a step about ten times
cheaper; encoding time counts as compute, image preprocessing as data.
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
from transformers import AutoConfig, AutoTokenizer, get_scheduler

from .compressors import check_tokens
from .loading import checkpoint_model_type, load_image_processor
from .modeling import FrontierVLM, FrontierVLMConfig, VisionFeatures
from .synthetic import SYNTHETIC_TASKS
from .tiny import LLM_FAMILIES, TINY_IMAGE_SIZE, TINY_PATCH_SIZE, TINY_VISION, build_tiny_vlm, tiny_image_processor
from .training_data import (
    Collator,
    TrainingDataError,
    TrainingExample,
    load_llava_dataset,
    synthetic_task,
    synthetic_training_examples,
)

LR_SCHEDULES = ("cosine", "linear")
PRECISIONS = ("auto", "fp32", "bf16")
STATE_DIR = "state"
CHECKPOINT_DIR = "checkpoint"
STATE_PREFIX = "step-"
FEATURE_CACHE_MAX_BYTES = 2 * 1024**3
ENCODE_CHUNK = 64  # images per encoder call while filling the feature cache

ProgressCallback = Callable[[int, int, float], None]
StopCallback = Callable[[], bool]


class TrainingConfigError(ValueError):
    """The training config cannot run; ``problems`` lists every reason, the message joins them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid training config: " + "; ".join(problems))


class TrainingCancelled(Exception):
    """``should_stop()`` asked to stop; raised between steps, after the state was saved."""

    failure_class = "cancelled"

    def __init__(self, step: int, total: int):
        self.step = step
        super().__init__(f"training stopped at step {step} of {total}; run again with the same output folder to resume")


@dataclass
class TinyModelSpec:
    """A random-init tiny model (``evaluation.tiny.build_tiny_vlm``) as the starting point."""

    llm_hidden: int = 64
    llm_layers: int = 2
    llm_family: str = "qwen2"
    seed: int = 0


@dataclass
class TrainingConfig:
    """Exactly one of ``base_checkpoint`` / ``tiny_model`` and one of ``max_steps`` / ``epochs``.

    ``base_checkpoint``: a FrontierVLM folder; its compressor is kept when method and V match,
    otherwise a fresh one is initialised. ``compressor_from``: a FrontierVLM folder whose compressor
    (same method and V, same widths) initialises this one, e.g. stage 2 after a stage-1 run.
    ``dataset``: ``"synthetic:shapes"`` / ``"synthetic:glyphs"`` (train split) or a LLaVA-format JSON
    file with images under ``image_folder``. ``batch_size`` is per micro-batch; one step consumes
    ``batch_size * gradient_accumulation`` examples. ``save_every`` = 0 saves only when stopping.
    """

    compressor: str = "avgpool"
    tokens: int = 16
    stage: int = 1
    base_checkpoint: str | None = None
    tiny_model: TinyModelSpec | None = None
    compressor_from: str | None = None
    dataset: str = "synthetic:shapes"
    image_folder: str | None = None
    synthetic_count: int | None = None  # None: the whole train split
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 16
    gradient_accumulation: int = 1
    max_steps: int | None = None
    epochs: float | None = None
    warmup_steps: int = 0
    lr_schedule: str = "cosine"
    seed: int = 0
    precision: str = "auto"
    save_every: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        values = dict(values)
        if isinstance(values.get("tiny_model"), dict):
            values["tiny_model"] = TinyModelSpec(**values["tiny_model"])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "TrainingConfig":
        return cls.from_dict(json.loads(text))

    def examples_per_step(self) -> int:
        return self.batch_size * self.gradient_accumulation

    def total_steps(self, dataset_size: int) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return math.ceil(self.epochs * dataset_size / self.examples_per_step())


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
    compute_seconds: float  # forward, backward, optimizer step (and filling the encoder feature cache)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _frontier_config(path: str, role: str, problems: list[str]) -> FrontierVLMConfig | None:
    """The FrontierVLM config of a checkpoint folder, or None after recording why it is unusable."""
    try:
        model_type = checkpoint_model_type(path)
    except FileNotFoundError as error:
        problems.append(f"{role}: {error}")
        return None
    if model_type != FrontierVLMConfig.model_type:
        problems.append(f"{role} {path} is a {model_type!r} checkpoint; training needs a frontier_vlm checkpoint")
        return None
    try:
        return AutoConfig.from_pretrained(path)
    except ValueError as error:
        problems.append(f"{role} {path}: {error}")
        return None


def _base_widths(config: TrainingConfig, problems: list[str]) -> tuple[int, int, int, int] | None:
    """(vision width, multi-level width, LLM width, patch grid side) of the model training starts from."""
    if config.tiny_model is not None:
        vision = TINY_VISION["hidden_size"]
        return vision, vision * 4, config.tiny_model.llm_hidden, TINY_IMAGE_SIZE // TINY_PATCH_SIZE
    base = _frontier_config(config.base_checkpoint, "base_checkpoint", problems)
    if base is None:
        return None
    vision = base.vision_config.hidden_size
    return vision, vision * len(base.multi_level_layers), base.text_config.hidden_size, base.patch_grid_side


def _check_compressor_source(config: TrainingConfig, widths: tuple[int, int, int, int], problems: list[str]) -> None:
    source = _frontier_config(config.compressor_from, "compressor_from", problems)
    if source is None:
        return
    if (source.compressor_method, source.visual_tokens) != (config.compressor, config.tokens):
        problems.append(
            f"compressor_from {config.compressor_from} holds a {source.compressor_method} V={source.visual_tokens} "
            f"compressor, the config trains {config.compressor} V={config.tokens}"
        )
    vision, multi_level, llm, _ = widths
    source_vision = source.vision_config.hidden_size
    source_multi_level = source_vision * len(source.multi_level_layers)
    if (source_vision, source_multi_level) != (vision, multi_level):
        problems.append(
            f"encoder width mismatch: the compressor of {config.compressor_from} reads vision features of width "
            f"{source_vision} (multi-level {source_multi_level}), the vision encoder gives {vision} (multi-level {multi_level})"
        )
    if source.text_config.hidden_size != llm:
        problems.append(
            f"LLM width mismatch: the compressor of {config.compressor_from} outputs width "
            f"{source.text_config.hidden_size}, the LLM has hidden size {llm}"
        )


def _check_numbers(config: TrainingConfig, problems: list[str]) -> None:
    positive = {
        "batch_size": config.batch_size,
        "gradient_accumulation": config.gradient_accumulation,
        "learning_rate": config.learning_rate,
        "max_grad_norm": config.max_grad_norm,
    }
    problems += [f"{name} must be > 0, got {value}" for name, value in positive.items() if not value > 0]
    if (config.max_steps is None) == (config.epochs is None):
        problems.append("give exactly one of max_steps and epochs")
    elif config.max_steps is not None and config.max_steps <= 0:
        problems.append(f"max_steps must be > 0, got {config.max_steps}")
    elif config.epochs is not None and not config.epochs > 0:
        problems.append(f"epochs must be > 0, got {config.epochs}")
    for name in ("warmup_steps", "save_every", "weight_decay"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must be >= 0, got {getattr(config, name)}")
    if config.synthetic_count is not None and config.synthetic_count <= 0:
        problems.append(f"synthetic_count must be > 0, got {config.synthetic_count}")
    if config.stage not in (1, 2):
        problems.append(f"stage must be 1 (compressor only) or 2 (compressor + LLM), got {config.stage}")
    if config.lr_schedule not in LR_SCHEDULES:
        problems.append(f"unknown lr_schedule {config.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if config.precision not in PRECISIONS:
        problems.append(f"unknown precision {config.precision!r}; choose one of {', '.join(PRECISIONS)}")


def _check_model(config: TrainingConfig, problems: list[str]) -> None:
    if (config.base_checkpoint is None) == (config.tiny_model is None):
        problems.append("give exactly one of base_checkpoint and tiny_model")
        return
    if config.tiny_model is not None and config.tiny_model.llm_family not in LLM_FAMILIES:
        problems.append(f"unknown tiny_model.llm_family {config.tiny_model.llm_family!r}; choose one of {LLM_FAMILIES}")
    widths = _base_widths(config, problems)
    if widths is None:
        return
    try:
        check_tokens(config.compressor, config.tokens, widths[3])
    except ValueError as error:  # unknown method or unsupported V, with the allowed values
        problems.append(str(error))
        return
    if config.compressor_from is not None:
        _check_compressor_source(config, widths, problems)


def _check_dataset(config: TrainingConfig, problems: list[str]) -> list[TrainingExample] | None:
    try:
        return load_examples(config)
    except TrainingDataError as error:
        problems.append(str(error))
        return None


def validate_config(config: TrainingConfig, device: torch.device | None = None) -> list[TrainingExample]:
    """Check everything before training; returns the dataset's examples, raises ``TrainingConfigError``."""
    problems: list[str] = []
    _check_numbers(config, problems)
    _check_model(config, problems)
    examples = _check_dataset(config, problems)
    if (
        config.precision == "bf16"
        and device is not None
        and not (device.type == "cuda" and torch.cuda.is_bf16_supported())
    ):
        problems.append(f"precision bf16 needs a CUDA device with bfloat16 support, got {device}; use fp32 or auto")
    if problems:
        raise TrainingConfigError(problems)
    return examples


def load_examples(config: TrainingConfig) -> list[TrainingExample]:
    task = synthetic_task(config.dataset)
    if task is not None:
        return synthetic_training_examples(task, seed=config.seed, count=config.synthetic_count)
    if not config.dataset.endswith(".json"):
        raise TrainingDataError(
            f"dataset must be synthetic:<task> ({', '.join(SYNTHETIC_TASKS)}) or a LLaVA-format .json file, "
            f"got {config.dataset!r}"
        )
    if config.image_folder is None or not Path(config.image_folder).is_dir():
        raise TrainingDataError(f"dataset {config.dataset} needs an existing image_folder, got {config.image_folder!r}")
    return load_llava_dataset(config.dataset, config.image_folder)


def build_model(config: TrainingConfig):
    """(model, tokenizer, image processor) to train, in fp32; call after ``validate_config``."""
    if config.tiny_model is not None:
        spec = config.tiny_model
        model, tokenizer = build_tiny_vlm(
            config.compressor, config.tokens, spec.llm_hidden, spec.llm_layers, spec.llm_family, spec.seed
        )
        image_processor = tiny_image_processor()
    else:
        model = _model_from_base(config)
        tokenizer = AutoTokenizer.from_pretrained(config.base_checkpoint)
        image_processor = load_image_processor(Path(config.base_checkpoint), model.config.vision_config.image_size)
    if config.compressor_from is not None:
        source = FrontierVLM.from_pretrained(config.compressor_from, use_safetensors=True, dtype=torch.float32)
        model.compressor.load_state_dict(source.compressor.state_dict())
    model.vision_tower.requires_grad_(False)
    model.compressor.requires_grad_(True)
    model.language_model.requires_grad_(config.stage == 2)
    return model, tokenizer, image_processor


def _model_from_base(config: TrainingConfig) -> FrontierVLM:
    base = FrontierVLM.from_pretrained(config.base_checkpoint, use_safetensors=True, dtype=torch.float32)
    if (base.config.compressor_method, base.visual_tokens) == (config.compressor, config.tokens):
        return base
    settings = base.config.to_dict()
    settings.update(compressor_method=config.compressor, visual_tokens=config.tokens, compressor_params={})
    torch.manual_seed(config.seed)  # the fresh compressor's initialisation
    model = FrontierVLM(FrontierVLMConfig.from_dict(settings))
    model.vision_tower.load_state_dict(base.vision_tower.state_dict())
    model.language_model.load_state_dict(base.language_model.state_dict())
    return model


class DataCursor:
    """Position in the example stream: epoch e visits a permutation seeded by (seed, e); batches wrap epochs."""

    def __init__(self, size: int, seed: int, epoch: int = 0, index: int = 0):
        self.size, self.seed, self.epoch, self.index = size, seed, epoch, index
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist()

    def next_indices(self, count: int) -> list[int]:
        indices = []
        while len(indices) < count:
            if self.index == self.size:
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._permutation()
            taken = self._order[self.index : self.index + count - len(indices)]
            indices += taken
            self.index += len(taken)
        return indices


def loss_from_features(model: FrontierVLM, batch: dict[str, torch.Tensor], features: VisionFeatures) -> torch.Tensor:
    """``model(**batch).loss`` with the frozen encoder's output given (cached) instead of computed from pixels."""
    query_embeds = None
    if model.compressor.uses_query:
        query_embeds = model.query_embedding(batch["query_input_ids"], batch["query_attention_mask"])
    visual = model.compressor.compress(
        features.patch_feats.to(model.dtype),
        features.multi_level_feats.to(model.dtype),
        query_embeds,
        cls_attention=features.cls_attention,
        patch_keys=features.patch_keys,
    )
    embeds = model.embed_inputs(batch["input_ids"])  # text embeddings; the image placeholders are filled here
    image_mask = batch["input_ids"] == model.config.image_token_id
    embeds = embeds.masked_scatter(image_mask[..., None], visual.to(embeds.dtype))
    return model.language_model(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"], use_cache=False
    ).loss


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
    ):
        self.config = config
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
        model, tokenizer, image_processor = build_model(config)
        model.to(self.device)
        torch.manual_seed(config.seed)  # training randomness does not depend on how the model was built
        trainable = {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
        optimizer = torch.optim.AdamW(trainable.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = get_scheduler(
            config.lr_schedule, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=self.total_steps
        )
        collate = Collator(
            tokenizer, image_processor, model.config.image_token_id, model.visual_tokens, model.compressor.uses_query
        )
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
            features, data_seconds, compute_seconds = self._encode_examples(model, collate)
        else:
            features = None
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
            loss = self._step(model, trainable, optimizer, scheduler, batches)
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
        )

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        )

    def _encode_examples(self, model, collate) -> tuple[dict[str, torch.Tensor] | None, float, float]:
        """(every example's encoder features on the CPU, or None when they would not fit
        ``FEATURE_CACHE_MAX_BYTES``; preprocessing seconds; encoding seconds)."""
        chunks: list[dict[str, torch.Tensor]] = []
        data_seconds = compute_seconds = 0.0
        for start in range(0, len(self.examples), ENCODE_CHUNK):
            tick = time.perf_counter()
            pixel_values = collate.pixel_values(self.examples[start : start + ENCODE_CHUNK]).to(self.device)
            tock = time.perf_counter()
            with self._autocast():
                encoded = model.encode_images(pixel_values)
            chunk = {
                field.name: getattr(encoded, field.name).cpu()
                for field in dataclasses.fields(encoded)
                if getattr(encoded, field.name) is not None
            }
            data_seconds += tock - tick
            compute_seconds += time.perf_counter() - tock
            if not chunks:
                example_bytes = sum(tensor[0].nbytes for tensor in chunk.values())
                if example_bytes * len(self.examples) > FEATURE_CACHE_MAX_BYTES:
                    return None, data_seconds, compute_seconds
            chunks.append(chunk)
        features = {name: torch.cat([chunk[name] for chunk in chunks]) for name in chunks[0]}
        return features, data_seconds, compute_seconds

    def _step(self, model, trainable, optimizer, scheduler, batches) -> float:
        """One optimizer step over the micro-batches; returns their mean loss."""
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
