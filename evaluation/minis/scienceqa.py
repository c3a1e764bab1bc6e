"""ScienceQA miniature: ``lmms-lab-encoder/ScienceQA`` (lmms-eval 0.7.3's ``scienceqa_img`` reads config
``ScienceQA-IMG``, split ``test``; ``scienceqa_full`` reads ``ScienceQA-FULL``).

Both configs, splits ``validation`` and ``test``, the hub's columns: ``image`` (None for FULL's text-only
questions), ``question``, ``choices`` (list of strings), ``answer`` (int8, index into choices), ``hint``
(often empty), ``task``, ``grade``, ``subject``, ``topic``, ``category``, ``skill``, ``lecture``, ``solution``.
The task reads ``image``, ``hint``, ``question``, ``choices`` and ``answer`` (the target is ``"ABCDE"[answer]``).
Answers are deterministic: row ``i`` has ``2 + i % 3`` choices and answer index ``i % (2 + i % 3)``.
"""

import random
from pathlib import Path

from PIL import ImageDraw

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/ScienceQA"
TASK = "scienceqa_img"
CONFIG = "ScienceQA-IMG"
SPLITS = ("validation", "test")
HINTS = ("", "The picture shows a set of boxes.", "", "Look at the colours in the picture.")


def features():
    import datasets

    string = datasets.Value("string")
    columns = {"image": datasets.Image(), "question": string, "choices": datasets.Sequence(string),
               "answer": datasets.Value("int8"), "hint": string}
    columns.update({name: string for name in ("task", "grade", "subject", "topic", "category", "skill",
                                              "lecture", "solution")})
    return datasets.Features(columns)


def rows(count: int, seed: int, split: str, with_images: bool = True) -> list[dict]:
    rng = random.Random(f"frontier-minis-scienceqa-{seed}-{split}-{with_images}")
    colours = list(draw.COLOURS)
    records = []
    for index in range(count):
        options = 2 + index % 3
        answer = index % options
        choices = rng.sample(colours, options)
        image = None
        if with_images or index % 2 == 0:  # FULL mixes picture and text-only questions
            image = draw.background(rng, (120, 90))
            ImageDraw.Draw(image).rectangle((30, 20, 90, 70), fill=draw.COLOURS[choices[answer]])
        records.append(
            {
                "image": image,
                "question": f"Which colour is the box in picture {index + 1}?",
                "choices": choices,
                "answer": answer,
                "hint": HINTS[index % len(HINTS)],
                "task": "closed choice",
                "grade": f"grade{2 + index % 4}",
                "subject": "natural science",
                "topic": "physics",
                "category": "Colours",
                "skill": "Identify colours",
                "lecture": "Objects have colours.",
                "solution": f"The box is {choices[answer]}.",
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    schema = features()
    configs = {
        name: {
            split: datasets.Dataset.from_list(rows(rows_per_split, seed, split, with_images), features=schema)
            for split in SPLITS
        }
        for name, with_images in (("ScienceQA-FULL", False), (CONFIG, True))
    }
    return write_snapshot(root, REPO_ID, configs, "ScienceQA: multiple-choice science questions with a picture.")
