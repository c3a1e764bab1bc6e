"""Offline synthetic benchmarks, generated deterministically from a seed and exposed as lmms-eval tasks.

``shapes`` (visual reasoning on 96 x 96 PIL drawings) asks four question kinds in equal shares:
colour of the only shape of a kind (6 colours), count of a shape kind (1-4), relative position of two
shapes (left/right or above/below) and POPE-style existence (yes/no, exactly half yes).
``glyphs`` (OCR-like) asks to read a rendered string of 3-4 characters.
``spots`` (fine detail) asks the colour (10 colours) of the one square on the image, whose side is
log-uniform from 2 to 24 px: a large square survives any pooling, a small one only many visual tokens,
and naming ten colours from a faint signal takes LLM capacity, so both N and V lower its error (the
demo's sweep trains on it: see ``webapp.stack.demo``).

Every item stores its ``chance``: the accuracy of a uniform guess among the valid answers
(1/6 colour, 1/4 count, 1/2 position and existence, alphabet^-length for glyphs, 1/10 spots). A task's
chance level is the mean over its test items (``chance_level``): about 0.354 for ``shapes``, ~0 for
``glyphs``, 0.1 for ``spots``. Scoring is exact match after ``normalize_answer`` (lowercase, punctuation stripped,
number words to digits); the metric ``exact_match`` is an accuracy in [0, 1], higher is better.

``write_synthetic_suite(dir)`` writes train/test parquet files (``datasets.Dataset.to_parquet``
keeps the Image feature), one YAML per task with absolute paths, and a helper module the YAMLs'
``!function`` tags point to; load it with ``TaskManager(include_path=dir, include_defaults=False)``.
``synthetic_examples(task, "train")`` gives the same items to Python training code.
"""

import json
import math
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image, ImageDraw, ImageFont

from . import offline  # noqa: F401  (before datasets is imported)

SUITE_VERSION = 1
SYNTHETIC_TASKS = ("shapes", "glyphs", "spots")
DEFAULT_TEST_SIZE = 500
DEFAULT_TRAIN_SIZE = 2000
IMAGE_SIZE = 96
METRIC = "exact_match"

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 180),
    "orange": (245, 130, 20),
}
SPOT_COLOURS = {**COLOURS, "pink": (240, 120, 180), "brown": (130, 80, 40), "black": (20, 20, 20),
                "gray": (128, 128, 128)}
SPOT_SIDES = (2, 24)  # px, log-uniform: 2 px is half a patch of the 4-px patch grid, 24 px a V=16 region
SHAPE_KINDS = ("circle", "square", "triangle")
SHAPE_QUESTION_KINDS = ("colour", "count", "position", "existence")
MAX_COUNT = 4
GRID_SIDE = 3  # shapes sit in the cells of a 3 x 3 grid, so they never overlap
GLYPH_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ2345679"  # no look-alikes (0/O, 1/I/L, 8/B)
GLYPH_LENGTHS = (3, 4)
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    )
}
HELPER_MODULE = "frontier_synthetic"


@dataclass(frozen=True)
class SyntheticExample:
    image: Image.Image
    prompt: str
    answer: str
    category: str  # question kind (shapes), "read" (glyphs), the square's size class (spots)
    options: tuple[str, ...]  # every valid answer when they can be listed, else empty
    chance: float  # accuracy of a uniform guess among the valid answers


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, collapse spaces, number words to digits ("Two." -> "2")."""
    words = text.lower().translate(str.maketrans("", "", string.punctuation)).split()
    return " ".join(NUMBER_WORDS.get(word, word) for word in words)


def _split_rng(task: str, split: str, seed: int) -> random.Random:
    return random.Random(f"frontier-synthetic-v{SUITE_VERSION}-{task}-{split}-{seed}")


def _background(rng: random.Random) -> Image.Image:
    grey = rng.randint(235, 255)
    return Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (grey, grey, grey))


def _draw_shape(draw: ImageDraw.ImageDraw, rng: random.Random, cell: int, kind: str, colour: str) -> None:
    cell_size = IMAGE_SIZE // GRID_SIDE
    size = rng.randint(16, 24)
    left = (cell % GRID_SIDE) * cell_size + rng.randint(2, cell_size - size - 2)
    top = (cell // GRID_SIDE) * cell_size + rng.randint(2, cell_size - size - 2)
    box = (left, top, left + size, top + size)
    fill = COLOURS[colour]
    if kind == "circle":
        draw.ellipse(box, fill=fill)
    elif kind == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(left + size / 2, top), (left, top + size), (left + size, top + size)], fill=fill)


def _render_shapes(rng: random.Random, objects: list[tuple[int, str, str]]) -> Image.Image:
    """``objects`` are (grid cell, kind, colour)."""
    image = _background(rng)
    draw = ImageDraw.Draw(image)
    for cell, kind, colour in objects:
        _draw_shape(draw, rng, cell, kind, colour)
    return image


def _distractors(rng: random.Random, free_cells: list[int], count: int, allowed) -> list[tuple[int, str, str]]:
    """Up to ``count`` extra objects in free cells, each (kind, colour) drawn from ``allowed`` pairs."""
    allowed = list(allowed)
    return [(cell, *rng.choice(allowed)) for cell in free_cells[:count]] if allowed else []


def _all_pairs():
    return [(kind, colour) for kind in SHAPE_KINDS for colour in COLOURS]


def _colour_question(rng: random.Random, index: int) -> SyntheticExample:
    kind, colour = rng.choice(SHAPE_KINDS), rng.choice(list(COLOURS))
    cells = rng.sample(range(GRID_SIDE**2), GRID_SIDE**2)
    others = [(k, c) for k, c in _all_pairs() if k != kind]
    objects = [(cells[0], kind, colour), *_distractors(rng, cells[1:], rng.randint(0, 3), others)]
    return SyntheticExample(
        _render_shapes(rng, objects),
        f"What color is the {kind}? Answer with one word.",
        colour,
        "colour",
        tuple(COLOURS),
        1 / len(COLOURS),
    )


def _count_question(rng: random.Random, index: int) -> SyntheticExample:
    kind = rng.choice(SHAPE_KINDS)
    count = 1 + (index // len(SHAPE_QUESTION_KINDS)) % MAX_COUNT  # counts cycle, so answers are balanced
    cells = rng.sample(range(GRID_SIDE**2), GRID_SIDE**2)
    objects = [(cell, kind, rng.choice(list(COLOURS))) for cell in cells[:count]]
    others = [(k, c) for k, c in _all_pairs() if k != kind]
    objects += _distractors(rng, cells[count:], rng.randint(0, 2), others)
    return SyntheticExample(
        _render_shapes(rng, objects),
        f"How many {kind}s are there? Answer with a number.",
        str(count),
        "count",
        tuple(str(value) for value in range(1, MAX_COUNT + 1)),
        1 / MAX_COUNT,
    )


def _position_question(rng: random.Random, index: int) -> SyntheticExample:
    first, second = rng.sample(_all_pairs(), 2)
    horizontal = rng.random() < 0.5
    while True:
        first_cell, second_cell = rng.sample(range(GRID_SIDE**2), 2)
        axis = (lambda cell: cell % GRID_SIDE) if horizontal else (lambda cell: cell // GRID_SIDE)
        if axis(first_cell) != axis(second_cell):
            break
    before = axis(first_cell) < axis(second_cell)
    options = ("left", "right") if horizontal else ("above", "below")
    answer = options[0] if before else options[1]
    free = [cell for cell in rng.sample(range(GRID_SIDE**2), GRID_SIDE**2) if cell not in (first_cell, second_cell)]
    others = [pair for pair in _all_pairs() if pair not in (first, second)]
    objects = [(first_cell, *first), (second_cell, *second), *_distractors(rng, free, rng.randint(0, 2), others)]
    relation = "left or right of" if horizontal else "above or below"
    return SyntheticExample(
        _render_shapes(rng, objects),
        f"Is the {first[1]} {first[0]} {relation} the {second[1]} {second[0]}? Answer with one word.",
        answer,
        "position",
        options,
        1 / 2,
    )


def _existence_question(rng: random.Random, index: int) -> SyntheticExample:
    """POPE-style: absent objects share a colour or a kind with what is drawn (hard negatives)."""
    kind, colour = rng.choice(_all_pairs())
    present = (index // len(SHAPE_QUESTION_KINDS)) % 2 == 0  # exactly half the answers are yes
    cells = rng.sample(range(GRID_SIDE**2), GRID_SIDE**2)
    near_misses = [(k, c) for k, c in _all_pairs() if (k == kind) != (c == colour)]
    objects = _distractors(rng, cells[1:], rng.randint(1, 3), near_misses)
    if present:
        objects.append((cells[0], kind, colour))
    return SyntheticExample(
        _render_shapes(rng, objects),
        f"Is there a {colour} {kind} in the image? Answer yes or no.",
        "yes" if present else "no",
        "existence",
        ("yes", "no"),
        1 / 2,
    )


SHAPE_QUESTIONS: dict[str, Callable[[random.Random, int], SyntheticExample]] = {
    "colour": _colour_question,
    "count": _count_question,
    "position": _position_question,
    "existence": _existence_question,
}


def _shapes_example(rng: random.Random, index: int) -> SyntheticExample:
    return SHAPE_QUESTIONS[SHAPE_QUESTION_KINDS[index % len(SHAPE_QUESTION_KINDS)]](rng, index)


def _glyph_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _glyphs_example(rng: random.Random, index: int) -> SyntheticExample:
    length = rng.choice(GLYPH_LENGTHS)
    text = "".join(rng.choice(GLYPH_ALPHABET) for _ in range(length))
    image = _background(rng)
    draw = ImageDraw.Draw(image)
    font = _glyph_font(rng.randint(20, 26))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = rng.randint(0, max(0, IMAGE_SIZE - (right - left))) - left
    y = rng.randint(0, max(0, IMAGE_SIZE - (bottom - top))) - top
    ink = rng.randint(0, 80)
    draw.text((x, y), text, fill=(ink, ink, ink), font=font)
    return SyntheticExample(
        image,
        "What text is written in the image? Answer with the text only.",
        text.lower(),
        "read",
        (),
        len(GLYPH_ALPHABET) ** -length,
    )


def _spot_size_class(side: int) -> str:
    """small: under one 4-px patch; medium: under one V=64 region (12 px); large: the rest."""
    return "small" if side < 4 else "medium" if side < 12 else "large"


def _spots_example(rng: random.Random, index: int) -> SyntheticExample:
    """One square of a colour that cycles with the index (balanced answers), anywhere on the image."""
    colour = list(SPOT_COLOURS)[index % len(SPOT_COLOURS)]
    low, high = SPOT_SIDES
    side = round(math.exp(rng.uniform(math.log(low), math.log(high))))
    left, top = rng.randint(0, IMAGE_SIZE - side), rng.randint(0, IMAGE_SIZE - side)
    image = _background(rng)
    ImageDraw.Draw(image).rectangle((left, top, left + side - 1, top + side - 1), fill=SPOT_COLOURS[colour])
    return SyntheticExample(
        image,
        "What color is the square? Answer with one word.",
        colour,
        _spot_size_class(side),
        tuple(SPOT_COLOURS),
        1 / len(SPOT_COLOURS),
    )


GENERATORS = {"shapes": _shapes_example, "glyphs": _glyphs_example, "spots": _spots_example}


def synthetic_examples(
    task: str, split: str = "train", seed: int = 0, count: int | None = None
) -> list[SyntheticExample]:
    """The items of a synthetic task split, identical to those written by ``write_synthetic_suite``."""
    if task not in GENERATORS:
        raise ValueError(f"unknown synthetic task {task!r}; choose one of {', '.join(SYNTHETIC_TASKS)}")
    if count is None:
        count = {"train": DEFAULT_TRAIN_SIZE, "test": DEFAULT_TEST_SIZE}.get(split)
        if count is None:
            raise ValueError(f"split must be 'train' or 'test' when count is not given, got {split!r}")
    rng = _split_rng(task, split, seed)
    return [GENERATORS[task](rng, index) for index in range(count)]


def chance_level(task: str, seed: int = 0, test_size: int = DEFAULT_TEST_SIZE) -> float:
    """Expected exact-match accuracy of uniform guessing among valid answers, over the test split."""
    examples = synthetic_examples(task, "test", seed, test_size)
    return sum(example.chance for example in examples) / len(examples)


# --- lmms-eval task functions (the generated helper module re-exports these) ---


def doc_to_visual(doc: dict) -> list[Image.Image]:
    return [doc["image"].convert("RGB")]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    return doc["prompt"]


def process_results(doc: dict, results: list[str]) -> dict:
    prediction = results[0].strip().splitlines()[0] if results and results[0].strip() else ""
    return {METRIC: float(normalize_answer(prediction) == normalize_answer(doc["answer"]))}


# --- writing the suite ---


def _examples_dataset(examples: list[SyntheticExample]):
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("int32"),
            "image": datasets.Image(),
            "prompt": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
            "options": datasets.Sequence(datasets.Value("string")),
            "chance": datasets.Value("float64"),
        }
    )
    columns = {
        "id": list(range(len(examples))),
        "image": [example.image for example in examples],
        "prompt": [example.prompt for example in examples],
        "answer": [example.answer for example in examples],
        "category": [example.category for example in examples],
        "options": [list(example.options) for example in examples],
        "chance": [example.chance for example in examples],
    }
    return datasets.Dataset.from_dict(columns, features=features)


def task_config(task: str, data_files: dict[str, str], cache_dir: str) -> dict:
    """The lmms-eval YAML config of a synthetic task (``!function`` entries are added as tags)."""
    return {
        "task": task,
        "dataset_path": "parquet",
        "dataset_kwargs": {"data_files": data_files, "cache_dir": cache_dir},
        "training_split": "train",
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_target": "answer",
        "generation_kwargs": {"max_new_tokens": 8, "until": ["\n"], "do_sample": False},
        "metric_list": [{"metric": METRIC, "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": float(SUITE_VERSION)},
    }


HELPER_SOURCE = (
    '"""Generated by evaluation.synthetic: the functions the synthetic task YAMLs name."""\n\n'
    "from evaluation.synthetic import doc_to_text, doc_to_visual, process_results  # noqa: F401\n"
)


def task_yaml_text(task: str, directory: str | Path) -> str:
    """The YAML file of a synthetic task in the suite folder ``directory`` (its data and cache there)."""
    data_files = {split: str(Path(directory) / "data" / f"{task}-{split}.parquet") for split in ("train", "test")}
    config = task_config(task, data_files, str(Path(directory) / "hf_cache"))
    functions = {
        name: f"!function {HELPER_MODULE}.{name}" for name in ("doc_to_visual", "doc_to_text", "process_results")
    }
    return yaml.safe_dump(config, sort_keys=False) + "".join(f"{key}: {value}\n" for key, value in functions.items())


def write_synthetic_suite(
    directory: str | Path, seed: int = 0, test_size: int = DEFAULT_TEST_SIZE, train_size: int = DEFAULT_TRAIN_SIZE
) -> Path:
    """Write (or reuse, when its manifest matches) the synthetic suite as an lmms-eval include folder."""
    directory = Path(directory).resolve()
    manifest = {
        "suite_version": SUITE_VERSION,
        "tasks": list(SYNTHETIC_TASKS),
        "seed": seed,
        "test_size": test_size,
        "train_size": train_size,
    }
    manifest_file = directory / "manifest.json"
    if manifest_file.is_file() and json.loads(manifest_file.read_text()) == manifest:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{HELPER_MODULE}.py").write_text(HELPER_SOURCE)
    for task in SYNTHETIC_TASKS:
        for split, size in (("train", train_size), ("test", test_size)):
            parquet = directory / "data" / f"{task}-{split}.parquet"
            parquet.parent.mkdir(exist_ok=True)
            _examples_dataset(synthetic_examples(task, split, seed, size)).to_parquet(str(parquet))
        (directory / f"{task}.yaml").write_text(task_yaml_text(task, directory))
    manifest_file.write_text(json.dumps(manifest))
    return directory


def suite_manifest(directory: str | Path) -> dict:
    return json.loads((Path(directory) / "manifest.json").read_text())
