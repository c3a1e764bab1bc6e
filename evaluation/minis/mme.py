"""MME miniature: ``lmms-lab-encoder/MME`` (lmms-eval 0.7.3's ``mme``), config ``default``, split ``test``, the
hub's columns ``question_id`` (the image's path, e.g. "existence/000000006040.jpg", shared by its two
questions), ``image``, ``question`` (ending " Please answer yes or no."), ``answer`` ("Yes"/"No") and
``category``. The task reads all five: it scores per category, per image, accuracy + accuracy+ (both of
the image's two questions right) and sums perception and cognition categories apart.

Two images per category in ``CATEGORIES``, two questions per image (one answered Yes, one No), as MME pairs them.
"""

import random
from pathlib import Path

from PIL import ImageDraw

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/MME"
TASK = "mme"
CATEGORIES = ("existence", "color", "numerical_calculation")  # two perception categories, one cognition
SUFFIX = " Please answer yes or no."


def features():
    import datasets

    string = datasets.Value("string")
    return datasets.Features(
        {"question_id": string, "image": datasets.Image(), "question": string, "answer": string, "category": string}
    )


def _pair(rng: random.Random, category: str, number: int) -> tuple[object, list[tuple[str, str]]]:
    """An image and its (question, answer) pair, answers Yes then No."""
    if category == "numerical_calculation":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        image = draw.text_page(rng, [f"{a} + {b} = ?"], size=(140, 60))
        return image, [(f"Is the answer to the arithmetic question in the image {a + b}?", "Yes"),
                       (f"Is the answer to the arithmetic question in the image {a + b + 1}?", "No")]
    colour, other = rng.sample(list(draw.COLOURS), 2)
    image = draw.background(rng, (120, 90))
    ImageDraw.Draw(image).ellipse((35, 20, 85, 70), fill=draw.COLOURS[colour])
    if category == "color":
        return image, [(f"Is the ball in picture {number} {colour}?", "Yes"),
                       (f"Is the ball in picture {number} {other}?", "No")]
    return image, [(f"Is there a ball in picture {number}?", "Yes"),
                   (f"Is there a car in picture {number}?", "No")]


def rows(images_per_category: int, seed: int) -> list[dict]:
    rng = random.Random(f"frontier-minis-mme-{seed}")
    records = []
    for category in CATEGORIES:
        for index in range(images_per_category):
            number = len(records) // 2 + 1
            image, pair = _pair(rng, category, number)
            for question, answer in pair:
                records.append(
                    {
                        "question_id": f"{category}/{number:012d}.{'png' if category != 'color' else 'jpg'}",
                        "image": image,
                        "question": question + SUFFIX,
                        "answer": answer,
                        "category": category,
                    }
                )
    return records


def write(root: str | Path, rows_per_split: int = 12, seed: int = 0) -> Path:
    """``rows_per_split`` is rounded to whole image pairs per category (at least one)."""
    import datasets

    per_category = max(1, rows_per_split // (2 * len(CATEGORIES)))
    test = datasets.Dataset.from_list(rows(per_category, seed), features=features())
    return write_snapshot(root, REPO_ID, {"default": {"test": test}}, "MME: paired yes/no questions per image.")
