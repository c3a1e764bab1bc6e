"""Training examples for compressor training: LLaVA-format conversations or the synthetic train split.

A LLaVA-format dataset is a JSON list of records::

    {"id": "0001", "image": "relative/path.png",
     "conversations": [{"from": "human", "value": "<image>\\nQuestion"}, {"from": "gpt", "value": "Answer"}]}

with image paths relative to an image folder. Conversations alternate human / gpt turns; the
``<image>`` marker appears once, in the first human turn (it is prepended when missing, as
``VLMRunner`` does at inference). ``evaluation.training.Collator`` turns examples into batches.

No torch here: the web side checks a dataset (records well-formed, every image present) in-process.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .synthetic import SYNTHETIC_TASKS, synthetic_examples
from .vlm_spec import IMAGE_TOKEN

SYNTHETIC_PREFIX = "synthetic:"
MISSING_IMAGES_LISTED = 5


class TrainingDataError(ValueError):
    """The dataset file is malformed or refers to images that are not there."""


@dataclass(frozen=True)
class TrainingExample:
    """One image and its (question, answer) turns; ``image`` is a file path or an in-memory image."""

    image: Path | Image.Image
    turns: tuple[tuple[str, str], ...]

    def load_image(self) -> Image.Image:
        image = Image.open(self.image) if isinstance(self.image, Path) else self.image
        return image.convert("RGB")

    @property
    def query(self) -> str:
        """The first question without the image marker: QueCC's query, as the runner derives it."""
        return self.turns[0][0].split(IMAGE_TOKEN, 1)[-1].strip()


def synthetic_task(dataset: str) -> str | None:
    """``"synthetic:shapes"`` -> ``"shapes"``; None for a dataset file path."""
    return dataset.removeprefix(SYNTHETIC_PREFIX) if dataset.startswith(SYNTHETIC_PREFIX) else None


def check_synthetic_task(task: str) -> None:
    if task not in SYNTHETIC_TASKS:
        raise TrainingDataError(f"unknown synthetic task {task!r}; choose one of {', '.join(SYNTHETIC_TASKS)}")


def synthetic_training_examples(task: str, seed: int = 0, count: int | None = None) -> list[TrainingExample]:
    """The synthetic task's train split (2,000 items by default) as single-turn examples."""
    check_synthetic_task(task)
    return [
        TrainingExample(example.image, ((example.prompt, example.answer),))
        for example in synthetic_examples(task, "train", seed, count)
    ]


def _record_turns(record: dict, position: int) -> tuple[tuple[str, str], ...]:
    where = f"record {position} (id {record.get('id', '?')!r})"
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations or len(conversations) % 2:
        raise TrainingDataError(f"{where}: 'conversations' must be a non-empty list of human/gpt turn pairs")
    turns = []
    for human, gpt in zip(conversations[::2], conversations[1::2], strict=True):
        if not isinstance(human, dict) or not isinstance(gpt, dict):
            raise TrainingDataError(f"{where}: each turn must be an object with 'from' and 'value'")
        if human.get("from") != "human" or gpt.get("from") != "gpt":
            raise TrainingDataError(f"{where}: turns must alternate 'human' then 'gpt'")
        if not isinstance(human.get("value"), str) or not isinstance(gpt.get("value"), str):
            raise TrainingDataError(f"{where}: every turn needs a string 'value'")
        turns.append((human["value"], gpt["value"]))
    markers = sum(question.count(IMAGE_TOKEN) for question, _ in turns)
    if markers > 1 or (markers == 1 and IMAGE_TOKEN not in turns[0][0]):
        raise TrainingDataError(f"{where}: {IMAGE_TOKEN} may appear once, in the first human turn")
    return tuple(turns)


def load_llava_dataset(json_file: str | Path, image_folder: str | Path) -> list[TrainingExample]:
    """Parse a LLaVA-format JSON file; raises ``TrainingDataError`` on bad records or missing images."""
    json_file, image_folder = Path(json_file), Path(image_folder)
    try:
        records = json.loads(json_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TrainingDataError(f"cannot read dataset {json_file}: {error}") from error
    if not isinstance(records, list) or not records:
        raise TrainingDataError(f"dataset {json_file} must be a non-empty JSON list of records")
    examples = []
    for position, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            raise TrainingDataError(
                f"record {position} of {json_file} needs an 'image' path (text-only is unsupported)"
            )
        examples.append(TrainingExample(image_folder / record["image"], _record_turns(record, position)))
    missing = [str(example.image.relative_to(image_folder)) for example in examples if not example.image.is_file()]
    if missing:
        listed = ", ".join(missing[:MISSING_IMAGES_LISTED]) + (", ..." if len(missing) > MISSING_IMAGES_LISTED else "")
        raise TrainingDataError(
            f"{len(missing)} of {len(examples)} images of {json_file} are missing under {image_folder}: {listed}"
        )
    return examples

