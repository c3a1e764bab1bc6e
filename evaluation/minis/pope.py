"""POPE miniature: ``lmms-lab-encoder/POPE`` (the repo lmms-eval 0.7.3's ``pope`` task reads; a copy of lmms-lab/POPE).

Configs: ``default`` (split ``test``, read by ``pope``) and ``Full`` (splits ``adversarial``, ``popular``,
``random``, read by ``pope_adv``/``pope_pop``/``pope_random``). Columns as on the hub: ``id``, ``question_id``,
``question``, ``answer`` ("yes"/"no"), ``image_source`` (the COCO image name), ``image``, ``category`` (the
sampling setting). The task reads ``image``, ``question``, ``answer`` and ``question_id``.
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/POPE"
TASK = "pope"
OBJECTS = ("dog", "car", "cup", "chair", "bicycle", "umbrella", "clock", "bottle", "kite", "bench")
CATEGORIES = ("adversarial", "popular", "random")


def features():
    import datasets

    string = datasets.Value("string")
    return datasets.Features(
        {
            "id": string,
            "question_id": string,
            "question": string,
            "answer": string,
            "image_source": string,
            "image": datasets.Image(),
            "category": string,
        }
    )


def rows(count: int, seed: int, categories=CATEGORIES, start: int = 0) -> list[dict]:
    """``count`` questions, answers alternating yes/no (half of POPE's answers are yes), categories cycling."""
    rng = random.Random(f"frontier-minis-pope-{seed}-{start}-{','.join(categories)}")
    records = []
    for index in range(count):
        present = rng.sample(OBJECTS, 3)
        answer = "yes" if index % 2 == 0 else "no"
        asked = present[0] if answer == "yes" else rng.choice([name for name in OBJECTS if name not in present])
        number = start + index + 1
        records.append(
            {
                "id": str(start + index),
                "question_id": str(number),
                "question": f"Is there a {asked} in the image?",
                "answer": answer,
                "image_source": f"COCO_val2014_{100000 + number:012d}",
                "image": draw.scene(rng, present),
                "category": categories[index % len(categories)],
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    schema = features()
    full = {
        category: datasets.Dataset.from_list(
            rows(rows_per_split, seed, (category,), start=1000 * (index + 1)), features=schema
        )
        for index, category in enumerate(CATEGORIES)
    }
    return write_snapshot(
        root,
        REPO_ID,
        {"default": {"test": datasets.Dataset.from_list(rows(rows_per_split, seed), features=schema)}, "Full": full},
        "POPE: yes/no questions on whether an object is in the image.",
    )
