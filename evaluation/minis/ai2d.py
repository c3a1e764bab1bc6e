"""AI2D miniature: ``lmms-lab-encoder/ai2d`` (lmms-eval 0.7.3's ``ai2d``), config ``default``, split ``test``,
the hub's columns ``question``, ``options`` (list of strings), ``answer`` (a string holding the index of the
right option, "0".."3") and ``image``. The task reads all four; its target is ``"ABCD"[int(answer)]``.

Each image is a small food-chain diagram (labelled boxes joined by arrows); row ``i`` has four options and
the answer index ``i % 4``.
"""

import random
from pathlib import Path

from PIL import ImageDraw

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/ai2d"
TASK = "ai2d"
CHAINS = (
    ("grass", "rabbit", "fox", "eagle"),
    ("algae", "shrimp", "fish", "seal"),
    ("leaves", "caterpillar", "sparrow", "hawk"),
    ("seeds", "mouse", "snake", "owl"),
)
ROLES = ("the producer", "the primary consumer", "the secondary consumer", "the top predator")


def features():
    import datasets

    string = datasets.Value("string")
    return datasets.Features(
        {"question": string, "options": datasets.Sequence(string), "answer": string, "image": datasets.Image()}
    )


def _diagram(rng: random.Random, chain: tuple[str, ...]):
    image = draw.background(rng, (260, 80))
    canvas = ImageDraw.Draw(image)
    for index, name in enumerate(chain):
        left = 6 + index * 64
        canvas.rectangle((left, 24, left + 52, 52), outline=(0, 0, 0))
        canvas.text((left + 3, 32), name[:8], fill=(0, 0, 0), font=draw.font(10))
        if index:
            canvas.line((left - 12, 38, left, 38), fill=(0, 0, 0), width=2)
            canvas.polygon([(left, 38), (left - 5, 34), (left - 5, 42)], fill=(0, 0, 0))
    return image


def rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(f"frontier-minis-ai2d-{seed}")
    records = []
    for index in range(count):
        chain = CHAINS[index % len(CHAINS)]
        role = (index // len(CHAINS) + index) % len(ROLES)
        answer = index % 4
        others = [name for position, name in enumerate(chain) if position != role]
        rng.shuffle(others)
        options = others[:answer] + [chain[role]] + others[answer:]
        records.append(
            {
                "question": f"In the food chain shown (diagram {index + 1}), which organism is {ROLES[role]}?",
                "options": options,
                "answer": str(answer),
                "image": _diagram(rng, chain),
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    test = datasets.Dataset.from_list(rows(rows_per_split, seed), features=features())
    return write_snapshot(root, REPO_ID, {"default": {"test": test}}, "AI2D: multiple-choice questions on diagrams.")
