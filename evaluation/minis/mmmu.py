"""MMMU miniature: ``lmms-lab-encoder/MMMU`` (lmms-eval 0.7.3's ``mmmu_val`` reads split ``validation``), config
``default``, splits ``dev``, ``validation`` and ``test``.

The hub's columns (all strings but the images): ``id`` ("<split>_<Subject>_<n>", the task reads the subject
from it), ``question`` (naming its images "<image 1>", ...), ``options`` (the *string* repr of a Python list,
"[]" for open questions), ``explanation``, ``image_1`` .. ``image_7`` (None past the question's images),
``img_type`` (a list repr too), ``answer`` (a letter, or the open answer), ``topic_difficulty``,
``question_type`` ("multiple-choice" or "open") and ``subfield``. The task reads ``id``, ``question``,
``options``, ``question_type``, ``answer`` and the ``image_N`` the prompt names. The ``test`` split's answers
are hidden ("?" here; unconfirmed).

Rows cycle over ``SUBJECTS`` (three domains), mixing multiple-choice and open questions; one in four names two
images.
"""

import random
from pathlib import Path

from PIL import ImageDraw

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/MMMU"
TASK = "mmmu_val"
SPLITS = ("dev", "validation", "test")
IMAGES = 7
# (subject, subfield, question type, question, options, answer); options and answers as the hub writes them
QUESTIONS = (
    ("Math", "Geometry", "multiple-choice", "How many sides has the shape in <image 1>?", ["3", "4", "5", "6"], "B"),
    ("Math", "Arithmetic", "multiple-choice", "What is 3 x 4, as written in <image 1>?", ["12", "7", "1", "34"], "A"),
    ("Math", "Arithmetic", "open", "What number is written in <image 1>?", [], "12"),
    ("Physics", "Mechanics", "multiple-choice", "Which arrow in <image 1> is longest?",
     ["left", "up", "right", "down"], "C"),
    ("Physics", "Mechanics", "open", "What value of g, in m/s^2, is written in <image 1>?", [], "9.8"),
    ("Physics", "Optics", "multiple-choice", "Which colour is the beam in <image 1>?", ["red", "blue", "green"], "A"),
    ("Art", "Painting", "multiple-choice", "Which colour do <image 1> and <image 2> share?",
     ["red", "blue", "green", "yellow"], "B"),
    ("Art", "Colour theory", "open", "Which colour fills <image 1>?", [], "blue"),
)


def features():
    import datasets

    string = datasets.Value("string")
    columns = {"id": string, "question": string, "options": string, "explanation": string}
    columns.update({f"image_{number}": datasets.Image() for number in range(1, IMAGES + 1)})
    columns.update({name: string for name in ("img_type", "answer", "topic_difficulty", "question_type", "subfield")})
    return datasets.Features(columns)


def _picture(rng: random.Random, label: str):
    image = draw.background(rng, (120, 90))
    canvas = ImageDraw.Draw(image)
    canvas.rectangle((20, 20, 100, 70), fill=draw.COLOURS[rng.choice(list(draw.COLOURS))])
    canvas.text((24, 30), label, fill=(0, 0, 0), font=draw.font(12))
    return image


def rows(count: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(f"frontier-minis-mmmu-{seed}-{split}")
    records = []
    for index in range(count):
        subject, subfield, kind, question, options, answer = QUESTIONS[index % len(QUESTIONS)]
        named = 2 if "<image 2>" in question else 1
        images = {f"image_{number}": _picture(rng, f"{subject} {number}") if number <= named else None
                  for number in range(1, IMAGES + 1)}
        number_in_subject = sum(1 for earlier in records if earlier["id"].split("_")[1] == subject) + 1
        records.append(
            {
                "id": f"{split}_{subject}_{number_in_subject}",
                "question": question,
                "options": repr(options),
                "explanation": "",
                **images,
                "img_type": repr(["Diagrams"] if kind == "multiple-choice" else ["Tables"]),
                "answer": "?" if split == "test" else answer,
                "topic_difficulty": ("Easy", "Medium", "Hard")[index % 3],
                "question_type": kind,
                "subfield": subfield,
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    splits = {split: datasets.Dataset.from_list(rows(rows_per_split, seed, split), features=features())
              for split in SPLITS}
    return write_snapshot(root, REPO_ID, {"default": splits}, "MMMU: college-level multi-discipline questions.")
