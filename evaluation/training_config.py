"""Training configs and every check of them that needs no tensors: importable without torch.

``config_problems(config)`` lists each reason a ``TrainingConfig`` cannot run: numbers and choices,
the starting model (a tiny-model spec or a FrontierVLM checkpoint's ``config.json``), the
compressor's method and V on that model's patch grid, a compressor source's method, V and widths,
and the dataset (a known synthetic task, or a LLaVA-format file whose records parse and whose images
all exist). ``evaluation.training.validate_config`` runs them before training and adds the device
check; the web side runs them in its own process to refuse a request before anything is queued.
"""

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .synthetic import SYNTHETIC_TASKS
from .training_data import (
    TrainingDataError,
    TrainingExample,
    check_synthetic_task,
    load_llava_dataset,
    synthetic_task,
    synthetic_training_examples,
)
from .validation import CONFIG_FILE, CheckpointValidation
from .vlm_spec import (
    LLM_FAMILIES,
    MULTI_LEVEL_LAYERS_VIT_L,
    TINY_IMAGE_SIZE,
    TINY_MULTI_LEVEL_LAYERS,
    TINY_PATCH_SIZE,
    TINY_VISION,
    check_tokens,
)

LR_SCHEDULES = ("cosine", "linear")
PRECISIONS = ("auto", "fp32", "bf16")
FRONTIER_MODEL_TYPE = "frontier_vlm"


class TrainingConfigError(ValueError):
    """The training config cannot run; ``problems`` lists every reason, the message joins them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid training config: " + "; ".join(problems))


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
    ``dataset``: ``"synthetic:<task>"`` (the train split of shapes, glyphs or spots) or a LLaVA-format
    JSON file with images under ``image_folder``. ``batch_size`` is per micro-batch; one step consumes
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


class ModelWidths(NamedTuple):
    vision: int  # vision encoder width
    multi_level: int  # width of the concatenated multi-level features
    llm: int  # LLM hidden size
    grid_side: int  # patch grid side g (g x g patches)


class CompressorSource(NamedTuple):
    method: str
    tokens: int
    widths: ModelWidths


def _checkpoint_source(
    path: str, role: str, checkpoint_configs: Mapping[str, dict], problems: list[str]
) -> CompressorSource | None:
    """What a FrontierVLM checkpoint's config.json says, or None after recording why it is unusable.
    The config is read as JSON and checked as an upload's is (``evaluation.validation``)."""
    config = checkpoint_configs.get(path)
    if config is None:
        config_file = Path(path) / CONFIG_FILE
        if not config_file.is_file():
            problems.append(f"{role}: no {CONFIG_FILE} in checkpoint folder {path}")
            return None
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as error:
            problems.append(f"{role} {path}: cannot read {CONFIG_FILE}: {error}")
            return None
    model_type = config.get("model_type", "") if isinstance(config, dict) else ""
    if model_type != FRONTIER_MODEL_TYPE:
        problems.append(f"{role} {path} is a {model_type!r} checkpoint; training needs a frontier_vlm checkpoint")
        return None
    check = CheckpointValidation(Path(path))
    spec = check.model_spec(config, {})
    if spec is None:
        problems.extend(f"{role} {path}: {problem}" for problem in check.problems)
        return None
    vision = spec.vision["hidden_size"]
    levels = len(config.get("multi_level_layers") or MULTI_LEVEL_LAYERS_VIT_L)
    grid_side = spec.vision["image_size"] // spec.vision["patch_size"]
    widths = ModelWidths(vision, vision * levels, spec.text["hidden_size"], grid_side)
    return CompressorSource(spec.compressor_method, spec.visual_tokens, widths)


def _base_widths(
    config: TrainingConfig, checkpoint_configs: Mapping[str, dict], problems: list[str]
) -> ModelWidths | None:
    """The widths and patch grid of the model training starts from."""
    if config.tiny_model is not None:
        vision = TINY_VISION["hidden_size"]
        return ModelWidths(
            vision, vision * len(TINY_MULTI_LEVEL_LAYERS), config.tiny_model.llm_hidden, TINY_IMAGE_SIZE // TINY_PATCH_SIZE
        )
    base = _checkpoint_source(config.base_checkpoint, "base_checkpoint", checkpoint_configs, problems)
    return None if base is None else base.widths


def _check_compressor_source(
    config: TrainingConfig, widths: ModelWidths, checkpoint_configs: Mapping[str, dict], problems: list[str]
) -> None:
    source = _checkpoint_source(config.compressor_from, "compressor_from", checkpoint_configs, problems)
    if source is None:
        return
    if (source.method, source.tokens) != (config.compressor, config.tokens):
        problems.append(
            f"compressor_from {config.compressor_from} holds a {source.method} V={source.tokens} "
            f"compressor, the config trains {config.compressor} V={config.tokens}"
        )
    if (source.widths.vision, source.widths.multi_level) != (widths.vision, widths.multi_level):
        problems.append(
            f"encoder width mismatch: the compressor of {config.compressor_from} reads vision features of width "
            f"{source.widths.vision} (multi-level {source.widths.multi_level}), the vision encoder gives "
            f"{widths.vision} (multi-level {widths.multi_level})"
        )
    if source.widths.llm != widths.llm:
        problems.append(
            f"LLM width mismatch: the compressor of {config.compressor_from} outputs width "
            f"{source.widths.llm}, the LLM has hidden size {widths.llm}"
        )


# Upper bounds, checked before any work: far above any real recipe, far below what stalls or breaks a worker
# (a batch of 10**9, 10**30 steps, a learning rate of 1e308 or a 2**70 seed once queued and then failed late).
UPPER_BOUNDS = {
    "batch_size": 4096, "gradient_accumulation": 1024, "max_steps": 10_000_000, "epochs": 10_000.0,
    "warmup_steps": 10_000_000, "save_every": 10_000_000, "synthetic_count": 10_000_000,
    "learning_rate": 1.0, "max_grad_norm": 1e6, "weight_decay": 10.0,
}
SEED_BOUND = 2**32  # numpy's and the data order's seed range
# A tiny model is for demos and tests: about 12·L·d² parameters; past this, train from a base checkpoint.
TINY_MAX_PARAMS = 200_000_000


def _check_bounds(config: TrainingConfig, problems: list[str]) -> None:
    for name, bound in UPPER_BOUNDS.items():
        value = getattr(config, name)
        if value is not None and (value != value or value > bound):  # NaN, or past the bound (inf, 10**30)
            problems.append(f"{name} must be at most {bound:g}, got {value}")
    seeds = {"seed": config.seed, **({"tiny_model.seed": config.tiny_model.seed} if config.tiny_model else {})}
    problems += [f"{name} must be between 0 and {SEED_BOUND - 1}, got {value}"
                 for name, value in seeds.items() if not 0 <= value < SEED_BOUND]
    if config.tiny_model is not None:
        spec = config.tiny_model
        estimate = 12 * spec.llm_layers * spec.llm_hidden**2
        if estimate > TINY_MAX_PARAMS:
            problems.append(
                f"a tiny model of {spec.llm_layers} layers x {spec.llm_hidden} wide has about {estimate / 1e9:.1f} B "
                f"parameters; tiny models are for demos and tests (at most {TINY_MAX_PARAMS / 1e6:.0f} M): "
                "train from a base checkpoint instead"
            )


def _check_numbers(config: TrainingConfig, problems: list[str]) -> None:
    _check_bounds(config, problems)
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


def _check_model(config: TrainingConfig, checkpoint_configs: Mapping[str, dict], problems: list[str]) -> None:
    if (config.base_checkpoint is None) == (config.tiny_model is None):
        problems.append("give exactly one of base_checkpoint and tiny_model")
        return
    if config.tiny_model is not None and config.tiny_model.llm_family not in LLM_FAMILIES:
        problems.append(f"unknown tiny_model.llm_family {config.tiny_model.llm_family!r}; choose one of {LLM_FAMILIES}")
    widths = _base_widths(config, checkpoint_configs, problems)
    if widths is None:
        return
    try:
        check_tokens(config.compressor, config.tokens, widths.grid_side)
    except ValueError as error:  # unknown method or unsupported V, with the allowed values
        problems.append(str(error))
        return
    if config.compressor_from is not None:
        _check_compressor_source(config, widths, checkpoint_configs, problems)


def _llava_examples(config: TrainingConfig) -> list[TrainingExample]:
    if not config.dataset.endswith(".json"):
        raise TrainingDataError(
            f"dataset must be synthetic:<task> ({', '.join(SYNTHETIC_TASKS)}) or a LLaVA-format .json file, "
            f"got {config.dataset!r}"
        )
    if config.image_folder is None or not Path(config.image_folder).is_dir():
        raise TrainingDataError(f"dataset {config.dataset} needs an existing image_folder, got {config.image_folder!r}")
    return load_llava_dataset(config.dataset, config.image_folder)


def _check_dataset(config: TrainingConfig, problems: list[str]) -> None:
    """A dataset file is read whole (records, every image); synthetic examples are generated when
    training starts, so only their task is checked here."""
    task = synthetic_task(config.dataset)
    try:
        if task is None:
            _llava_examples(config)
        else:
            check_synthetic_task(task)
    except TrainingDataError as error:
        problems.append(str(error))


def load_examples(config: TrainingConfig) -> list[TrainingExample]:
    """The dataset's examples; raises ``TrainingDataError``."""
    task = synthetic_task(config.dataset)
    if task is not None:
        return synthetic_training_examples(task, seed=config.seed, count=config.synthetic_count)
    return _llava_examples(config)


def config_problems(config: TrainingConfig, checkpoint_configs: Mapping[str, dict] | None = None) -> list[str]:
    """Every problem of `config` (empty: it can run on a device that supports its precision).

    ``checkpoint_configs`` holds the config.json of checkpoints that are not local folders, under the
    name ``base_checkpoint`` / ``compressor_from`` give them (the web side's registry rows); the
    problems name them that way.
    """
    checkpoint_configs = checkpoint_configs or {}
    problems: list[str] = []
    _check_numbers(config, problems)
    _check_model(config, checkpoint_configs, problems)
    _check_dataset(config, problems)
    return problems
